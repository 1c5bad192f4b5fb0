import Tensor
import XCTest

final class SkinnyGemmTests: XCTestCase {
    /// Every tile remainder (odd M, N not a multiple of 8), both threads, overwrite and
    /// accumulate, row strides, and the OpenBLAS fallback (K % 16 != 0), against naive sums.
    func testMatchesNaiveProductForAllRemainders() {
        let pool = ComputePool(threads: 2)
        // M 1-3 take the row-after-row kernel ((1|2|3, 603|401, 96|48) on the pool, K with and
        // without a 16-wide tail), M 4+ the tile kernel: (5, ...) leaves it one row over,
        // (16, 600, 96) prefetches.
        for (m, n, k) in [(1, 8, 16), (1, 13, 64), (1, 603, 96), (2, 401, 48), (3, 401, 96), (2, 40, 32), (3, 77, 48),
                          (5, 40, 32), (5, 203, 48), (16, 600, 96), (5, 9, 20), (97, 24, 32)] {
            let x = random(m * k, seed: UInt64(m * 1000 + n)), w = random(n * k, seed: UInt64(k))
            for accumulate in [false, true] {
                let ldy = n + 3
                var y = [Float](repeating: 0.25, count: m * ldy)
                SkinnyGemm.run(x, w, &y, m: m, n: n, k: k, ldy: ldy, accumulate: accumulate, pool: pool)
                for i in 0..<m {
                    for j in 0..<n {
                        var s: Float = accumulate ? 0.25 : 0
                        for p in 0..<k { s += x[i * k + p] * w[j * k + p] }
                        XCTAssertEqual(y[i * ldy + j], s, accuracy: 1e-4, "m \(m) n \(n) k \(k) acc \(accumulate) at \(i),\(j)")
                    }
                    for j in n..<ldy { XCTAssertEqual(y[i * ldy + j], 0.25, "padding column \(j) was written") }
                }
            }
        }
    }

    func testPoolRunsEveryPartOnce() {
        let pool = ComputePool(threads: 3)
        for _ in 0..<1000 {
            var hits = [Int](repeating: 0, count: 3)
            hits.withUnsafeMutableBufferPointer { buf in
                let p = buf.baseAddress!
                pool.run { part, parts in
                    XCTAssertEqual(parts, 3)
                    p[part] += 1
                }
            }
            XCTAssertEqual(hits, [1, 1, 1])
        }
        XCTAssertEqual(ComputePool.range(0, of: 2, count: 20, align: 8), 0..<8)
        XCTAssertEqual(ComputePool.range(1, of: 2, count: 20, align: 8), 8..<20)
    }
}
