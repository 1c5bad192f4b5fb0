import CodeRL
import XCTest

final class PassAtKTests: XCTestCase {
    /// C(n-c, k) / C(n, k) by brute force: the share of k-subsets without a correct sample.
    func bruteForce(n: Int, c: Int, k: Int) -> Double {
        var total = 0, missing = 0
        for mask in 0..<(1 << n) where mask.nonzeroBitCount == k {
            total += 1
            if mask & ((1 << c) - 1) == 0 { missing += 1 }   // samples 0..<c are the correct ones
        }
        return 1 - Double(missing) / Double(total)
    }

    func testMatchesHandComputedAndBruteForceValues() {
        XCTAssertEqual(PassAtK.estimate(samples: 10, correct: 0, k: 1), 0)
        XCTAssertEqual(PassAtK.estimate(samples: 10, correct: 3, k: 1), 0.3, accuracy: 1e-12)
        XCTAssertEqual(PassAtK.estimate(samples: 4, correct: 1, k: 2), 0.5, accuracy: 1e-12)   // 1 - C(3,2)/C(4,2) = 1 - 3/6
        XCTAssertEqual(PassAtK.estimate(samples: 5, correct: 4, k: 2), 1)
        for n in 1...10 {
            for c in 0...n {
                for k in 1...n {
                    XCTAssertEqual(PassAtK.estimate(samples: n, correct: c, k: k), bruteForce(n: n, c: c, k: k), accuracy: 1e-12, "n \(n) c \(c) k \(k)")
                }
            }
        }
        XCTAssertEqual(PassAtK.estimate(samples: 200, correct: 1, k: 100), 0.5, accuracy: 1e-12)
        XCTAssertEqual(PassAtK.mean([(10, 10), (10, 0)], k: 5), 0.5, accuracy: 1e-12)
    }

    /// n@k by enumeration: every k-subset of the N samples, and (when more than n of its
    /// samples pass the example tests) every n-subset of those as the submissions.
    /// Samples 0..<h pass both test sets, h..<e only the examples, the rest neither.
    func bruteForceNAtK(N: Int, e: Int, h: Int, n: Int, k: Int) -> Double {
        var sum = 0.0, subsets = 0
        for mask in 0..<(1 << N) where mask.nonzeroBitCount == min(k, N) {
            subsets += 1
            let kept = (0..<N).filter { mask & (1 << $0) != 0 && $0 < e }
            if kept.count <= n {
                sum += kept.contains { $0 < h } ? 1 : 0
                continue
            }
            var solved = 0, choices = 0
            for pick in 0..<(1 << kept.count) where pick.nonzeroBitCount == n {
                choices += 1
                if (0..<kept.count).contains(where: { pick & (1 << $0) != 0 && kept[$0] < h }) { solved += 1 }
            }
            sum += Double(solved) / Double(choices)
        }
        return sum / Double(subsets)
    }

    func testNAtKMatchesBruteForce() {
        // Hand values: 3 samples, 1 passes both, 1 only the examples, 1 nothing.
        XCTAssertEqual(NAtK.estimate(samples: 3, passExamples: 2, passBoth: 1, n: 1, k: 3), 0.5, accuracy: 1e-12)
        XCTAssertEqual(NAtK.estimate(samples: 3, passExamples: 2, passBoth: 1, n: 2, k: 3), 1, accuracy: 1e-12)
        XCTAssertEqual(NAtK.estimate(samples: 3, passExamples: 2, passBoth: 1, n: 1, k: 1), 1.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(NAtK.estimate(samples: 5, passExamples: 3, passBoth: 0, n: 2, k: 5), 0)
        var cases = 0
        for N in 1...8 {
            for e in 0...N {
                for h in 0...e {
                    for k in 1...N {
                        for n in 1...k {
                            let exact = NAtK.estimate(samples: N, passExamples: e, passBoth: h, n: n, k: k)
                            XCTAssertEqual(exact, bruteForceNAtK(N: N, e: e, h: h, n: n, k: k), accuracy: 1e-9, "N \(N) e \(e) h \(h) n \(n) k \(k)")
                            cases += 1
                        }
                    }
                }
            }
        }
        XCTAssertGreaterThan(cases, 1000)
        // n >= k: every sample passing the examples is submitted, so n@k is pass@k over them.
        XCTAssertEqual(NAtK.estimate(samples: 10, passExamples: 10, passBoth: 3, n: 5, k: 5),
                       PassAtK.estimate(samples: 10, correct: 3, k: 5), accuracy: 1e-12)
    }
}

final class PairedComparisonTests: XCTestCase {
    /// The binomial tail by direct sums of exact combinations (small n).
    func directMcNemar(_ b: Int, _ c: Int) -> Double {
        let n = b + c
        guard n > 0 else { return 1 }
        func choose(_ n: Int, _ k: Int) -> Double { (0..<k).reduce(1.0) { $0 * Double(n - $1) / Double($1 + 1) } }
        let tail = (0...min(b, c)).map { choose(n, $0) }.reduce(0, +) / pow(2, Double(n))
        return min(1, 2 * tail)
    }

