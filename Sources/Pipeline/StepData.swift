import CodeRL
import Foundation
import Ledger
import Llama
import Runtime
import Schema

/// What one learner step trains on, built from labeled rollouts in ledger order, and the
/// statistics the progress line reports.
public struct StepData {
    /// Rollouts consumed by this step (train purpose), in sequence order.
    public var rollouts: [Rollout] = []
    /// Eval rollouts passed over (they stay in the ledger for the summary).
    public var skippedEval = 0
    /// The last sequence consumed (the learner's new position).
    public var lastSequence: UInt64 = 0

    public struct Counts: Sendable, Codable, Equatable {
        public var rollouts = 0
        public var stale = 0
        public var unscored = 0
        public var passed = 0
        public var outcomes = [0, 0, 0, 0]   // compile error, runtime error, failed test, passed
        public var rewardSum: Double = 0
        public var lagSum: Double = 0

        public mutating func add(_ other: Counts) {
            rollouts += other.rollouts
            stale += other.stale
            unscored += other.unscored
            passed += other.passed
            rewardSum += other.rewardSum
            lagSum += other.lagSum
            for k in outcomes.indices { outcomes[k] += other.outcomes[k] }
        }
    }

    /// The stale rule: more than `maxLag` versions behind the learner's actor.
    public static func isStale(_ r: Rollout, version: UInt64, maxLag: Int) -> Bool {
        version > r.policyVersion && version - r.policyVersion > UInt64(maxLag)
    }

    /// Collects the next `problems` request groups of train rollouts after `position`, all
    /// labeled; nil when the ledger does not hold them yet.
    public static func collect(from ledger: Ledger, after position: UInt64, problems: Int) throws -> StepData? {
        var data = StepData()
        var groups: [String] = []
        var complete = false
        try ledger.scanRollouts(from: position + 1, pageSize: 512) { r in
            guard r.state == .labeled || r.state == .consumed else { return false }
            if r.use == .eval {
                data.skippedEval += 1
                data.lastSequence = r.sequence
                return true
            }
            let key = r.requestID + "\u{1}" + r.problemID
            if groups.last != key {
                if groups.count == problems { complete = true; return false }
                groups.append(key)
            }
            data.rollouts.append(r)
            data.lastSequence = r.sequence
            return true
        }
        if !complete {
            // The last group may be complete while nothing follows it yet: a request's
            // rollouts are appended in one transaction, so all of them are there.
            guard groups.count == problems, let last = data.rollouts.last else { return nil }
            let seen = data.rollouts.filter { $0.requestID == last.requestID }.count
            guard (try ledger.requestRollouts(last.requestID)?.count ?? 0) <= seen else { return nil }
        }
        return data
    }

    /// Counts for the progress line; `version` is the learner's actor version.
    public func counts(version: UInt64, maxLag: Int) -> Counts {
        var c = Counts()
        for r in rollouts {
            c.rollouts += 1
            guard r.verdict.outcome != .unspecified else { c.unscored += 1; continue }
            if let k = Rewards.criticClass(r.verdict.outcome, binary: false) { c.outcomes[k] += 1 }
            if r.verdict.outcome == .passed { c.passed += 1 }
            c.rewardSum += Double(r.reward)
            c.lagSum += Double(version > r.policyVersion ? version - r.policyVersion : 0)
            if Self.isStale(r, version: version, maxLag: maxLag) { c.stale += 1 }
        }
        return c
    }
}

/// Builds the actor's and the critic's micro-batches of a step.
public struct BatchBuilder {
    public var maxTokens: Int
    public var microBatch: Int
    public var vocabularySize: Int
    public var pad: Int

    public init(maxTokens: Int, microBatch: Int, vocabularySize: Int, pad: Int) {
        self.maxTokens = maxTokens
        self.microBatch = microBatch
        self.vocabularySize = vocabularySize
        self.pad = pad
    }

    /// Prompt + completion cut to `maxTokens` (the completion's tail goes first; a prompt
    /// longer than the limit keeps its last tokens), and the prompt length.
    public func cut(prompt: [Int], completion: [Int]) -> (tokens: [Int], promptLength: Int, kept: Int)? {
        guard !completion.isEmpty else { return nil }
        var p = prompt
        if p.count > maxTokens - 1 { p = Array(p.suffix(maxTokens / 2)) }
        let kept = min(completion.count, maxTokens - p.count)
        guard kept >= 1 else { return nil }
        return (p + completion.prefix(kept), p.count, kept)
    }

    /// Micro-batches of completions with per-token weights (nil weights: cross-entropy).
    /// Completions of one prompt go into micro-batches together (in the order their prompts
    /// first appear), so that the frozen blocks compute the prompt once for all of them.
    public func batches(_ items: [(prompt: [Int], completion: [Int], weights: [Float]?)]) throws -> [TrainingBatch] {
        var firstSeen: [[Int]: Int] = [:]
        for (i, item) in items.enumerated() where firstSeen[item.prompt] == nil { firstSeen[item.prompt] = i }
        let items = items.indices.sorted { (firstSeen[items[$0].prompt]!, $0) < (firstSeen[items[$1].prompt]!, $1) }.map { items[$0] }
        var out: [TrainingBatch] = []
        var start = 0
        while start < items.count {
            let chunk = items[start..<min(items.count, start + microBatch)]
            var seqs: [[Int]] = [], lengths: [Int] = [], weights: [[Float]] = []
            let weighted = chunk.first?.weights != nil
            for item in chunk {
                guard let c = cut(prompt: item.prompt, completion: item.completion) else { continue }
                seqs.append(c.tokens)
                lengths.append(c.promptLength)
                if let w = item.weights { weights.append(Array(w.prefix(c.kept))) }
            }
            if !seqs.isEmpty {
                out.append(try TrainingBatch.completions(seqs, promptLengths: lengths, weights: weighted ? weights : nil,
                                                         pad: pad, vocabularySize: vocabularySize))
            }
            start += microBatch
        }
        return out
    }

    public func criticBatches(_ rollouts: [Rollout], classes: CriticClasses) throws -> [CriticBatch] {
        var out: [CriticBatch] = []
        var start = 0
        while start < rollouts.count {
            let chunk = rollouts[start..<min(rollouts.count, start + microBatch)]
            var seqs: [[Int]] = [], lengths: [Int] = [], labels: [Int] = []
            for r in chunk {
                guard let c = cut(prompt: r.promptTokens.map(Int.init), completion: r.programTokens.map(Int.init)),
                      let label = Rewards.criticClass(r.verdict.outcome, binary: classes == .binary) else { continue }
                seqs.append(c.tokens)
                lengths.append(c.promptLength)
                labels.append(label)
            }
            if !seqs.isEmpty {
                out.append(try CriticBatch.programs(seqs, promptLengths: lengths, labels: labels, classes: classes,
                                                    pad: pad, vocabularySize: vocabularySize))
            }
            start += microBatch
        }
        return out
    }
}
