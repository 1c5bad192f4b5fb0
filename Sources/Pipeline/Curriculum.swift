import Runtime

/// Which training problem each RL sample request takes.
///
/// The training problems are visited in a stream of shuffled epochs. Under `.all` every problem
/// is taken in turn. Under `.frontier` a problem is passed over when the last group of programs
/// sampled for it carried no signal: none of them passed, or all of them did (a problem not
/// sampled yet is taken, so the first pass over the problems takes every one). Only
/// problems where some but not all samples pass move a pass/fail policy gradient with a
/// group baseline, so the frontier is where sampling time pays; on MBPP with SmolLM2-135M at
/// T = 0.5 about one problem in seven is on it (8 samples).
///
/// Pure and deterministic: the learner keeps it in its checkpoint, and the same outcomes in the
/// same order give the same problems.
public struct Curriculum: Codable, Equatable, Sendable {
    public typealias Mode = PipelineConfig.CurriculumMode

    /// The last trained group of a problem: programs sampled and how many passed.
    public struct Seen: Codable, Equatable, Sendable {
        public var samples: Int
        public var passed: Int
        /// Some but not all programs passed.
        public var mixed: Bool { passed > 0 && passed < samples }
    }

    public var mode: Mode
    /// Positions of the problem stream already taken or passed over.
    public private(set) var cursor = 0
    /// Positions passed over so far.
    public private(set) var skipped = 0
    /// By problem id.
    public private(set) var seen: [String: Seen] = [:]

    public init(mode: Mode) { self.mode = mode }

    /// Records the outcome of a trained group of sampled programs (not the greedy baseline).
    public mutating func record(problem: String, samples: Int, passed: Int) {
        guard samples > 0 else { return }
        seen[problem] = Seen(samples: samples, passed: passed)
    }

    /// Whether the problem is taken when its turn comes.
    public func eligible(_ problem: String) -> Bool {
        guard mode == .frontier, let s = seen[problem] else { return true }
        return s.mixed
    }

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
