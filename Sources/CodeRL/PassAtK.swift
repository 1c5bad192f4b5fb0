import Foundation

/// The evaluation estimators of issue 7 (the `coderl eval` command itself is not built yet).
public enum PassAtK {
    /// The unbiased estimator of Chen et al. (2021): `1 - C(n-c, k) / C(n, k)` for `c` correct
    /// programs among `n` samples, computed as a product so large n does not overflow.
    public static func estimate(samples n: Int, correct c: Int, k: Int) -> Double {
        precondition(n >= 0 && c >= 0 && c <= n && k >= 1, "pass@k needs 0 <= c <= n and k >= 1")
        guard k <= n else { return c > 0 ? 1 : 0 }   // fewer samples than k: solved if any passed
        if c == 0 { return 0 }
        if n - c < k { return 1 }
        var miss = 1.0
        for i in (n - c + 1)...n { miss *= 1 - Double(k) / Double(i) }
        return 1 - miss
    }

    /// Mean pass@k over problems given as (samples, correct) pairs.
    public static func mean(_ problems: [(samples: Int, correct: Int)], k: Int) -> Double {
        guard !problems.isEmpty else { return 0 }
        return problems.map { estimate(samples: $0.samples, correct: $0.correct, k: k) }.reduce(0, +) / Double(problems.count)
    }
}
