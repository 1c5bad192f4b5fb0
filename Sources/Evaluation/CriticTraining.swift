import CodeRL
import Foundation
import Ledger
import Llama
import Optim
import Schema
import Tensor
import Training

/// A program with its prompt and its class, for training or checking a critic.
public struct CriticExample: Sendable {
    public var problemID: String
    public var prompt: [Int]
    public var program: [Int]
    public var label: Int

    public init(problemID: String, prompt: [Int], program: [Int], label: Int) {
        self.problemID = problemID
        self.prompt = prompt
        self.program = program
        self.label = label
    }
}

/// Trains a critic offline on judged programs, as CodeRL trains its critic before RL: the
/// programs of evaluations stored in a ledger (`coderl eval` on a training split), each
/// labeled with its outcome on the hidden tests.
public enum CriticTraining {
    /// The judged programs of evaluations `ids`: the problem's prompt (the same the actor and
    /// the pipeline's critic see), the generated tokens, and the class of the hidden verdict.
    /// Programs without a hidden verdict (not in the pool, or not judged) are left out.
    public static func examples(ledger: Ledger, evals ids: [String], format: PromptFormat, classes: CriticClasses) throws -> [CriticExample] {
        var out: [CriticExample] = []
        var prompts: [String: [Int]] = [:]
        for id in ids {
            guard try ledger.eval(id: id) != nil else { throw EvalError("no evaluation '\(id)' in \(ledger.path)") }
            for result in try ledger.evalResults(eval: id) {
                if prompts[result.problemID] == nil {
                    guard let problem = try ledger.problem(id: result.problemID) else {
                        throw EvalError("evaluation \(id) names problem \(result.problemID), which \(ledger.path) does not hold")
                    }
                    prompts[result.problemID] = format.promptTokens(problem, exampleTests: try ledger.testSuite(hash: [UInt8](problem.exampleTests)))
                }
                for s in result.samples where s.hasVerdict && !s.programTokens.isEmpty {
                    guard let label = Rewards.criticClass(s.verdict.outcome, binary: classes == .binary) else { continue }
                    out.append(CriticExample(problemID: result.problemID, prompt: prompts[result.problemID]!,
                                             program: s.programTokens.map { Int($0) }, label: label))
                }
            }
        }
        return out
    }

    /// The judged programs of a pipeline run's ledger: its training rollouts (never the
    /// held-out evaluations' programs), each with the prompt the pipeline gave it and the class
    /// of its verdict; programs still without a verdict are left out.
    public static func examples(runLedger ledger: Ledger, classes: CriticClasses) throws -> [CriticExample] {
        var out: [CriticExample] = []
        try ledger.scanRollouts { r in
            guard r.use != .eval, r.verdict.outcome != .unspecified, !r.programTokens.isEmpty, !r.promptTokens.isEmpty,
                  let label = Rewards.criticClass(r.verdict.outcome, binary: classes == .binary) else { return true }
            out.append(CriticExample(problemID: r.problemID, prompt: r.promptTokens.map { Int($0) },
                                     program: r.programTokens.map { Int($0) }, label: label))
            return true
        }
        return out
    }

    /// One example per distinct (problem, program): sampling at a low temperature repeats
    /// programs, and a repeated program teaches the critic nothing new but costs a pass.
    /// `conflicts` counts repeats whose label differed from the first one's (flaky tests).
    public static func distinct(_ examples: [CriticExample]) -> (examples: [CriticExample], conflicts: Int) {
        struct Key: Hashable { var problem: String; var program: [Int] }
        var seen: [Key: Int] = [:], out: [CriticExample] = [], conflicts = 0
        for e in examples {
            let key = Key(problem: e.problemID, program: e.program)
            if let first = seen[key] {
                if out[first].label != e.label { conflicts += 1 }
                continue
            }
            seen[key] = out.count
            out.append(e)
        }
        return (out, conflicts)
    }

