import CodeRL
import Foundation
import Llama
import Schema
import Training

/// CodeRL's critical sampling (Le et al., 2022, section 3.3.4) and its ablations.
public enum CriticalMode: String, Sendable, Codable, CaseIterable {
    /// Plain sampling.
    case none
    /// Refine the programs that pass the example tests; no repair.
    case refine
    /// Refine, and repair when no program passes the example tests.
    case repair = "refine+repair"
}

/// Which refinement critical sampling runs.
public enum CriticalVariant: String, Sendable, Codable, CaseIterable {
    /// The paper's Algorithm 1: the pool is the refined programs only, each seeded up to the
    /// critic's peak and cut where its pass probability first falls below one half.
    case paper
    /// The programs that passed the example tests stay in the pool beside their refinements
    /// (on MBPP the example tests are the hidden ones, so the paper throws known passes away),
    /// and a seed is cut before the steepest fall of the program's own critic curve rather
    /// than at an absolute one half (with a weak critic and a low base rate that left most
    /// seeds empty, making refinement plain resampling).
    case improved
}

/// Budgets of critical sampling.
public struct CriticalBudget: Sendable, Codable, Equatable {
    /// M: failed programs repaired per round (the critic's most promising ones).
    public var repairCandidates = 2
    /// Repair rounds before giving up (each repairs the previous round's fixes).
    public var rounds = 1
    public init(repairCandidates: Int = 2, rounds: Int = 1) {
        self.repairCandidates = repairCandidates
        self.rounds = rounds
    }
}

public enum CriticalSampling {
    /// How many program tokens to keep as the seed of a refinement, from the critic's pass
    /// probability at every program token: up to and including the token where it peaks (the
    /// first peak), cut earlier just before the first token where fail outscores pass
    /// (probability below one half), and never the whole program (at least the last token is
    /// resampled, so a continuation exists).
    public static func seedLength(passProbabilities p: [Float]) -> Int {
        guard !p.isEmpty else { return 0 }
        var peak = 0
        for t in p.indices where p[t] > p[peak] { peak = t }
        let firstFail = p.firstIndex { $0 < 0.5 } ?? p.count
        return max(0, min(peak + 1, firstFail, p.count - 1))
    }

    /// The improved variant's seed: the program's tokens before the steepest fall of its own
    /// pass-probability curve (`p[t-1] - p[t]` largest; the earliest on ties), so where the
    /// critic changed its mind most is resampled whatever the curve's level; a curve that never
    /// falls keeps all but the last token. Never the whole program.
    public static func relativeSeedLength(passProbabilities p: [Float]) -> Int {
        guard p.count > 1 else { return 0 }
        var cut = p.count - 1, steepest: Float = 0
        for t in 1..<p.count where p[t - 1] - p[t] > steepest {
            steepest = p[t - 1] - p[t]
            cut = t
        }
        return cut
    }

    /// The user message asking for a fix of `program`, after the problem itself.
    public static func repairMessage(problem: String, program: String, verdict: Verdict) -> String {
        var why = "It " + describe(verdict.outcome)
        if !verdict.errorType.isEmpty || !verdict.errorMessage.isEmpty {
            let message = verdict.errorMessage.count > 400 ? String(verdict.errorMessage.prefix(400)) + "..." : verdict.errorMessage
            why += ": " + [verdict.errorType, message].filter { !$0.isEmpty }.joined(separator: ": ")
        }
        return problem + "\n\nThis program is wrong:\n```python\n" + program.trimmingCharacters(in: .whitespacesAndNewlines)
            + "\n```\n" + why + ".\nWrite a corrected program."
    }

    static func describe(_ outcome: Outcome) -> String {
        switch outcome {
        case .compileError: "does not compile"
        case .runtimeError: "raises an error or runs out of time"
        case .failedTest: "fails a test"
        case .passed: "passes the tests"
        case .unspecified, .UNRECOGNIZED: "was not judged"
        }
    }
}

/// The critic as critical sampling uses it: the probability that a program passes, per token
/// and for the whole program. A binary critic's "passed" class, or a four-outcome critic's.
public final class CriticScorer {
    let trainer: CriticTrainer
    let passClass: Int
    public let classes: CriticClasses
    /// Programs per forward pass.
    let chunk = 4

    public init(critic: Critic) throws {
        trainer = try CriticTrainer(critic: critic, trainedLayers: 1)
        classes = critic.classes
        passClass = Rewards.criticClass(.passed, binary: critic.classes == .binary)!
    }

    public var vocabularySize: Int { trainer.critic.config.vocabularySize }

    /// Per program, the pass probability at every program token (empty for an empty program).
    public func tokenPassProbabilities(prompt: [Int], programs: [[Int]]) throws -> [[Float]] {
        try scored(prompt, programs, empty: []) { batch, count in
            try trainer.tokenProbabilities(batch, classes: Array(repeating: passClass, count: count))
        }
    }

    /// Per program, the pass probability of the whole program (pooled over its tokens).
    public func passProbabilities(prompt: [Int], programs: [[Int]]) throws -> [Float] {
        try scored(prompt, programs, empty: 0) { batch, _ in try trainer.predict(batch).map { $0[passClass] } }
    }

    /// Runs `body` on batches of at most `chunk` non-empty programs, each after `prompt`.
    private func scored<R>(_ prompt: [Int], _ programs: [[Int]], empty: R, _ body: (CriticBatch, Int) throws -> [R]) throws -> [R] {
        var out = [R](repeating: empty, count: programs.count)
        let nonEmpty = programs.indices.filter { !programs[$0].isEmpty }
        for start in stride(from: 0, to: nonEmpty.count, by: chunk) {
            let part = Array(nonEmpty[start..<min(start + chunk, nonEmpty.count)])
            let batch = try CriticBatch.programs(part.map { prompt + programs[$0] },
                                                 promptLengths: Array(repeating: prompt.count, count: part.count),
                                                 classes: classes, pad: 0, vocabularySize: vocabularySize)
            for (i, r) in zip(part, try body(batch, part.count)) { out[i] = r }
        }
        return out
    }
}
