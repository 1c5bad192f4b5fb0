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
/// With `retryAfter` > 0 a problem off the frontier is taken again once it has been passed over
/// that many times since its last group (about once per `retryAfter + 1` epochs of the stream):
/// a problem none of whose programs passed may be solvable after training, and one whose
/// programs all passed may have been forgotten. Without it the frontier only drains: in a
/// 100-step MBPP run it fell from 101 problems to 60 over the last 25 steps, as its problems
/// were fitted and nothing replaced them.
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
    /// By problem id: times passed over since the problem's last group was taken.
    public private(set) var passes: [String: Int] = [:]
    /// Problems taken again after `retryAfter` passes.
    public private(set) var retried = 0

    public init() {}

    private enum CodingKeys: String, CodingKey { case cursor, skipped, seen, passes, retried }

    /// Checkpoints written before retries existed have no `passes` or `retried`.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        cursor = try c.decode(Int.self, forKey: .cursor)
        skipped = try c.decode(Int.self, forKey: .skipped)
        seen = try c.decode([String: Seen].self, forKey: .seen)
        passes = try c.decodeIfPresent([String: Int].self, forKey: .passes) ?? [:]
        retried = try c.decodeIfPresent(Int.self, forKey: .retried) ?? 0
    }

    /// Records the outcome of a trained group of sampled programs (not the greedy baseline).
    public mutating func record(problem: String, samples: Int, passed: Int) {
        guard samples > 0 else { return }
        seen[problem] = Seen(samples: samples, passed: passed)
        passes[problem] = nil
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
    /// number of training problems; `id(position)` names the problem at a stream position; an
    /// ineligible problem passed over `retryAfter` times is taken again (0: never).
    /// When a whole epoch's worth of positions in a row is ineligible, the next one is taken
    /// anyway (the frontier is empty: sampling goes on rather than stopping the run).
    public mutating func next(count: Int, retryAfter: Int = 0, id: (Int) -> String) -> Int {
        precondition(count > 0)
        var passedOver = 0
        while passedOver < count {
            let problem = id(cursor)
            if eligible(problem) { break }
            let times = passes[problem, default: 0]
            if retryAfter > 0 && times >= retryAfter {
                passes[problem] = 0
                retried += 1
                break
            }
            passes[problem] = times + 1
            cursor += 1
            skipped += 1
            passedOver += 1
        }
        defer { cursor += 1 }
        return cursor
    }
}
