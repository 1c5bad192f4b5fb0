import CodeRL
import Execution
import Foundation
import Ledger
import Llama
import Schema

/// Recomputes what the critic-labeler attached to stored rollouts, without generating again:
/// critic weights from another critic, and optionally verdicts (re-executing the stored
/// programs against the problems' current hidden tests), rewards and returns.
public struct Relabeler {
    public var critic: CriticTrainer?
    public var executor: Executor?
    public var limits = Limits()
    public var returnMode: Rewards.ReturnMode = .relative
    public var baseline: Rewards.Baseline = .greedy
    public var reward: Rewards.Scheme = .coderl

    public init() {}

    public struct Summary: Sendable {
        public var groups = 0
        public var rollouts = 0
        public var reexecuted = 0
        public var changedVerdicts = 0
        public var infrastructureErrors = 0
    }

    /// Relabels labeled and consumed train rollouts with sequences in `range`, group by group
    /// (one ledger transaction per group). `progress` gets the rollouts done so far.
    public func run(ledger: Ledger, range: ClosedRange<UInt64>, progress: (Int) -> Void = { _ in }) throws -> Summary {
        var summary = Summary()
        var order: [String] = []
        var groups: [String: [Rollout]] = [:]
        try ledger.scanRollouts(from: range.lowerBound) { r in
            guard r.sequence <= range.upperBound else { return false }
            guard r.state == .labeled || r.state == .consumed, r.use != .eval else { return true }
            let key = r.requestID + "\u{1}" + r.problemID
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append(r)
            return true
        }
        var suites: [String: TestSuite] = [:]
        for key in order {
            var members = groups[key]!
            if let executor {
                for i in members.indices {
                    let problemID = members[i].problemID
                    if suites[problemID] == nil {
                        guard let problem = try ledger.problem(id: problemID), let suite = try ledger.testSuite(hash: [UInt8](problem.hiddenTests)) else {
                            throw PipelineError("problem \(problemID) or its hidden tests are missing from the ledger")
                        }
                        suites[problemID] = suite
                    }
                    switch try executor.run(program: members[i].program, suite: suites[problemID]!, limits: limits) {
                    case .verdict(let v):
                        if v.outcome != members[i].verdict.outcome { summary.changedVerdicts += 1 }
                        members[i].verdict = v
                        summary.reexecuted += 1
                    case .infrastructureError(let reason):
                        // Kept as it was: an infrastructure failure says nothing about the program.
                        summary.infrastructureErrors += 1
                        FileHandle.standardError.write(Data("rollout \(members[i].sequence): infrastructure error, verdict kept: \(reason)\n".utf8))
                    }
                }
            }
            Rewards.label(&members, mode: returnMode, baseline: baseline, scheme: reward)
            if let critic { try LabelerService.attachCriticWeights(&members, critic) }
            let updated = Dictionary(uniqueKeysWithValues: members.map { ($0.sequence, $0) })
            try ledger.update(sequences: members.map(\.sequence)) { r in
                let u = updated[r.sequence]!
                r.verdict = u.verdict
                r.reward = u.reward
                r.advantage = u.advantage
                r.criticWeights = u.criticWeights
            }
            summary.groups += 1
            summary.rollouts += members.count
            progress(summary.rollouts)
        }
        return summary
    }
}
