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
}
