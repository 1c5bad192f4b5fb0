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
