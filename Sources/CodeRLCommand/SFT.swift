import ArgumentParser
import Foundation
import Runtime
import Llama
import ModelIO
import Optim
import Schema
import Tensor
import Training

/// A model to train or export, from any source we read, with its tokenizer.
struct ModelSource {
    let weights: LlamaWeights
    let tokenizer: Tokenizer
    let template: ChatTemplate?
    let tokenizerMetadata: [(String, GGUFValue)]

    /// `path`: a GGUF file (default: the cached SmolLM2), a Hugging Face directory or a training
    /// checkpoint; the tokenizer comes from the GGUF, from `tokenizer.gguf` beside the checkpoint
    /// (or inside the directory), or from `tokenizerPath`.
    static func load(_ path: String?, tokenizerPath: String? = nil) throws -> ModelSource {
        if path == nil && !DefaultModel.isPresent { throw CLIError(DefaultModel.missingMessage) }
        let loaded = try LoadedModel.load(path ?? DefaultModel.path)
        guard let tokenizerFile = tokenizerPath ?? loaded.tokenizerPath else {
            throw CLIError("\(loaded.source) carries no tokenizer; pass --tokenizer with a GGUF file that has one (e.g. the model it was trained from)")
        }
        let file = try GGUFFile(path: tokenizerFile)
        let tokenizer = try Tokenizer(gguf: file)
        guard tokenizer.vocabularySize <= loaded.weights.config.vocabularySize else {
            throw CLIError("the tokenizer has \(tokenizer.vocabularySize) tokens but the model's vocabulary is \(loaded.weights.config.vocabularySize)")
        }
        return ModelSource(weights: loaded.weights, tokenizer: tokenizer, template: try? ChatTemplate(gguf: file),
                           tokenizerMetadata: LoadedModel.tokenizerMetadata(of: file))
    }
}