    func testMcNemarExactPValues() {
        XCTAssertEqual(PairedComparison.mcNemarExact(0, 0), 1)
        XCTAssertEqual(PairedComparison.mcNemarExact(5, 5), 1)
        XCTAssertEqual(PairedComparison.mcNemarExact(0, 10), 2.0 / 1024, accuracy: 1e-12)
        XCTAssertEqual(PairedComparison.mcNemarExact(1, 9), 2.0 * 11 / 1024, accuracy: 1e-12)
        XCTAssertEqual(PairedComparison.mcNemarExact(9, 1), PairedComparison.mcNemarExact(1, 9))
        for (b, c) in [(3, 12), (7, 20), (0, 25), (14, 16), (2, 30)] {
            XCTAssertEqual(PairedComparison.mcNemarExact(b, c), directMcNemar(b, c), accuracy: 1e-10, "\(b), \(c)")
        }
        // Hundreds of discordant problems: finite, tiny, no overflow.
        let p = PairedComparison.mcNemarExact(150, 300)
        XCTAssertGreaterThan(p, 0)
        XCTAssertLessThan(p, 1e-10)
        XCTAssertLessThan(PairedComparison.mcNemarExact(20, 40), 0.05)
        XCTAssertGreaterThan(PairedComparison.mcNemarExact(20, 30), 0.05)
    }

    func testComparisonCountsAndBootstrapInterval() {
        // 100 problems: B solves 10 that A does not, loses 2; 30 solved by both.
        var problems: [PairedComparison.Problem] = []
        for i in 0..<100 {
            let (a, b): (Double, Double) = i < 10 ? (0, 1) : i < 12 ? (1, 0) : i < 42 ? (1, 1) : (0, 0)
            problems.append(.init(id: "p\(i)", a: a, b: b))
        }
        let c = PairedComparison(problems)
        XCTAssertEqual(c.gained.count, 10)
        XCTAssertEqual(c.lost, ["p10", "p11"])
        XCTAssertEqual(c.bothSolved, 30)
        XCTAssertEqual(c.neitherSolved, 58)
        XCTAssertEqual(c.meanA, 0.32, accuracy: 1e-12)
        XCTAssertEqual(c.difference, 0.08, accuracy: 1e-12)
        XCTAssertEqual(c.pValue, PairedComparison.mcNemarExact(10, 2), accuracy: 1e-15)
        // The interval holds the observed difference, excludes zero here, and is reproducible.
        XCTAssertLessThan(c.interval.low, 0.08)
        XCTAssertGreaterThan(c.interval.high, 0.08)
        XCTAssertGreaterThan(c.interval.low, 0)
        XCTAssertEqual(PairedComparison(problems).interval.low, c.interval.low)
        // Its width is about the normal approximation's: 2 x 1.96 x sd / sqrt(n).
        let d = problems.map { $0.b - $0.a }
        let mean = d.reduce(0, +) / 100
        let sd = (d.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 99).squareRoot()
        XCTAssertEqual(c.interval.high - c.interval.low, 2 * 1.96 * sd / 10, accuracy: 0.02)
        // No difference at all: a zero-width interval at zero, p = 1.
        let same = PairedComparison(problems.map { .init(id: $0.id, a: $0.a, b: $0.a) })
        XCTAssertEqual(same.interval.low, 0)
        XCTAssertEqual(same.interval.high, 0)
        XCTAssertEqual(same.pValue, 1)
    }

    func testSignFlipPermutationTest() {
        // Three differences, all positive: exactly 2 of the 8 sign patterns reach |sum| >= 1.
        XCTAssertEqual(PairedComparison.signFlip([0.3, 0.5, 0.2, 0], resamples: 20_000, seed: 7), 0.25, accuracy: 0.01)
        // With 0/1 scores it is McNemar's test: the sum of 12 signs is 10 - 2.
        let binary = (0..<12).map { $0 < 10 ? 1.0 : -1.0 } + Array(repeating: 0, count: 50)
        XCTAssertEqual(PairedComparison.signFlip(binary, resamples: 20_000, seed: 7), PairedComparison.mcNemarExact(10, 2), accuracy: 0.005)
        XCTAssertEqual(PairedComparison.signFlip([0, 0], resamples: 100, seed: 7), 1)
        XCTAssertEqual(PairedComparison.signFlip([0.2, -0.2], resamples: 1_000, seed: 7), 1, "a sum of zero is as far as any")
        // Sampled scores that never cross one half: McNemar sees nothing, the scores do.
        var problems: [PairedComparison.Problem] = []
        for i in 0..<300 {
            let a = i < 100 ? 0.1 : 0.0
            let b = i < 60 ? 0.3 : i < 70 ? 0.0 : a
            problems.append(.init(id: "p\(i)", a: a, b: b))
        }
        let c = PairedComparison(problems)
        XCTAssertEqual(c.pValue, 1)
        XCTAssertLessThan(c.permutationP, 0.001)
        XCTAssertGreaterThan(c.permutationP, 0, "never zero: the observed assignment counts")
        // No difference: p = 1.
        XCTAssertEqual(PairedComparison(problems.map { .init(id: $0.id, a: $0.a, b: $0.a) }).permutationP, 1)
    }
}
