import ArgumentParser
import CodeRL
import Evaluation
import Foundation
import Ledger
import Llama
import ModelIO
import Optim
import Runtime
import Tensor
import Training

struct TrainCritic: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-critic",
        abstract: "Train a critic offline on the judged programs of evaluations in a ledger.",
        discussion: """
            CodeRL trains its critic on sampled programs labeled by their test outcomes before \
            RL and before critical sampling. Sample programs on a training split with \
            `coderl eval` (which stores every program's tokens and verdict), then train on them. \
            The critic is the first --layers blocks of the model plus CodeRL's head; it sees the \
            problem's prompt followed by the program, like the pipeline's critic. Problems are \
            split (by a hash of their ids) into training and held-out sets; accuracy, balanced \
            accuracy and the recall and precision of "passed" on the held-out problems are \
            printed after every epoch, with its ranking (AUC) and the calibration of its p(pass) \
            (Brier score, expected calibration error). Give --ledger more than once to pool the \
            programs of several runs or evaluations; each distinct program of a problem is \
            trained and measured on once (--keep-repeats keeps repeats). --test-eval LEDGER:ID measures the \
            critic on another evaluation's programs too, e.g. samples on a test split, whose \
            problems are then never trained on. The output loads with `coderl eval --critic` \
            and as a pipeline's starting critic (`model.critic`).

            Examples:
              coderl eval --dataset mbpp --split train --limit 100 --samples 8 \\
                  --ledger L --id mbpp-train
              coderl train-critic --ledger L --eval mbpp-train --classes binary \\
                  --out critic.safetensors
              coderl train-critic --ledger runs/mbpp-c/ledger --rollouts \\
                  --classes outcomes --out critic.safetensors
              coderl train-critic --ledger runs/a/ledger --ledger runs/b/ledger \\
                  --rollouts --test-eval L:mbpp-test --out critic.safetensors
            """)

    @Option(help: "Ledger holding the evaluations or a run's rollouts (repeatable: the programs of all are pooled).")
    var ledger: [String]
    @Option(name: .customLong("eval"), help: "Evaluation whose judged programs to train on, in whichever --ledger holds it (repeatable).")
    var evals: [String] = []
    @Flag(help: "Also train on the judged training rollouts of pipeline runs (--ledger RUN/ledger; never their held-out evaluations).")
    var rollouts = false
    @Option(help: "LEDGER:ID of an evaluation to measure the critic on after every epoch; its problems are not trained on (repeatable).")
    var testEval: [String] = []
    @Flag(help: "Train on every judged program, repeats of the same program for the same problem included.")
    var keepRepeats = false
    @Option(help: "Output checkpoint (.safetensors).") var out: String
    @Option(help: "Model whose first blocks start the critic (default: the cached SmolLM2-135M-Instruct GGUF).") var model: String?
    @Option(help: "GGUF file with the tokenizer, when the model carries none.") var tokenizer: String?
    @Option(help: "binary (failed, passed) or outcomes (CodeRL's four).") var classes: CriticClasses = .binary
    @Option(help: "Transformer blocks of the critic (0: a quarter of the model's).") var layers = 0
    @Option(help: "Top blocks trained (the head is always trained; 0: all of the critic's).") var trainedLayers = 2
    @Option(help: "Passes over the training programs.") var epochs = 2
    @Option(help: "Programs per optimizer step.") var batchSize = 8
    @Option(help: "Programs per forward/backward pass.") var microBatch = 4
    @Option(help: "Peak learning rate (cosine decay to 10%).") var learningRate: Float = 1e-4
    @Option(help: "Share of problems held out to measure the critic.") var heldOut = 0.2
    @Flag(help: "Do not weight classes by inverse frequency.") var unweighted = false
    @Option(help: "Seed of the head's initialization and the data order.") var seed: UInt64 = 0
    @Option(help: "OpenBLAS threads (default: all cores).") var threads: Int?

    func validate() throws {
        guard !evals.isEmpty || rollouts else { throw ValidationError("give at least one --eval ID, or --rollouts for a run's ledger") }
        guard epochs >= 1, batchSize >= 1, microBatch >= 1, layers >= 0, trainedLayers >= 0 else {
            throw ValidationError("--epochs, --batch-size and --micro-batch must be at least 1; --layers and --trained-layers at least 0")
        }
        guard heldOut >= 0 && heldOut < 1 else { throw ValidationError("--held-out must be in [0, 1), got \(heldOut)") }
        guard learningRate > 0 && learningRate.isFinite else { throw ValidationError("--learning-rate must be positive") }
        for t in testEval where Self.splitTestEval(t) == nil {
            throw ValidationError("--test-eval \(t): expected LEDGER:ID (the ledger's path, a colon, the evaluation's id)")
        }
    }

    /// `LEDGER:ID`, split at the last colon (a ledger path may hold colons, an id does not).
    static func splitTestEval(_ text: String) -> (ledger: String, id: String)? {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        let path = String(text[..<colon]), id = String(text[text.index(after: colon)...])
        return path.isEmpty || id.isEmpty ? nil : (path, id)
    }

    func run() throws {
        BLAS.setThreads(threads ?? ProcessInfo.processInfo.activeProcessorCount)
        let path = model ?? DefaultModel.path
        if model == nil && !DefaultModel.isPresent { throw CLIError(DefaultModel.missingMessage) }
        let loaded = try LoadedModel.load(path)
        guard let tokenizerFile = tokenizer ?? loaded.tokenizerPath else { throw CLIError("\(path) carries no tokenizer; give --tokenizer GGUF") }
        let file = try GGUFFile(path: tokenizerFile)
        let format = PromptFormat(tokenizer: try Tokenizer(gguf: file), template: try? ChatTemplate(gguf: file))

        var all: [CriticExample] = [], found = Set<String>()
        for path in ledger {
            let store = try Ledger.openForReading(path: path)
            let here = try evals.filter { try store.eval(id: $0) != nil }
            found.formUnion(here)
            all += try CriticTraining.examples(ledger: store, evals: here, format: format, classes: classes)
            if rollouts {
                let runs = try CriticTraining.examples(runLedger: store, classes: classes)
                say("\(path): \(runs.count) judged rollouts")
                all += runs
            }
        }
        if let missing = evals.first(where: { !found.contains($0) }) {
            throw CLIError("no evaluation '\(missing)' in \(ledger.joined(separator: ", "))")
        }
        var test: [CriticExample] = []
        for t in testEval {
            let (path, id) = Self.splitTestEval(t)!
            test += try CriticTraining.examples(ledger: try Ledger.openForReading(path: path), evals: [id], format: format, classes: classes)
        }
        let testProblems = Set(test.map(\.problemID))
        let overlapping = all.filter { testProblems.contains($0.problemID) }.count
        all.removeAll { testProblems.contains($0.problemID) }
        if overlapping > 0 { say("left out \(overlapping) programs of problems the test evaluations hold") }
        if !keepRepeats {
            let before = all.count, (unique, conflicts) = CriticTraining.distinct(all)
            all = unique
            test = CriticTraining.distinct(test).examples
            say("\(all.count) distinct programs of \(before)" + (conflicts > 0 ? " (\(conflicts) repeats judged differently from the first)" : ""))
        }
        let (train, held) = CriticTraining.split(all, heldOut: heldOut)
        guard !train.isEmpty else { throw CLIError("\(rollouts ? "the ledgers' rollouts and evaluations" : "the evaluations") hold no judged programs to train on (\(all.count) in all)") }
        var counts = [Int](repeating: 0, count: classes.count)
        for e in train { counts[e.label] += 1 }
        say("programs: \(train.count) to train on, \(held.count) held out" + (test.isEmpty ? "" : ", \(test.count) to test on") + "; classes " +
              zip(classes.names, counts).map { "\($0) \($1)" }.joined(separator: ", "))

        let blocks = layers == 0 ? Critic.defaultLayers(actorLayers: loaded.weights.config.layers) : layers
        guard blocks <= loaded.weights.config.layers else { throw CLIError("--layers \(blocks): the model has \(loaded.weights.config.layers) blocks") }
        let critic = try Critic.fromActor(loaded.weights, layers: blocks, classes: classes, seed: seed)
        let steps = epochs * ((train.count + batchSize - 1) / batchSize)
        let trained = trainedLayers == 0 ? blocks : min(trainedLayers, blocks)
        let weights = unweighted ? nil : CriticTraining.balancedWeights(train, classes: classes)
        let session = try CriticSession(critic: critic, state: TrainingState(
            kind: .critic, trainedLayers: trained, adamw: AdamWSettings(),
            schedule: LearningRateSchedule(peak: learningRate, warmupSteps: min(10, steps / 10), decay: .cosine, totalSteps: steps, minimumRatio: 0.1),
            clipNorm: 1, rng: Xoshiro256(seed: seed &+ 1), criticClasses: classes,
            settings: ["evals": evals.joined(separator: ","), "ledger": ledger.joined(separator: ",")]), classWeights: weights)
        say("critic: \(blocks) blocks of \(path) (top \(trained) trained), \(classes.rawValue), class weights \(weights.map { "\($0)" } ?? "none"); \(steps) steps")
        if !held.isEmpty { say("before training, held out: \(try CriticTraining.quality(session.trainer, held))") }
        if !test.isEmpty { say("before training, test: \(try CriticTraining.quality(session.trainer, test))") }
        var rng = Xoshiro256(seed: seed &+ 2)
        for epoch in 1...epochs {
            let progress = ProgressLine(total: (train.count + batchSize - 1) / batchSize)
            let started = Date()
            let loss = try CriticTraining.epoch(session, train, batchSize: batchSize, microBatch: microBatch, rng: &rng) { step, _, loss in
                progress.update(done: step, unit: "steps", detail: String(format: "loss %.3f", loss))
            }
            progress.finish()
            var line = String(format: "epoch %d: mean loss %.4f (%.0f s)", epoch, loss, Date().timeIntervalSince(started))
            if !held.isEmpty { line += "; held out: \(try CriticTraining.quality(session.trainer, held))" }
            if !test.isEmpty { line += "; test: \(try CriticTraining.quality(session.trainer, test))" }
            say(line)
        }
        try session.saveWeights(to: out)
        say("wrote \(out)")
    }
}

extension CriticClasses: ExpressibleByArgument {}

/// A line on stdout, flushed at once (it reaches a log file before the next progress line).
func say(_ line: String) {
    print(line)
    fflush(nil)
}
