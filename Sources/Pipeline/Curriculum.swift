import Schema

/// Which training problem each RL sample request takes under `training.curriculum: frontier`.
///
/// The training problems are visited in a stream of shuffled epochs. A problem is passed over
/// when the last group of programs sampled for it carried no signal: none of them passed, or
/// all of them did (a problem not sampled yet is taken, so the first pass over the problems
/// takes every one). Only problems where some but not all samples pass move a pass/fail policy
/// gradient with a group baseline, so the frontier is where sampling time pays; on MBPP with
/// SmolLM2-135M at T = 0.5 about one problem in six is on it (8 samples).
///
/// Pure and deterministic: the learner keeps it in its checkpoint, and the same outcomes in the
/// same order give the same problems. (Under `training.curriculum: all` the learner takes the
/// stream as it is and only records outcomes here, for the frontier's size.)
public struct Curriculum: Codable, Equatable, Sendable {
    /// The last trained group of a problem: programs sampled and how many passed.
    public struct Seen: Codable, Equatable, Sendable {
        public var samples: Int
        public var passed: Int
        /// Some but not all programs passed.
        public var mixed: Bool { passed > 0 && passed < samples }
    }

    /// Positions of the problem stream already taken or passed over.
    public private(set) var cursor = 0
    /// Positions passed over so far.
    public private(set) var skipped = 0
    /// By problem id.
    public private(set) var seen: [String: Seen] = [:]

    public init() {}

    /// Records the outcome of a trained group of sampled programs (not the greedy baseline).
    public mutating func record(problem: String, samples: Int, passed: Int) {
        guard samples > 0 else { return }
        seen[problem] = Seen(samples: samples, passed: passed)
    }

    /// Records the groups (one request, one problem) of a step's scored sampled programs, in
    /// ledger order: a problem sampled twice in one step keeps its later group.
    public mutating func record(_ rollouts: [Rollout]) {
        var start = rollouts.startIndex
        while start < rollouts.endIndex {
            let first = rollouts[start]
            let end = rollouts[start...].firstIndex { $0.requestID != first.requestID || $0.problemID != first.problemID } ?? rollouts.endIndex
            let group = rollouts[start..<end]
            record(problem: first.problemID, samples: group.count, passed: group.filter { $0.verdict.outcome == .passed }.count)
            start = end
        }
    }

    /// Whether the problem is taken when its turn comes.
    public func eligible(_ problem: String) -> Bool { seen[problem]?.mixed ?? true }

    /// Problems whose last group was mixed.
    public var frontierCount: Int { seen.values.filter(\.mixed).count }

    /// The stream position of the next problem to sample, and advances past it. `count` is the
    /// number of training problems; `id(position)` names the problem at a stream position.
    /// When a whole epoch's worth of positions in a row is ineligible, the next one is taken
    /// anyway (the frontier is empty: sampling goes on rather than stopping the run).
    public mutating func next(count: Int, id: (Int) -> String) -> Int {
        precondition(count > 0)
        var passedOver = 0
        while passedOver < count && !eligible(id(cursor)) {
            cursor += 1
            skipped += 1
            passedOver += 1
        }
        defer { cursor += 1 }
        return cursor
    }
}