    /// Splits by problem (a problem's programs all land on one side): about `fraction` of the
    /// problems, chosen by a hash of their ids, are held out.
    public static func split(_ examples: [CriticExample], heldOut fraction: Double) -> (train: [CriticExample], heldOut: [CriticExample]) {
        let held = { (id: String) in Double(XXH64.hash(Array(id.utf8), seed: 11) % 1000) < fraction * 1000 }
        return (examples.filter { !held($0.problemID) }, examples.filter { held($0.problemID) })
    }

    /// Inverse class frequencies, normalized to mean 1 over the classes present (classes
    /// absent from the data get weight 0 and never occur).
    public static func balancedWeights(_ examples: [CriticExample], classes: CriticClasses) -> [Float] {
        var counts = [Int](repeating: 0, count: classes.count)
        for e in examples { counts[e.label] += 1 }
        let present = counts.filter { $0 > 0 }.count
        guard present > 0 else { return [Float](repeating: 1, count: classes.count) }
        let raw = counts.map { $0 > 0 ? Float(examples.count) / Float($0) : 0 }
        let mean = raw.reduce(0, +) / Float(present)
        return raw.map { $0 / mean }
    }

    public static func batch(_ examples: ArraySlice<CriticExample>, classes: CriticClasses, vocabularySize: Int, withLabels: Bool = true) throws -> CriticBatch {
        try CriticBatch.programs(examples.map { $0.prompt + $0.program }, promptLengths: examples.map(\.prompt.count),
                                 labels: withLabels ? examples.map(\.label) : nil, classes: classes, pad: 0, vocabularySize: vocabularySize)
    }

    /// Accuracy, balanced accuracy (mean recall over the classes present) and the recall of
    /// "passed", from the critic's pooled predictions; and how well its probability of
    /// "passed" is calibrated: the Brier score, the expected calibration error over ten
    /// equal-width bins, and the mean predicted against the actual pass rate.
    public struct Quality: Sendable, CustomStringConvertible {
        public var examples = 0
        public var accuracy = 0.0
        public var balancedAccuracy = 0.0
        public var passRecall = 0.0
        public var passPrecision = 0.0
        public var brier = 0.0
        public var calibrationError = 0.0
        public var meanPredictedPass = 0.0
        public var passRate = 0.0
        /// The probability that a passing program gets a higher p(pass) than a failing one
        /// (area under the ROC curve; 0.5 is chance): how well the critic ranks, which is what
        /// choosing programs to repair or refine needs, whatever its calibration.
        public var passAUC = 0.5
        public init() {}
        public var description: String {
            String(format: "%d programs: accuracy %.1f%%, balanced accuracy %.1f%%, pass recall %.1f%%, pass precision %.1f%%; "
                   + "p(pass) mean %.1f%% against %.1f%% passed, AUC %.3f, Brier %.3f, calibration error %.1f points",
                   examples, accuracy * 100, balancedAccuracy * 100, passRecall * 100, passPrecision * 100,
                   meanPredictedPass * 100, passRate * 100, passAUC, brier, calibrationError * 100)
        }

        /// Calibration of `predicted` probabilities of passing against what happened.
        public mutating func calibrate(predicted: [Double], passed: [Bool], bins: Int = 10) {
            precondition(predicted.count == passed.count)
            let n = Double(max(predicted.count, 1))
            brier = zip(predicted, passed).map { ($0 - ($1 ? 1 : 0)) * ($0 - ($1 ? 1 : 0)) }.reduce(0, +) / n
            meanPredictedPass = predicted.reduce(0, +) / n
            passRate = Double(passed.filter { $0 }.count) / n
            var sumP = [Double](repeating: 0, count: bins), hits = [Double](repeating: 0, count: bins), count = [Double](repeating: 0, count: bins)
            for (p, y) in zip(predicted, passed) {
                let b = min(bins - 1, max(0, Int(p * Double(bins))))
                sumP[b] += p
                hits[b] += y ? 1 : 0
                count[b] += 1
            }
            calibrationError = (0..<bins).map { count[$0] > 0 ? abs(sumP[$0] - hits[$0]) : 0 }.reduce(0, +) / n
            passAUC = Self.auc(predicted: predicted, passed: passed)
        }

