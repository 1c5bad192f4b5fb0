import ArgumentParser
import Foundation
import Ledger
import Llama
import ModelIO
import Optim
import Pipeline
import Runtime
import Tensor
import Training

/// `coderl bench pipeline`: the RL loop's speed, with the real processes.
struct BenchPipeline: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pipeline",
        abstract: "The RL loop's speed: a real pipeline (every role its own process, as coderl run starts them) on the built-in problems.",
        discussion: """
            Starts `coderl run` on a pipeline of its own (built-in problems, no held-out evaluation, \
            no warm-start) in a temporary run directory, lets --warmup steps pass, then measures \
            --steps learner steps from the roles' metrics, their CPU time and the learner's progress: \
            seconds per step, rollouts per second, the sampler's tokens/s while generating beside this \
            process's own batched decode at the same batch size (measured after the run, on the same \
            machine), the learner's training tokens/s beside a training step of this process on the \
            same kind of batch, weight sync seconds per version (publish of actor and critic, the \
            sampler's fetch and load of the actor), and each role's busy share (CPU seconds per \
            second of wall time; 1.0 = one core). The last line sums it up.

            Examples:
              coderl bench pipeline
              coderl bench pipeline --steps 10 --problems 8 --samples 8
            """)

    @Option(help: "Learner steps measured.") var steps = 5
    @Option(help: "Learner steps before the measurement (loading, first versions).") var warmup = 2
    @Option(help: "Problems per step.") var problems = 4
    @Option(help: "Samples per problem (besides the greedy baseline).") var samples = 3
    @Option(help: "Precision of samplers and learner: auto, fp32 or bf16.") var precision = "auto"
    @Option(help: "Requests a sampler takes at once.") var batchRequests = 16
    @Option(help: "Longest program in tokens.") var maxNewTokens = 128
    @Option(help: "First of the five TCP ports the pipeline uses on 127.0.0.1.") var port = 5790
    @Option(help: "Run directory (default: a new temporary one, deleted afterwards).") var dir: String?
    @Option(name: .customLong("set"), help: "KEY=VALUE passed to `coderl run` (repeatable), e.g. --set roles.learner_threads=2.")
    var overrides: [String] = []

    func run() throws {
        guard steps >= 1, warmup >= 1, problems >= 1, samples >= 1 else { throw ValidationError("--steps, --warmup, --problems and --samples must be >= 1") }
        guard ["auto", "fp32", "bf16"].contains(precision) else { throw ValidationError("--precision must be auto, fp32 or bf16") }
        let chosen = try MatrixPrecision(PipelineConfig.PrecisionChoice(rawValue: precision)!, key: "--precision")
        let runDir = dir ?? NSTemporaryDirectory() + "coderl-bench-pipeline-\(getpid())"
        defer { if dir == nil { try? FileManager.default.removeItem(atPath: runDir) } }
        try? FileManager.default.removeItem(atPath: runDir)
        try FileManager.default.createDirectory(atPath: runDir, withIntermediateDirectories: true)
        let metricsPort = port + 10
        let yaml = """
            run: {dir: \(runDir)/run, steps: \(warmup + steps + 1)}
            roles: {samplers: 1, executors: 1, executor_slots: 2}
            endpoints:
              params: tcp://127.0.0.1:\(port)
              announcements: tcp://127.0.0.1:\(port + 1)
              samples: tcp://127.0.0.1:\(port + 2)
              rollouts: tcp://127.0.0.1:\(port + 3)
              executors: tcp://127.0.0.1:\(port + 4)
            data: {sources: [builtin], train: [builtin/train], heldout: [builtin/heldout], heldout_problems: 0}
            sampling: {samples_per_problem: \(samples), max_new_tokens: \(maxNewTokens), precision: \(precision), batch_requests: \(batchRequests)}
            training: {problems_per_step: \(problems), precision: \(precision)}
            metrics: {port: \(metricsPort)}
            """
        let pipelineFile = runDir + "/bench.yaml"
        try yaml.write(toFile: pipelineFile, atomically: true, encoding: .utf8)
        print("CPU: \(CPUInfo.modelName), \(ProcessInfo.processInfo.activeProcessorCount) cores; precision \(precision) (\(chosen.rawValue) here)")
        print("pipeline: \(problems) problems x (\(samples) samples + greedy) per step, \(warmup) warm-up steps, \(steps) measured; run directory \(runDir)/run"
              + (overrides.isEmpty ? "" : "; " + overrides.joined(separator: " ")))

        let process = Process()
        process.executableURL = URL(fileURLWithPath: try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
        process.arguments = ["run", pipelineFile] + overrides.flatMap { ["--set", $0] }
        let logFile = runDir + "/run.log"
        _ = FileManager.default.createFile(atPath: logFile, contents: nil)
        let log = FileHandle(forWritingAtPath: logFile)!
        process.standardOutput = log
        process.standardError = log
        try process.run()
        defer { if process.isRunning { process.terminate(); process.waitUntilExit() } }

        let progressFile = runDir + "/run/learner/progress.jsonl"
        let roles = ["param-store": metricsPort, "critic-labeler": metricsPort + 1, "learner": metricsPort + 2,
                     "sampler": metricsPort + 3, "executor": metricsPort + 4]
        var start: Snapshot? = nil, end: Snapshot? = nil
        let deadline = Date().addingTimeInterval(Double(warmup + steps + 2) * 120 + 300)
        while end == nil {
            guard process.isRunning else { throw CLIError("the pipeline stopped before step \(warmup + steps); its log: \(logFile)") }
            guard Date() < deadline else { throw CLIError("no step \(warmup + steps) in time; the pipeline's log: \(logFile)") }
            Thread.sleep(forTimeInterval: 0.2)
            let reports = Self.reports(progressFile)
            if start == nil, reports.count >= warmup {
                start = Snapshot(reports: reports, roles: roles, pids: runDir + "/run/pids")
            } else if start != nil, reports.count >= warmup + steps {
                end = Snapshot(reports: reports, roles: roles, pids: runDir + "/run/pids")
            }
        }
        process.terminate()
        process.waitUntilExit()
        guard let start, let end else { return }

        // The measured steps, from the learner's own reports.
        let measured = Array(end.reports[warmup..<(warmup + steps)])
        let t0 = start.reports[warmup - 1].finishedAt ?? start.time, t1 = measured.last!.finishedAt ?? end.time
        let wall = max(t1 - t0, 1e-3)
        let perStep = wall / Double(steps)
        let rollouts = Double(measured.count * problems * (samples + 1))
        let actor = [("model", "actor")], critic = [("model", "critic")]
        func delta(_ role: String, _ name: String) -> Double { (end.metrics[role]?[name] ?? 0) - (start.metrics[role]?[name] ?? 0) }
        let tokens = delta("sampler", CounterMetric.samplerTokens.rawValue)
        let generating = delta("sampler", DurationMetric.samplerRequestSeconds.sum())
        let batches = delta("sampler", DurationMetric.samplerRequestSeconds.count())
        let sequences = delta("sampler", CounterMetric.samplerPrograms.rawValue)
        let batchSize = batches > 0 ? Int((sequences / batches).rounded()) : problems * (samples + 1)
        let samplerRate = tokens / max(generating, 1e-9)
        let learnerTokens = Double(measured.compactMap(\.tokens).reduce(0, +))
        let learnerSeconds = measured.compactMap(\.trainSeconds).reduce(0, +)
        let versions = max(1, delta("learner", DurationMetric.weightPublishSeconds.count(actor)))
        let publish = delta("learner", DurationMetric.weightPublishSeconds.sum(actor)) + delta("learner", DurationMetric.weightPublishSeconds.sum(critic))
        let fetch = delta("sampler", DurationMetric.weightFetchSeconds.sum(actor))
        let load = delta("sampler", DurationMetric.weightLoadSeconds.sum(actor))
        let criticSync = delta("critic-labeler", DurationMetric.weightFetchSeconds.sum(critic)) + delta("critic-labeler", DurationMetric.weightLoadSeconds.sum(critic))
        let sync = (publish + fetch + load) / versions

        // The shape of the sampler's work: its sequences' prompt and program lengths.
        let newPerSequence = sequences > 0 ? tokens / sequences : Double(maxNewTokens)
        var promptSum = 0, prompts = 0
        if let ledger = try? Ledger.openForReading(path: runDir + "/run/ledger") {
            try? ledger.scanRollouts { r in
                if r.use != .eval && !r.promptTokens.isEmpty { promptSum += r.promptTokens.count; prompts += 1 }
                return true
            }
        }
        let promptLength = prompts > 0 ? promptSum / prompts : 0

        // Peers in this process, on this machine, after the pipeline stopped: decode as `bench
        // generate` measures it (a short prompt), and at the sampler's prompt and program lengths
        // (attention over a longer context costs more per token).
        let (peerDecode, peerShaped, peerTrain) = try Self.peers(
            precision: chosen, batch: batchSize, maxNewTokens: min(maxNewTokens, 64),
            shape: promptLength > 0 ? (promptLength, max(8, Int(newPerSequence.rounded()))) : nil)
        let samplerThreads = PipelineConfig.Roles.threads(try PipelineConfig.load(files: [pipelineFile], assignments: overrides).0.roles.samplerThreads)

        print(String(format: "steps:    %.2f s/step, %.2f rollouts/s (%d steps, %.1f s)", perStep, rollouts / wall, steps, wall))
        print(String(format: "sampler:  %.0f tokens/s while generating (%d sequences per batch on average, %.1f s of %.1f generating); this process's batched decode at batch %d: %.0f tokens/s (%.0f%%)",
                     samplerRate, batchSize, generating, wall, batchSize, peerDecode, 100 * samplerRate / max(peerDecode, 1e-9)))
        if let peerShaped {
            print(String(format: "          at the sampler's shape (prompts of %d tokens, %.0f new tokens per sequence on average): this process's decode %.0f tokens/s (%.0f%%); the sampler has %d of the %d cores",
                         promptLength, newPerSequence, peerShaped, 100 * samplerRate / max(peerShaped, 1e-9),
                         samplerThreads, ProcessInfo.processInfo.activeProcessorCount))
        }
        print(String(format: "learner:  %.0f tokens/s while training (%.1f s of %.1f); this process's training step on 4 x 256 tokens: %.0f tokens/s (%.0f%%)",
                     learnerTokens / max(learnerSeconds, 1e-9), learnerSeconds, wall, peerTrain, 100 * learnerTokens / max(learnerSeconds, 1e-9) / max(peerTrain, 1e-9)))
        let actorSeconds = measured.compactMap(\.actorSeconds).reduce(0, +), criticSeconds = measured.compactMap(\.criticSeconds).reduce(0, +)
        let klSeconds = measured.compactMap(\.klSeconds).reduce(0, +)
        print(String(format: "          of the training time: actor update %.1f s, critic update %.1f s, KL estimate %.1f s, the rest %.1f s",
                     actorSeconds, criticSeconds, klSeconds, max(0, learnerSeconds - actorSeconds - criticSeconds - klSeconds)))
        print(String(format: "sync:     %.2f s per version: publish actor+critic %.2f, sampler fetch %.2f + load %.2f (critic on the labeler %.2f, in parallel)",
                     sync, publish / versions, fetch / versions, load / versions, criticSync / versions))
        var busy: [String] = []
        for role in ["learner", "sampler-0", "critic-labeler", "executor-0", "param-store"] {
            if let a = start.cpu[role], let b = end.cpu[role] { busy.append(String(format: "%@ %.2f", role, (b - a) / wall)) }
        }
        print("busy:     " + busy.joined(separator: ", ") + " (CPU seconds per second)")
        print(String(format: "pipeline: %.2f s/step, %.2f rollouts/s, sync %.2f s/version (%d problems x %d samples per step)",
                     perStep, rollouts / wall, sync, problems, samples))
    }

    static func reports(_ file: String) -> [StepReport] {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { try? StepReport.decode(line: $0) }
    }

    /// What the pipeline had done at one moment: the learner's reports, every role's metrics
    /// (series name with labels -> value) and CPU seconds.
    struct Snapshot {
        var time = Date().timeIntervalSince1970
        var reports: [StepReport]
        var metrics: [String: [String: Double]] = [:]
        var cpu: [String: Double] = [:]

        init(reports: [StepReport], roles: [String: Int], pids: String) {
            self.reports = reports
            for (role, port) in roles { metrics[role] = Self.scrape(port: port) }
            for name in (try? FileManager.default.contentsOfDirectory(atPath: pids)) ?? [] where name.hasSuffix(".pid") {
                guard let text = try? String(contentsOfFile: pids + "/" + name, encoding: .utf8),
                      let pid = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)),
                      let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                      let close = stat.lastIndex(of: ")") else { continue }
                // Fields after the command: state is field 3; utime and stime are 14 and 15.
                let fields = stat[stat.index(after: close)...].split(separator: " ")
                guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { continue }
                cpu[String(name.dropLast(4))] = (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
            }
        }

        /// The Prometheus text exposition of 127.0.0.1:port, as series -> value.
        static func scrape(port: Int) -> [String: Double] {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { return [:] }
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0 else { return [:] }
            let request = Array("GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".utf8)
            guard write(fd, request, request.count) == request.count else { return [:] }
            var response: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = read(fd, &buffer, buffer.count)
                if n <= 0 { break }
                response += buffer[0..<n]
            }
            var out: [String: Double] = [:]
            for line in String(decoding: response, as: UTF8.self).split(separator: "\n") where !line.hasPrefix("#") {
                guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...].trimmingCharacters(in: .whitespacesAndNewlines)) else { continue }
                out[String(line[..<space])] = value
            }
            return out
        }
    }

    /// This process's batched decode (tokens/s at `batch` sequences of one prompt, no early
    /// stop, best of two): with a one-sentence prompt as `bench generate` measures it, and at
    /// `shape` (prompt length, new tokens) when given; and its training step (4 x 256 tokens,
    /// the top 4 blocks trained) in `precision`.
    static func peers(precision: MatrixPrecision, batch: Int, maxNewTokens: Int, shape: (prompt: Int, newTokens: Int)?) throws
        -> (decode: Double, shaped: Double?, train: Double) {
        let (model, tokenizer, _) = try LlamaModel.load(gguf: DefaultModel.path, precision: precision)
        let generator = Generator(model: model, tokenizer: tokenizer)
        func decode(_ prompt: [Int], newTokens: Int) throws -> Double {
            var rate = 0.0
            for seed in 1...2 {
                let p = SamplingParameters(temperature: 0.8, topP: 0.95, seed: UInt64(seed), maxNewTokens: newTokens, stopTokens: [])
                rate = max(rate, try generator.generate(prompt: prompt, samples: batch, parameters: p).1.decodeTokensPerSecond)
            }
            return rate
        }
        let sentence = "Write a Python function that returns the longest strictly increasing subsequence of a list of integers."
        let decodeRate = try decode(tokenizer.encode(sentence), newTokens: maxNewTokens)
        let shaped = try shape.map { shape in
            try decode(Array(tokenizer.encode(String(repeating: sentence + "\n", count: shape.prompt / 10 + 1)).prefix(shape.prompt)), newTokens: shape.newTokens)
        }
        let weights = model.weights
        let text = String(repeating: "def add(a, b):\n    return a + b\n\nprint(add(2, 3))\n", count: 80)
        let ids = tokenizer.encode(text)
        let sequences = (0..<4).map { b in Array(ids[(b * 7)..<(b * 7 + 256)]) }
        let data = try TrainingBatch.completions(sequences, promptLengths: Array(repeating: 64, count: 4), pad: 0,
                                                 vocabularySize: weights.config.vocabularySize)
        let state = TrainingState(kind: .actor, trainedLayers: 4, adamw: AdamWSettings(),
                                  schedule: LearningRateSchedule(peak: 1e-5), rng: Xoshiro256(seed: 1))
        let session = try ActorSession(weights: weights, state: state)
        session.trainer.precision = precision
        var best = Double.infinity
        for i in 0..<3 {
            let t0 = DispatchTime.now().uptimeNanoseconds
            _ = try session.step([data], examples: 4, rng: state.rng)
            if i > 0 { best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9) }
        }
        return (decodeRate, shaped, 4 * 256 / best)
    }
}
