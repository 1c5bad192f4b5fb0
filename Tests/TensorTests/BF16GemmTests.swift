import Tensor
import XCTest

final class BF16GemmTests: XCTestCase {
    override func setUpWithError() throws {
        guard BF16Gemm.available else {
            print("this CPU has no AVX512-BF16: skipping the bfloat16 GEMM tests")
            throw XCTSkip("no AVX512-BF16")
        }
    }

    /// Rounded to the nearest bfloat16, ties to even.
    func bf16(_ x: Float) -> Float {
        let u = x.bitPattern
        return Float(bitPattern: (u &+ 0x7FFF &+ ((u >> 16) & 1)) & 0xFFFF_0000)
    }

    /// All four transpositions, remainders of the 6 x 32 tile, odd K, K and M beyond one packed
    /// block (640 and 96), columns beyond one block (512) split over two threads, leading
    /// dimensions wider than the matrices, rows split over two threads (700 x 40), alpha and
    /// beta: against Double sums of the rounded inputs.
    func testMatchesSumsOfRoundedInputs() {
        let pool = ComputePool(threads: 2)
        for (m, n, k) in [(1, 1, 1), (7, 33, 5), (13, 70, 301), (9, 40, 1301), (100, 1100, 300), (700, 40, 64)] {
            for transA in [false, true] {
                for transB in [false, true] {
                    let lda = (transA ? m : k) + 2, ldb = (transB ? k : n) + 3, ldc = n + 1
                    let a = random((transA ? k : m) * lda, seed: UInt64(m * 7 + k)), b = random((transB ? n : k) * ldb, seed: UInt64(n * 3 + k))
                    var c = [Float](repeating: 0.5, count: m * ldc)
                    BF16Gemm.product(transA: transA, transB: transB, m: m, n: n, k: k, alpha: 0.75, a, lda: lda, b, ldb: ldb,
                                     beta: 2, &c, ldc: ldc, pool: pool)
                    var worst = 0.0
                    for i in 0..<m {
                        for j in 0..<n {
                            var s = 0.0
                            for p in 0..<k {
                                let x = transA ? a[p * lda + i] : a[i * lda + p]
                                let y = transB ? b[j * ldb + p] : b[p * ldb + j]
                                s += Double(bf16(x)) * Double(bf16(y))
                            }
                            worst = max(worst, abs(Double(c[i * ldc + j]) - (0.75 * s + 1)))
                        }
                        XCTAssertEqual(c[i * ldc + n], 0.5, "column \(n) beyond the matrix was written")
                    }
                    XCTAssertLessThan(worst, 1e-5 * Double(k), "m \(m) n \(n) k \(k) transA \(transA) transB \(transB)")
                }
            }
        }
    }

    /// The same product on one, two and three threads is the same to the bit (training's
    /// shapes: a forward product, a weight gradient, an input gradient), so a replay on another
    /// core count reproduces a run exactly.
    func testResultsDoNotDependOnTheThreadCount() {
        let pools: [ComputePool?] = [nil, ComputePool(threads: 2), ComputePool(threads: 3)]
        for (transA, transB, m, n, k) in [(false, true, 500, 576, 192), (true, false, 192, 576, 500), (false, false, 500, 576, 192)] {
            let a = random(m * k, seed: 11), b = random(n * k, seed: 12)
            var results: [[Float]] = []
            for pool in pools {
                var c = [Float](repeating: 0.25, count: m * n)
                BF16Gemm.product(transA: transA, transB: transB, m: m, n: n, k: k, a, lda: transA ? m : k, b, ldb: transB ? k : n,
                                 beta: 1, &c, ldc: n, pool: pool)
                results.append(c)
            }
            XCTAssertEqual(results[0], results[1], "m \(m) n \(n) k \(k): one thread against two")
            XCTAssertEqual(results[0], results[2], "m \(m) n \(n) k \(k): one thread against three")
        }
    }

    /// Inputs are rounded to nearest, not truncated: 1 + 2^-8 + 2^-10 becomes 1 + 2^-7.
    func testRoundsToNearest() {
        let a: [Float] = [1 + 0x1p-8 + 0x1p-10], b: [Float] = [1]
        var c: [Float] = [0]
        BF16Gemm.product(transA: false, transB: false, m: 1, n: 1, k: 1, a, lda: 1, b, ldb: 1, &c, ldc: 1)
        XCTAssertEqual(c[0], 1 + 0x1p-7)
    }

    /// Weights packed once (inference): every row count of the 1...6-row tiles and their
    /// remainders, rows beyond one packed block of A (606), N not a multiple of the 32-row
    /// panels, odd K, K in several blocks (1300), strides wider than the matrices, panels split
    /// over two threads (packing and product), overwrite and accumulate: against Double sums of
    /// the rounded inputs.
    func testPackedWeightsMatchSumsOfRoundedInputs() {
        let pool = ComputePool(threads: 2)
        for (m, n, k) in [(1, 45, 37), (2, 64, 576), (3, 70, 1300), (4, 33, 16), (5, 96, 64), (6, 100, 301),
                          (13, 130, 96), (64, 96, 200), (700, 40, 64)] {
            let w = random(n * k, seed: UInt64(n + k)), ldx = k + 3, ldy = n + 2
            let x = random(m * ldx, seed: UInt64(m * 5 + k))
            let packed = BF16PackedMatrix(w, rows: n, columns: k, pool: pool)
            for accumulate in [false, true] {
                var y = [Float](repeating: 0.5, count: m * ldy)
                packed.product(x, m: m, ldx: ldx, &y, ldy: ldy, accumulate: accumulate, pool: pool)
                var worst = 0.0
                for i in 0..<m {
                    for j in 0..<n {
                        var s = accumulate ? 0.5 : 0.0
                        for p in 0..<k { s += Double(bf16(x[i * ldx + p])) * Double(bf16(w[j * k + p])) }
                        worst = max(worst, abs(Double(y[i * ldy + j]) - s))
                    }
                    XCTAssertEqual(y[i * ldy + n], 0.5, "column \(n) beyond the matrix was written")
                    XCTAssertEqual(y[i * ldy + n + 1], 0.5, "column \(n + 1) beyond the matrix was written")
                }
                XCTAssertLessThan(worst, 1e-5 * Double(k), "m \(m) n \(n) k \(k) accumulate \(accumulate)")
            }
        }
    }
}
