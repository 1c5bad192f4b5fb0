import ArgumentParser
import CodeRL
import Datasets
import Foundation
import ZeroMQ
import Ledger
import Llama
import ModelIO
import Pipeline
import Runtime
import Schema
import Training

/// `coderl run PIPELINE`: the whole pipeline on this machine, from a config file.
struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a CodeRL pipeline (param-store, critic-labeler, learner, samplers, executors) from a config file.",
        discussion: """
            Reads the pipeline file (and the config file it names with `config:`), then each \
            --config file, then each --set; imports data.sources into the ledger; starts every \
            role as its own process (logs in RUN/logs/, pids in RUN/pids/); restarts a crashed role \
            with back-off; prints one line per learner step; stops everything cleanly on Ctrl-C or \
            SIGTERM. A run directory that already has a run resumes it (the learner continues from \
            its last checkpoint, the labeler from the ledger).

            More executors can join from other machines: see `coderl-executor --help` and the README.

            Examples:
              coderl run Pipelines/coderl.yaml
              coderl run Pipelines/coderl.yaml --config Configs/demo.yaml \\
                  --set run.steps=5
              coderl run Pipelines/coderl.yaml --dry-run
              coderl run --print-keys
            """)

    @Argument(help: "Pipeline file (YAML).") var pipeline: String?
    @Option(name: .customLong("config"), help: "Config file layered over the pipeline file (repeatable).") var configFiles: [String] = []
    @Option(name: .customLong("set"), help: "Override one key: --set training.learning_rate=1e-5 (repeatable).") var assignments: [String] = []
    @Flag(help: "Check the configuration and print the derived numbers; start nothing.") var dryRun = false
    @Flag(help: "Print every configuration key with its default and meaning.") var printKeys = false

    func run() throws {
        if printKeys {
            for k in PipelineConfig.reference { print("\(k.key) = \(k.defaultValue)\n    \(k.help)") }
            return
        }
        guard let pipeline else { throw ValidationError("give the pipeline file, e.g. coderl run Pipelines/coderl.yaml") }
        let config: PipelineConfig, values: ConfigValues
        do {
            (config, values) = try PipelineConfig.load(files: [pipeline] + configFiles, assignments: assignments)
        } catch {
            throw CLIError("configuration errors:\n\(error)")
        }
        let derived = try Self.derived(config)
        if dryRun {
            print("configuration: " + values.files.joined(separator: " + ") + (assignments.isEmpty ? "" : " + \(assignments.count) --set"))
            for line in derived { print("  " + line) }
            print("ok: nothing started (--dry-run)")
            return
        }
        try launch(config, values, derived)
    }

    /// Checks what the files say and returns the derived numbers, one per line.
    static func derived(_ config: PipelineConfig) throws -> [String] {
        var lines: [String] = []
        var problems: [Problem] = []
        var errors: [String] = []
        for source in config.data.sources {
            if source != BuiltinProblems.name && !FileManager.default.fileExists(atPath: source) {
                errors.append("data.sources: no such file: \(source)")
                continue
            }
            let contents = source == BuiltinProblems.name ? try BuiltinProblems.read() : try Setup.readDataset(source)
            problems += contents.problems.map(\.problem)
        }
        var train = problems.filter { Setup.matches($0, config.data.trainSplits) }.count
        if config.data.maxTrainProblems > 0 { train = min(train, config.data.maxTrainProblems) }
        let heldout = min(config.data.heldoutProblems, problems.filter { Setup.matches($0, config.data.heldoutSplits) }.count)
        if train == 0 { errors.append("data.train: no problem of data.sources matches \(config.data.trainSplits); the sources hold \(Setup.selections(problems))") }

        if train > 0 && train < config.training.problemsPerStep {
            errors.append("training.problems_per_step: \(config.training.problemsPerStep) is more than the \(train) training problems")
        }
        do {
            let actor = try Setup.actorPath(config)
            _ = try Setup.tokenizerPath(config)
            let layers: Int
            if let magic = FileHandle(forReadingAtPath: actor)?.readData(ofLength: 4), magic == Data("GGUF".utf8) {
                let c = try LlamaConfig(gguf: try GGUFFile(path: actor))
                layers = c.layers
                if config.sampling.maxNewTokens + 64 > c.contextLength {
                    errors.append("sampling.max_new_tokens: \(config.sampling.maxNewTokens) leaves no room for a prompt in the model's \(c.contextLength) tokens")
                }
            } else {
                layers = try LoadedModel.load(actor).weights.config.layers
            }
            if config.training.trainedLayers > layers { errors.append("training.trained_layers: \(config.training.trainedLayers) is more than the model's \(layers) blocks") }
            if config.model.criticLayers > layers { errors.append("model.critic_layers: \(config.model.criticLayers) is more than the model's \(layers) blocks") }
            lines.append("model: \(actor) (\(layers) blocks; top \(config.training.trainedLayers == 0 ? layers : config.training.trainedLayers) trained; critic \(config.model.criticLayers == 0 ? Critic.defaultLayers(actorLayers: layers) : config.model.criticLayers) blocks)")
        } catch {
            errors.append("\(error)")
        }
        guard errors.isEmpty else { throw CLIError("configuration errors:\n" + errors.joined(separator: "\n")) }
        let perStep = config.rolloutsPerStep
        let stepsPerEpoch = (train + config.training.problemsPerStep - 1) / config.training.problemsPerStep
        let points = config.data.heldoutPoints.map { point -> String in
            switch point {
            case .before: "the starting model"
            case .warm: "after warm-start"
            case .after: "after training"
            }
        }
        lines.append("problems: \(train) for training, \(heldout) held out" + (heldout == 0 || points.isEmpty ? " (not evaluated)" : " (evaluated greedily: \(points.joined(separator: ", ")))"))
        if config.data.heldoutProblems > 0 && heldout == 0 {
            lines.append("note: data.heldout \(config.data.heldoutSplits) matches no problem of data.sources, which hold \(Setup.selections(problems))")
        }
        lines.append("per step: \(config.training.problemsPerStep) problems x (\(config.sampling.samplesPerProblem) samples\(config.needsGreedy ? " + greedy baseline" : "")) = \(perStep) programs")
        lines.append("steps per epoch: \(stepsPerEpoch); \(config.run.steps) steps = \(String(format: "%.2f", Double(config.run.steps) / Double(max(1, stepsPerEpoch)))) epochs, \(perStep * config.run.steps) programs to run")
        lines.append("versions: published every \(config.training.publishEvery) steps (\(config.run.steps / config.training.publishEvery) in all); rollouts at most \(config.training.maxPolicyLag) versions old train the actor")
        lines.append("processes: param-store, critic-labeler, learner, \(config.roles.samplers) sampler(s), \(config.roles.executors) executor(s) x \(config.roles.executorSlots) slot(s)")
        if config.metrics.port > 0 {
            let last = Observability.defaultPort(config, role: "executor", instance: max(0, config.roles.executors - 1)) - (config.roles.executors == 0 ? 1 : 0)
            lines.append("metrics: http://\(config.metrics.host):\(config.metrics.port)-\(last)/metrics (targets in RUN/metrics-targets.json)")
        }
        lines.append("run directory: \(config.run.directory)")
        return lines
    }

    /// RUN/metrics-targets.json: the metrics endpoints of this run's processes, in Prometheus'
    /// file-based service discovery format (`file_sd_configs`).
    static func writeMetricsTargets(_ config: PipelineConfig) throws {
        let path = config.run.directory + "/metrics-targets.json"
        guard config.metrics.port > 0 else {
            try? FileManager.default.removeItem(atPath: path)
            return
        }
        var places: [(String, Int)] = [("param-store", 0), ("critic-labeler", 0), ("learner", 0)]
        places += (0..<config.roles.samplers).map { ("sampler", $0) }
        places += (0..<config.roles.executors).map { ("executor", $0) }
        let host = config.metrics.host == "0.0.0.0" ? "127.0.0.1" : config.metrics.host
        let targets: [[String: Any]] = places.map { role, instance in
            ["targets": ["\(host):\(Observability.defaultPort(config, role: role, instance: instance))"],
             "labels": ["role": role, "instance": "\(role)-\(instance)"]]
        }
        try JSONSerialization.data(withJSONObject: targets, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            .write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    func launch(_ config: PipelineConfig, _ values: ConfigValues, _ derived: [String]) throws {
        let fm = FileManager.default
        for dir in [config.run.directory, config.logsPath, config.weightsPath] { try fm.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        let resolved = config.run.directory + "/pipeline.yaml"
        try values.yaml(header: "Resolved configuration of this run (from \(values.files.joined(separator: ", "))). Every role reads this file.")
            .write(toFile: resolved, atomically: true, encoding: .utf8)
        let ledger = try Ledger(path: config.ledgerPath)
        for line in try Setup.importData(config, into: ledger) { print("import " + line) }
        if try ledger.runMetadata() == nil {
            try ledger.saveRunMetadata(RunMetadata.with {
                $0.runID = UUID().uuidString
                $0.createdUnixMs = UInt64(Date().timeIntervalSince1970 * 1000)
                $0.config = values.yaml(header: "")
            })
        }
        for line in derived { print(line) }
        fflush(nil)

        let bin = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().path
        /// A role's binary: `coderl-<role>` beside this one.
        func binary(_ tool: String) -> String { bin + "/coderl-" + tool }
        for tool in ["param-store", "critic-labeler", "learner", "sampler", "executor"] where !fm.isExecutableFile(atPath: binary(tool)) {
            throw CLIError("\(binary(tool)) is missing: build all products (swift build -c release) or install them beside coderl")
        }
        let common = ["--config", resolved]
        func role(_ name: String, _ tool: String, _ extra: [String] = []) -> Supervisor.Role {
            Supervisor.Role(name: name, executable: binary(tool), arguments: extra, logFile: config.logsPath + "/" + name + ".log")
        }
        func threads(_ n: Int) -> [String: String] {
            let count = "\(PipelineConfig.Roles.threads(n))"
            return ["CODERL_THREADS": count, "OPENBLAS_NUM_THREADS": count]
        }
        var labeler = role("critic-labeler", "critic-labeler", common)
        labeler.environment = threads(1)
        var roles: [Supervisor.Role] = [role("param-store", "param-store", common), labeler]
        var learner = role("learner", "learner", common)
        learner.environment = threads(config.roles.learnerThreads)
        learner.capturesOutput = true
        learner.finishesRun = true
        learner.stopGrace = 180   // a step on 2 cores takes up to a minute or two; then it checkpoints
        roles.append(learner)
        for i in 0..<config.roles.samplers {
            var sampler = role("sampler-\(i)", "sampler", common + ["--instance", "\(i)"])
            sampler.environment = threads(config.roles.samplerThreads)
            roles.append(sampler)
        }
        var executorArgs = ["--connect", config.endpoints.executors.replacingOccurrences(of: "*", with: "127.0.0.1"),
                            "--slots", "\(config.roles.executorSlots)", "--sandbox", config.execution.sandbox.rawValue]
        // Every link's keys, made once in the run directory (LinkSecurity says who holds which).
        try LinkSecurity.makeKeys(config)
        if let local = try LinkSecurity.localExecutor(config) {
            // `--server-key=KEY`: a Z85 key may begin with "-", which would read as an option.
            executorArgs += ["--server-key=\(local.serverKey)", "--key-file", local.keyFile]
        } else {
            print("[run] security.curve is false: every link is plain TCP, and any local user can join this run")
        }
        executorArgs += ["--log-level", config.logging.level(of: "executor").rawValue, "--log-format", config.logging.format.rawValue]
        for i in 0..<config.roles.executors {
            let port = Observability.defaultPort(config, role: "executor", instance: i)
            roles.append(role("executor-\(i)", "executor", executorArgs + ["--name", "executor-\(i)", "--metrics-port", "\(port)"]))
        }
        try Self.writeMetricsTargets(config)
        // The learner's step lines drive a progress line (steps, rate, ETA) under them.
        let progress = ProgressLine(total: config.run.steps, plainInterval: 60)
        let supervisor = Supervisor(roles: roles, restartLimit: config.roles.restartLimit, backoffMs: config.roles.restartBackoffMs,
                                    pidDirectory: config.run.directory + "/pids",
                                    note: { line in progress.note("[run] " + line) },
                                    onOutput: { line in
                                        progress.note(line)
                                        if line.hasPrefix("step "), let step = Int(line.dropFirst(5).prefix { $0.isNumber }) {
                                            progress.update(done: step, unit: "steps", detail: "learner")
                                        } else if line.hasPrefix("warm-start "), let of = line.split(separator: " ").dropFirst().first {
                                            progress.update(done: 0, unit: "steps", detail: "warm-start \(of)")
                                        }
                                    })
        defer { progress.finish() }
        progress.update(done: 0, unit: "steps", detail: "starting the roles")
        Signals.onTerminate { supervisor.requestStop() }
        let finished = try supervisor.run()
        if finished {
            print("[run] finished; logs in \(config.logsPath), summary in \(config.learnerPath)/summary.txt")
            if let actor = try? RunActor.latest(in: config.run.directory) {
                print("[run] trained actor: v\(actor.version) in \(actor.path); for llama.cpp or transformers: "
                      + "coderl export --checkpoint \(config.run.directory) --format gguf --out actor.gguf (or --format safetensors --out DIR)")
            }
        } else {
            print("[run] stopped; run `coderl run` with the same files to resume")
            throw ExitCode(1)
        }
    }
}