        /// Mann-Whitney: the share of (passing, failing) pairs ranked the right way, ties
        /// counting half; 0.5 when either class is absent.
        static func auc(predicted: [Double], passed: [Bool]) -> Double {
            let positives = passed.filter { $0 }.count, negatives = passed.count - positives
            guard positives > 0, negatives > 0 else { return 0.5 }
            let order = predicted.indices.sorted { predicted[$0] < predicted[$1] }
            var rankSum = 0.0, i = 0
            while i < order.count {
                var j = i
                while j + 1 < order.count && predicted[order[j + 1]] == predicted[order[i]] { j += 1 }
                let rank = Double(i + j) / 2 + 1   // mean rank of the tie group, 1-based
                for k in i...j where passed[order[k]] { rankSum += rank }
                i = j + 1
            }
            return (rankSum - Double(positives) * Double(positives + 1) / 2) / (Double(positives) * Double(negatives))
        }
    }

    public static func quality(_ trainer: CriticTrainer, _ examples: [CriticExample], chunk: Int = 4) throws -> Quality {
        let classes = trainer.critic.classes, K = classes.count
        let pass = Rewards.criticClass(.passed, binary: classes == .binary)!
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: K), count: K)
        var passProbability: [Double] = [], passed: [Bool] = []
        for start in stride(from: 0, to: examples.count, by: chunk) {
            let part = examples[start..<min(start + chunk, examples.count)]
            let probabilities = try trainer.predict(try batch(part, classes: classes, vocabularySize: trainer.critic.config.vocabularySize, withLabels: false))
            for (e, p) in zip(part, probabilities) {
                let predicted = p.indices.max { p[$0] < p[$1] }!
                confusion[e.label][predicted] += 1
                passProbability.append(Double(p[pass]))
                passed.append(e.label == pass)
            }
        }
        var q = Quality()
        q.examples = examples.count
        guard !examples.isEmpty else { return q }
        q.calibrate(predicted: passProbability, passed: passed)
        q.accuracy = Double((0..<K).map { confusion[$0][$0] }.reduce(0, +)) / Double(examples.count)
        let recalls = (0..<K).compactMap { c -> Double? in
            let n = confusion[c].reduce(0, +)
            return n > 0 ? Double(confusion[c][c]) / Double(n) : nil
        }
        q.balancedAccuracy = recalls.reduce(0, +) / Double(max(recalls.count, 1))
        let actualPass = confusion[pass].reduce(0, +), predictedPass = (0..<K).map { confusion[$0][pass] }.reduce(0, +)
        q.passRecall = actualPass > 0 ? Double(confusion[pass][pass]) / Double(actualPass) : 0
        q.passPrecision = predictedPass > 0 ? Double(confusion[pass][pass]) / Double(predictedPass) : 0
        return q
    }

    /// One epoch over `examples` in a seeded random order, `batchSize` programs per optimizer
    /// step in micro-batches of `microBatch`. Returns the mean loss.
    public static func epoch(_ session: CriticSession, _ examples: [CriticExample], batchSize: Int, microBatch: Int,
                             rng: inout Xoshiro256, onStep: (Int, Int, Float) -> Void = { _, _, _ in }) throws -> Float {
        var order = Array(examples.indices)
        for i in stride(from: order.count - 1, to: 0, by: -1) {
            order.swapAt(i, Int(rng.next() % UInt64(i + 1)))
        }
        let classes = session.critic.classes, V = session.critic.config.vocabularySize
        var total: Double = 0, steps = 0
        for start in stride(from: 0, to: order.count, by: batchSize) {
            let chosen = order[start..<min(start + batchSize, order.count)].map { examples[$0] }
            let micro = try stride(from: 0, to: chosen.count, by: microBatch).map {
                try batch(chosen[$0..<min($0 + microBatch, chosen.count)], classes: classes, vocabularySize: V)
            }
            let (loss, _, _) = try session.step(micro, examples: chosen.count, rng: rng)
            total += Double(loss)
            steps += 1
            onStep(steps, (order.count + batchSize - 1) / batchSize, loss)
        }
        return Float(total / Double(max(steps, 1)))
    }
}
