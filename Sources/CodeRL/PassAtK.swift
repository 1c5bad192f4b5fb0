import Foundation

/// The unbiased pass@k estimator (used by `coderl eval`).
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

/// n@k (Li et al., 2022, AlphaCode): from k samples keep those that pass the problem's example
/// tests, submit n of them, and count the problem solved when a submission passes the hidden
/// tests. The selection rule, written so it can be computed exactly: the k samples are a
/// uniformly random k-subset of the N drawn, and when more than n of them pass the example
/// tests the n submitted are a uniformly random n-subset of those (without example tests every
/// sample "passes" them). The estimate is the exact probability of solving under that rule:
///
///     sum_j  C(e, j) C(N-e, k-j) / C(N, k)  *  (1 - C(e-h, m) / C(e, m)),   m = min(n, j)
///
/// where e samples pass the example tests and h of those also pass the hidden tests (j of the
/// k drawn pass the examples; drawing j of e and then m of j is drawing m of e).
public enum NAtK {
    public static func estimate(samples N: Int, passExamples e: Int, passBoth h: Int, n: Int, k: Int) -> Double {
        precondition(N >= 0 && e >= 0 && e <= N && h >= 0 && h <= e && n >= 1 && k >= 1, "n@k needs 0 <= h <= e <= N and n, k >= 1")
        guard h > 0 else { return 0 }
        let k = min(k, N)
        var total = 0.0
        for j in max(1, k - (N - e))...min(k, e) {
            let draw = exp(logChoose(e, j) + logChoose(N - e, k - j) - logChoose(N, k))
            let m = min(n, j)
            let miss = e - h >= m ? exp(logChoose(e - h, m) - logChoose(e, m)) : 0
            total += draw * (1 - miss)
        }
        return min(1, max(0, total))
    }

    static func logChoose(_ a: Int, _ b: Int) -> Double {
        precondition(b >= 0 && b <= a)
        return lgamma(Double(a) + 1) - lgamma(Double(b) + 1) - lgamma(Double(a - b) + 1)
    }
}