struct SFT: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sft",
        abstract: "Supervised fine-tuning on prompt/completion pairs (CodeRL's warm-start stage).",
        discussion: """
            The data is JSON Lines, one {"prompt": "...", "completion": "..."} object per line. The loss is \
            the cross-entropy of the completion tokens (and the end-of-sequence token after them); prompt \
            tokens and padding are not scored. With --chat the prompt is a user message in the model's \
            chat template and the completion the assistant's reply.

            Examples are visited in a shuffled order that depends only on --seed and the epoch, so a run \
            resumed with --resume continues exactly where the checkpoint left it. A checkpoint \
            (weights, AdamW moments, step, data position) is written every --save-every steps and at the \
            end as OUT/step-NNNNNN.safetensors, and OUT/latest names the newest.

            Examples:
              coderl sft --data pairs.jsonl --out runs/sft --steps 200 --batch 4 \\
                  --learning-rate 5e-5 --chat
              coderl sft --data pairs.jsonl --out runs/sft --steps 200 \\
                  --trained-layers 8 --schedule cosine --warmup 20
              coderl sft --resume runs/sft --steps 400
            """)

    @Option(help: "Model to start from: GGUF file, Hugging Face directory or checkpoint (default: the cached SmolLM2-135M-Instruct).")
    var model: String?

    @Option(help: "GGUF file whose tokenizer to use when the model carries none.")
    var tokenizer: String?

    @Option(help: "JSON Lines file of {\"prompt\", \"completion\"} pairs.")
    var data: String?

    @Option(help: "Output directory for checkpoints.")
    var out: String?

    @Option(help: "Continue the run in this directory from its latest checkpoint, with the settings it recorded (only --steps, --stop-at, --save-every and --threads apply).")
    var resume: String?

    @Option(help: "Total optimizer steps (default 100; when resuming, the run's own total). Extending a resumed run moves the end of a decaying schedule.")
    var steps: Int?

    @Option(help: "Stop after this step (with a checkpoint), as if interrupted; --resume continues the same run.")
    var stopAt: Int?

    @Option(help: "Examples per micro-batch.")
    var batch: Int = 4

    @Option(help: "Micro-batches accumulated per optimizer step.")
    var accumulate: Int = 1

    @Option(name: .customLong("learning-rate"), help: "Peak learning rate (training.learning_rate in a pipeline).")
    var lr: Float = 5e-5

    @Option(help: "Learning-rate schedule after warm-up: constant, cosine or linear.")
    var schedule: String = "constant"

    @Option(help: "Warm-up steps (linear from 0).")
    var warmup: Int = 0

    @Option(help: "Final learning rate as a fraction of the peak (cosine and linear).")
    var minLrRatio: Float = 0.1

    @Option(help: "AdamW weight decay (matrices only).")
    var weightDecay: Float = 0.1

    @Option(help: "Clip the global gradient norm to this (0: no clipping).")
    var clip: Double = 1

    @Option(name: .customLong("trained-layers"), help: "Train only the top N transformer blocks (and the final norm and head); default: all (training.trained_layers in a pipeline).")
    var trainLayers: Int?

    @Option(help: "Longest sequence in tokens; longer examples have their completion cut.")
    var maxLength: Int = 512

    @Option(help: "Write a checkpoint every K steps (and at the end).")
    var saveEvery: Int = 50

    @Option(help: "Seed of the data order.")
    var seed: UInt64 = 1

    @Flag(help: "Wrap prompts in the model's chat template.")
    var chat = false

    @Option(help: "OpenBLAS threads (default: all cores).")
    var threads: Int?

    @Option(help: "Arithmetic of the matrix products: fp32, or bf16 (bfloat16 inputs with fp32 sums; weights, gradients and optimizer stay fp32; needs AVX512-BF16). Recorded with the run.")
    var precision: MatrixPrecision = .fp32

    func validate() throws {
        guard (resume == nil) != (out == nil) else { throw ValidationError("give --out DIR for a new run or --resume DIR to continue one") }
        if resume == nil && data == nil { throw ValidationError("--data FILE is required for a new run") }
        guard (steps ?? 1) >= 1, (stopAt ?? 1) >= 1, batch >= 1, accumulate >= 1, saveEvery >= 1, maxLength >= 2, warmup >= 0 else {
            throw ValidationError("--steps, --batch, --accumulate and --save-every must be at least 1, --max-length at least 2")
        }
        guard lr > 0, lr.isFinite else { throw ValidationError("--learning-rate must be a positive number, got \(lr)") }
        guard LearningRateSchedule.Decay(rawValue: schedule) != nil else {
            throw ValidationError("--schedule must be constant, cosine or linear, got '\(schedule)'")
        }
    }

    func run() throws {
        BLAS.setThreads(threads ?? ProcessInfo.processInfo.activeProcessorCount)
        let dir = resume ?? out!
        let session: ActorSession
        let source: ModelSource
        var settings: [String: String]
        if let resume {
            let latest = try String(contentsOfFile: resume + "/latest", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            session = try ActorSession.load(from: resume + "/" + latest)
            settings = session.state.settings
            source = try ModelSource.load(resume + "/" + latest, tokenizerPath: tokenizer)
            if let steps, steps != session.state.schedule.totalSteps { session.setTotalSteps(steps) }
            print("resuming \(resume)/\(latest) at step \(session.state.step), example \(session.state.position)")
        } else {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            source = try ModelSource.load(model, tokenizerPath: tokenizer)
            let trained = trainLayers ?? source.weights.config.layers
            settings = ["data": data!, "batch": "\(batch)", "accumulate": "\(accumulate)", "max_length": "\(maxLength)",
                        "chat": "\(chat)", "seed": "\(seed)", "model": model ?? DefaultModel.path, "precision": precision.rawValue]
            settings["data_xxh64"] = try Self.fileDigest(data!)
            let state = TrainingState(
                kind: .actor, trainedLayers: trained,
                adamw: AdamWSettings(weightDecay: weightDecay),
                schedule: LearningRateSchedule(peak: lr, warmupSteps: warmup, decay: .init(rawValue: schedule)!,
                                               totalSteps: steps ?? 100, minimumRatio: minLrRatio),
                clipNorm: clip > 0 ? clip : nil, rng: Xoshiro256(seed: seed), settings: settings)
            session = try ActorSession(weights: source.weights, state: state)
            try LoadedModel.writeTokenizer(source.tokenizerMetadata, to: dir + "/" + LoadedModel.tokenizerFileName)
        }
        let dataPath = settings["data"]!
        // A resumed run keeps the arithmetic it started with (runs from before this setting: fp32).
        let arithmetic = MatrixPrecision(rawValue: settings["precision"] ?? "fp32") ?? .fp32
        if let reason = arithmetic.unavailableReason { throw CLIError(reason) }
        session.trainer.precision = arithmetic
        if resume != nil, let recorded = settings["data_xxh64"], try Self.fileDigest(dataPath) != recorded {
            throw CLIError("\(dataPath) changed since the run started (checksum differs); resuming would not continue the same run")
        }
        let examples = try Self.readPairs(dataPath)
        let useChat = settings["chat"] == "true"
        if useChat && source.template == nil { throw CLIError("the model has no ChatML chat template; drop --chat") }
        let limit = Int(settings["max_length"] ?? "") ?? maxLength
        let encoded = try examples.map { try encode($0, source: source, chat: useChat, maxLength: limit) }
        let cut = encoded.filter(\.truncated).count
        let B = Int(settings["batch"] ?? "") ?? batch, K = Int(settings["accumulate"] ?? "") ?? accumulate
        let dataSeed = UInt64(settings["seed"] ?? "") ?? seed
        let trainedTensors = session.trainer.trainedTensors.reduce(0) { $0 + $1.count }
        print("\(encoded.count) examples from \(dataPath)\(cut > 0 ? " (\(cut) cut to \(limit) tokens)" : ""); " +
              "\(trainedTensors / 1_000_000)M of \(session.weights.parameterCount / 1_000_000)M parameters trained " +
              "(top \(session.state.trainedLayers) of \(session.weights.config.layers) blocks); batch \(B) x \(K) accumulated; " +
              "matrix products in \(arithmetic.rawValue)")

        var order = DataOrder(count: encoded.count, seed: dataSeed)
        let steps = session.state.schedule.totalSteps
        let stop = min(stopAt ?? steps, steps)
        let progress = ProgressLine(total: steps, plainInterval: 0)
        let firstStep = session.state.step
        var tokensDone = 0
        let pad = source.tokenizer.eosID ?? 0
        while session.state.step < stop {
            var micro: [TrainingBatch] = []
            for _ in 0..<K {
                let picks = (0..<B).map { session.state.position + micro.count * B + $0 }.map { encoded[order.index(at: $0)] }
                micro.append(try TrainingBatch.completions(picks.map(\.tokens), promptLengths: picks.map(\.promptLength), pad: pad,
                                                           vocabularySize: session.weights.config.vocabularySize))
            }
            let report = try session.step(micro, examples: B * K, rng: session.state.rng)
            tokensDone += report.tokens
            let seconds = Date().timeIntervalSince(progress.started)
            progress.update(done: session.state.step, unit: "steps",
                            detail: String(format: "loss %.4f | lr %.2e | |g| %.3f | %.0f tokens/s", report.losses.crossEntropy,
                                           report.learningRate, report.gradientNorm, Double(tokensDone) / max(seconds, 1e-9)),
                            rateDone: session.state.step - firstStep, rateSeconds: seconds)
            if session.state.step % saveEvery == 0 || session.state.step == stop {
                try save(session, dir: dir)
            }
        }
        progress.finish()
        print("checkpoint \(dir)/\(Self.checkpointName(step: session.state.step)); export it with `coderl export --checkpoint \(dir)/\(Self.checkpointName(step: session.state.step)) --format gguf --out model.gguf`")
    }

    static func checkpointName(step: Int) -> String { String(format: "step-%06d.safetensors", step) }

    func save(_ session: ActorSession, dir: String) throws {
        let name = Self.checkpointName(step: session.state.step)
        try session.save(to: dir + "/" + name)
        try AtomicFile.write(Data((name + "\n").utf8), to: dir + "/latest")
    }

    static func fileDigest(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else { throw CLIError("\(path): cannot read the data file") }
        return String(data.withUnsafeBytes { XXH64.hash($0) }, radix: 16)
    }

    struct Pair { let prompt: String; let completion: String }
    struct Encoded { let tokens: [Int]; let promptLength: Int; let truncated: Bool }

    /// Reads the JSONL pairs; a bad line is reported with its file, line and field.
    static func readPairs(_ path: String) throws -> [Pair] {
        guard let data = FileManager.default.contents(atPath: path) else { throw CLIError("\(path): cannot read the data file") }
        var pairs: [Pair] = []
        for (i, line) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            if line.allSatisfy({ $0 == 32 || $0 == 9 || $0 == 13 }) { continue }
            guard let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else {
                throw CLIError("\(path), line \(i + 1): not a JSON object")
            }
            for key in ["prompt", "completion"] where !(object[key] is String) {
                throw CLIError("\(path), line \(i + 1), field '\(key)': \(object[key] == nil ? "missing" : "not a string")")
            }
            let completion = object["completion"] as! String
            if completion.isEmpty { throw CLIError("\(path), line \(i + 1), field 'completion': empty") }
            pairs.append(Pair(prompt: object["prompt"] as! String, completion: completion))
        }
        if pairs.isEmpty { throw CLIError("\(path): no examples") }
        return pairs
    }

    func encode(_ pair: Pair, source: ModelSource, chat: Bool, maxLength: Int) throws -> Encoded {
        let t = source.tokenizer
        var prompt = chat ? source.template!.tokens([ChatMessage(.user, pair.prompt)], tokenizer: t) : t.encode(pair.prompt)
        if prompt.isEmpty { prompt = [t.bosID ?? t.eosID ?? 0] }
        let end = chat ? t.id(of: "<|im_end|>").map { [$0] } ?? [] : t.eosID.map { [$0] } ?? []
        var completion = t.encode(pair.completion) + end
        var truncated = false
        if prompt.count >= maxLength { prompt = Array(prompt.suffix(maxLength / 2)); truncated = true }
        if prompt.count + completion.count > maxLength {
            completion = Array(completion.prefix(maxLength - prompt.count))
            truncated = true
        }
        return Encoded(tokens: prompt + completion, promptLength: prompt.count, truncated: truncated)
    }
}

/// Example order: each epoch a permutation drawn from the seed and the epoch number alone, so
/// any position in the stream can be found again after a restart.
struct DataOrder {
    let count: Int
    let seed: UInt64
    private var epoch = -1
    private var permutation: [Int] = []

    init(count: Int, seed: UInt64) {
        self.count = count
        self.seed = seed
    }

    mutating func index(at position: Int) -> Int {
        let e = position / count
        if e != epoch {
            var rng = Xoshiro256(seed: seed, stream: e)
            permutation = Array(0..<count)
            permutation.shuffle(using: &rng)
            epoch = e
        }
        return permutation[position % count]
    }
}

