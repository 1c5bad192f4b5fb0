import Foundation

/// Two evaluations of the same problems compared problem by problem: a learning claim is a
/// paired test, not two pass rates side by side.
///
/// Each problem has a score in each evaluation, its pass@1 estimate (correct / judged
/// programs; for greedy evaluation 0 or 1), and is counted solved when that score is at least
/// one half. The difference of mean scores gets a paired-bootstrap 95% interval (problems
/// resampled with replacement) and a paired sign-flip permutation test (each problem's
/// difference keeps or flips its sign at random: under "no difference" both are equally
/// likely), which uses every problem's score, so sampled evaluations (several programs per
/// problem) have far more power than solved-or-not; solved-or-not gets McNemar's exact test
/// on the discordant problems (solved by one evaluation only).
public struct PairedComparison: Sendable {
    public struct Problem: Sendable, Equatable {
        public var id: String
        public var a: Double
        public var b: Double
        public init(id: String, a: Double, b: Double) {
            self.id = id
            self.a = a
            self.b = b
        }
    }

    public let problems: [Problem]
    public let meanA: Double
    public let meanB: Double
    /// Problems solved by B only (gained) and by A only (lost).
    public let gained: [String]
    public let lost: [String]
    public let bothSolved: Int
    public let neitherSolved: Int
    /// McNemar's exact two-sided p-value.
    public let pValue: Double
    /// The paired-bootstrap 95% interval of meanB - meanA.
    public let interval: (low: Double, high: Double)
    /// The two-sided p-value of the paired sign-flip permutation test on the scores.
    public let permutationP: Double

    public var difference: Double { meanB - meanA }

    /// `resamples` bootstrap resamples drawn with a fixed seed (the interval is reproducible).
    public init(_ problems: [Problem], resamples: Int = 10_000, seed: UInt64 = 0x5EED) {
        self.problems = problems
        let n = Double(max(problems.count, 1))
        meanA = problems.map(\.a).reduce(0, +) / n
        meanB = problems.map(\.b).reduce(0, +) / n
        gained = problems.filter { $0.b >= 0.5 && $0.a < 0.5 }.map(\.id)
        lost = problems.filter { $0.a >= 0.5 && $0.b < 0.5 }.map(\.id)
        bothSolved = problems.count { $0.a >= 0.5 && $0.b >= 0.5 }
        neitherSolved = problems.count { $0.a < 0.5 && $0.b < 0.5 }
        pValue = Self.mcNemarExact(gained.count, lost.count)
        interval = Self.bootstrap(problems.map { $0.b - $0.a }, resamples: resamples, seed: seed)
        permutationP = Self.signFlip(problems.map { $0.b - $0.a }, resamples: resamples, seed: seed)
    }

    /// The share of `resamples` random sign assignments (plus the observed one) whose mean
    /// difference is at least as far from zero as the observed mean: a two-sided p-value
    /// that never reaches 0 (at least 1 / (resamples + 1)).
    public static func signFlip(_ differences: [Double], resamples: Int, seed: UInt64) -> Double {
        let nonzero = differences.filter { $0 != 0 }
        guard !nonzero.isEmpty else { return 1 }
        let observed = abs(nonzero.reduce(0, +))
        var random = XorShift(seed: seed)
        var atLeast = 1                              // the observed assignment itself
        for _ in 0..<resamples {
            var sum = 0.0
            var bits = 0 as UInt64, left = 0
            for d in nonzero {
                if left == 0 { bits = random.next(); left = 64 }
                sum += bits & 1 == 0 ? d : -d
                bits >>= 1
                left -= 1
            }
            // A relative tolerance: sums of the same values in another order may differ in the last bits.
            if abs(sum) >= observed - 1e-9 * max(1, observed) { atLeast += 1 }
        }
        return Double(atLeast) / Double(resamples + 1)
    }

    /// xorshift64*: small, seeded, enough for resampling.
    struct XorShift {
        var state: UInt64
        init(seed: UInt64) { state = seed | 1 }
        mutating func next() -> UInt64 {
            state ^= state >> 12; state ^= state << 25; state ^= state >> 27
            return state &* 2_685_821_657_736_338_717
        }
    }

    /// Two-sided exact McNemar p-value for `b` and `c` discordant pairs: twice the binomial
    /// tail P(X <= min(b, c)) for X ~ Binomial(b + c, 1/2), capped at 1.
    public static func mcNemarExact(_ b: Int, _ c: Int) -> Double {
        let n = b + c
        guard n > 0 else { return 1 }
        let k = min(b, c)
        // Terms in logs: C(n, i) / 2^n without overflow for large n.
        var logChoose = 0.0                // log C(n, 0)
        var tail = 0.0
        let logHalfPower = Double(n) * log(0.5)
        for i in 0...k {
            if i > 0 { logChoose += log(Double(n - i + 1)) - log(Double(i)) }
            tail += exp(logChoose + logHalfPower)
        }
        return min(1, 2 * tail)
    }

    /// The 2.5th and 97.5th percentiles of the mean of `differences` over resamples.
    static func bootstrap(_ differences: [Double], resamples: Int, seed: UInt64) -> (low: Double, high: Double) {
        guard !differences.isEmpty else { return (0, 0) }
        var random = XorShift(seed: seed)
        let n = differences.count
        var means: [Double] = []
        means.reserveCapacity(resamples)
        for _ in 0..<resamples {
            var sum = 0.0
            for _ in 0..<n { sum += differences[Int(random.next() % UInt64(n))] }
            means.append(sum / Double(n))
        }
        means.sort()
        let low = means[Int(Double(resamples - 1) * 0.025)]
        let high = means[Int((Double(resamples - 1) * 0.975).rounded(.up))]
        return (low, high)
    }
}
