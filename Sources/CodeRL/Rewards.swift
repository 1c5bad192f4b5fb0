import Schema

/// CodeRL's rewards (Le et al., 2022, eq. 4) and the returns the actor is trained on.
public enum Rewards {
    /// How an outcome becomes a reward.
    public enum Scheme: String, Sendable, CaseIterable {
        /// CodeRL's graded rewards: compile error -1.0, runtime error -0.6, failed test -0.3, passed +1.0.
        case coderl
        /// Pass or fail: passed 1, anything else 0. With a group-mean baseline only problems where
        /// some but not all samples pass carry a signal, and failures are not ranked among themselves.
        case pass
    }

    /// compile error -1.0, runtime error (timeouts included) -0.6, failed test -0.3, passed +1.0
    /// (`.coderl`); passed 1, anything else 0 (`.pass`).
    public static func reward(_ outcome: Outcome, scheme: Scheme = .coderl) -> Float {
        if scheme == .pass { return outcome == .passed ? 1 : 0 }
        return switch outcome {
        case .compileError: -1.0
        case .runtimeError: -0.6
        case .failedTest: -0.3
        case .passed: 1.0
        case .unspecified, .UNRECOGNIZED: 0
        }
    }

    /// What a program's reward is compared with.
    public enum Baseline: String, Sendable, CaseIterable {
        /// CodeRL: the reward of the greedy program for the same problem and policy version.
        case greedy
        /// The mean reward of the K sampled programs of the group (the baseline itself excluded).
        case groupMean = "group-mean"
    }

    /// How the return of a sampled program is formed.
    public enum ReturnMode: String, Sendable, CaseIterable {
        /// reward - baseline (CodeRL).
        case relative
        /// the reward itself.
        case absolute
    }

    /// The returns of one group (the programs sampled for one problem from one request and
    /// policy version). `rewards[i]` is program i's reward; `isBaseline[i]` marks the greedy
    /// program. The greedy program's own return is 0 under a relative return (it is the
    /// reference, not a sample: CodeRL does not train on it). Returns nil for the greedy
    /// baseline when the group has no greedy program.
    public static func returns(rewards: [Float], isBaseline: [Bool], mode: ReturnMode, baseline: Baseline) -> [Float]? {
        precondition(rewards.count == isBaseline.count)
        if mode == .absolute { return rewards }
        let reference: Float
        switch baseline {
        case .greedy:
            guard let g = isBaseline.firstIndex(of: true) else { return nil }
            reference = rewards[g]
        case .groupMean:
            let sampled = zip(rewards, isBaseline).filter { !$0.1 }.map(\.0)
            guard !sampled.isEmpty else { return rewards.map { _ in 0 } }
            reference = sampled.reduce(0, +) / Float(sampled.count)
        }
        return zip(rewards, isBaseline).map { r, greedy in greedy ? 0 : r - reference }
    }

    /// How the critic's per-token probabilities become token weights.
    public enum CriticScale: String, Sendable, CaseIterable {
        /// Each program's weights rescaled to mean 1: the critic decides which of a program's
        /// tokens carry its return, not how much the program counts. The probability of a pass
        /// is low wherever passes are rare, so raw weights shrink exactly the rare programs that
        /// passed, and shrink the policy term against the cross-entropy term.
        case mean
        /// The critic's probability of the program's outcome as it is (CodeRL, eq. 8).
        case raw
    }

    /// The per-token weights of a sampled program's policy-gradient term: its return times the
    /// critic's probabilities scaled by `scale` (1 at every token when `critic` is nil or does
    /// not cover the program's `count` tokens).
    public static func tokenWeights(advantage: Float, critic: [Float]?, count: Int, scale: CriticScale) -> [Float] {
        guard let critic, critic.count == count, count > 0 else { return [Float](repeating: advantage, count: count) }
        var factor = advantage
        if scale == .mean {
            let mean = critic.reduce(0, +) / Float(count)
            // A critic sure the outcome cannot happen at any token carries no ranking of tokens.
            guard mean > 1e-6 else { return [Float](repeating: advantage, count: count) }
            factor /= mean
        }
        return critic.map { $0 * factor }
    }

    /// Critic class of an outcome: the four outcomes in order (compile error 0, runtime error 1,
    /// failed test 2, passed 3), or binary (failed 0, passed 1).
    public static func criticClass(_ outcome: Outcome, binary: Bool) -> Int? {
        switch outcome {
        case .compileError: binary ? 0 : 0
        case .runtimeError: binary ? 0 : 1
        case .failedTest: binary ? 0 : 2
        case .passed: binary ? 1 : 3
        case .unspecified, .UNRECOGNIZED: nil
        }
    }

    /// Sets the reward and return of every scored program of one group (one request, one
    /// problem); programs without an outcome (parked executions) are left unscored. When the
    /// greedy baseline is itself unscored, returns fall back to the group mean. Returns the
    /// indices of the scored programs.
    @discardableResult
    public static func label(_ group: inout [Rollout], mode: ReturnMode, baseline: Baseline, scheme: Scheme = .coderl) -> [Int] {
        let scored = group.indices.filter { group[$0].verdict.outcome != .unspecified }
        let rewards = scored.map { reward(group[$0].verdict.outcome, scheme: scheme) }
        let flags = scored.map { group[$0].baseline }
        let values = returns(rewards: rewards, isBaseline: flags, mode: mode, baseline: baseline)
            ?? returns(rewards: rewards, isBaseline: flags, mode: mode, baseline: .groupMean)!
        for (k, i) in scored.enumerated() {
            group[i].reward = rewards[k]
            group[i].advantage = values[k]
        }
        return scored
    }
}

/// How well a classifier's confidence matches its accuracy.
public enum Calibration {
    /// Expected calibration error: predictions binned by confidence (the top class's
    /// probability) into `bins` equal-width bins; the sum over bins of (bin size / all) x
    /// |accuracy in the bin - mean confidence in the bin|. 0 is perfectly calibrated.
    public static func expectedError(probabilities: [[Float]], labels: [Int], bins: Int = 10) -> Double {
        precondition(probabilities.count == labels.count && bins > 0)
        guard !labels.isEmpty else { return 0 }
        var count = [Int](repeating: 0, count: bins), right = [Double](repeating: 0, count: bins), confidence = [Double](repeating: 0, count: bins)
        for (p, y) in zip(probabilities, labels) {
            guard let top = p.indices.max(by: { p[$0] < p[$1] }) else { continue }
            let c = Double(p[top])
            let b = min(bins - 1, max(0, Int(c * Double(bins))))
            count[b] += 1
            confidence[b] += c
            if top == y { right[b] += 1 }
        }
        var error = 0.0
        for b in 0..<bins where count[b] > 0 {
            error += abs(right[b] - confidence[b]) / Double(labels.count)
        }
        return error
    }
}
