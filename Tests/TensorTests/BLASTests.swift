import Foundation
import Tensor
import XCTest

/// Checks the BLAS wrappers and kernels against naive loops, to 1e-5 relative.
/// n values in [-1, 1] from a fixed linear congruential stream.
func random(_ n: Int, seed: UInt64) -> [Float] {
    var s = seed
    return (0..<n).map { _ in
        s = s &* 6364136223846793005 &+ 1442695040888963407
        return Float(Int(s >> 40) % 2001 - 1000) / 1000
    }
}

final class BLASTests: XCTestCase {
    func testGemmNTMatchesNaiveIncludingTheSingleRowPath() {
        for (m, n, k) in [(1, 7, 5), (3, 4, 9), (16, 33, 20)] {
            let a = random(m * k, seed: 1), b = random(n * k, seed: 2)
            var c = [Float](repeating: 0.5, count: m * n)
            BLAS.gemmNT(a, b, &c, m: m, n: n, k: k)
            for i in 0..<m {
                for j in 0..<n {
                    var s: Float = 0
                    for p in 0..<k { s += a[i * k + p] * b[j * k + p] }
                    XCTAssertEqual(c[i * n + j], s, accuracy: 1e-5, "m=\(m) n=\(n) k=\(k) at \(i),\(j)")
                }
            }
        }
    }

    func testGemmWithStridesAndAccumulation() {
        // A is the left 3 columns of a 2x5 matrix; C accumulates with beta = 1.
        let a = random(10, seed: 3), b = random(3 * 4, seed: 4)  // B[K=3, N=4]
        var c = [Float](repeating: 1, count: 8)
        BLAS.gemmNN(a, b, &c, m: 2, n: 4, k: 3, lda: 5, alpha: 2, beta: 1)
        for i in 0..<2 {
            for j in 0..<4 {
                var s: Float = 0
                for p in 0..<3 { s += a[i * 5 + p] * b[p * 4 + j] }
                XCTAssertEqual(c[i * 4 + j], 1 + 2 * s, accuracy: 1e-5)
            }
        }
    }

    func testKernels() {
        let x = random(40, seed: 5), w = random(20, seed: 6)
        var out = [Float](repeating: 0, count: 40)
        Kernels.rmsNorm(&out, x, w, rows: 2, channels: 20, eps: 1e-5)
        for r in 0..<2 {
            let row = x[r * 20..<(r + 1) * 20]
            let rms = (row.map { $0 * $0 }.reduce(0, +) / 20 + 1e-5).squareRoot()
            for i in 0..<20 { XCTAssertEqual(out[r * 20 + i], x[r * 20 + i] / rms * w[i], accuracy: 1e-5) }
        }
        var s: [Float] = [1, 2, 3, -1000]
        let lse = Kernels.softmax(&s, 4)
        XCTAssertEqual(lse, log(exp(1) + exp(2) + exp(3)), accuracy: 1e-5)
        XCTAssertEqual(s[2], exp(3) / (exp(1) + exp(2) + exp(3)), accuracy: 1e-6)
        XCTAssertEqual(s[3], 0)
        XCTAssertEqual(Kernels.logSumExp([1, 2, 3], 3), lse, accuracy: 1e-6)
        let gu: [Float] = [1, -2, 3, 4]  // gate [1, -2], up [3, 4]
        var h = [Float](repeating: 0, count: 2)
        Kernels.swiglu(&h, gu, rows: 1, hidden: 2)
        XCTAssertEqual(h[0], 1 / (1 + exp(-1)) * 3, accuracy: 1e-6)
        XCTAssertEqual(h[1], -2 / (1 + exp(2)) * 4, accuracy: 1e-6)
        XCTAssertEqual(Kernels.dot(x, x, 37), x.prefix(37).map { $0 * $0 }.reduce(0, +), accuracy: 1e-4)
    }

    func testRoPERotatesHalvesByPositionAngle() {
        let hs = 8, theta: Float = 10_000
        let rope = RoPE(headSize: hs, theta: theta, maxPositions: 16)
        let x = random(2 * hs, seed: 7)
        var y = x
        rope.apply(&y, heads: 2, position: 5)
        for h in 0..<2 {
            for i in 0..<hs / 2 {
                let angle = 5 * pow(theta, -Float(2 * i) / Float(hs))
                let a = x[h * hs + i], b = x[h * hs + i + hs / 2]
                XCTAssertEqual(y[h * hs + i], a * cos(angle) - b * sin(angle), accuracy: 1e-5)
                XCTAssertEqual(y[h * hs + i + hs / 2], b * cos(angle) + a * sin(angle), accuracy: 1e-5)
            }
        }
        var z = x
        rope.apply(&z, heads: 2, position: 0)
        XCTAssertEqual(z, x, "position 0 is the identity")
    }
}

final class VectorMathTests: XCTestCase {
    func testExpWithinTwoUlpAcrossTheRange() {
        var worst: Float = 0
        var x: Float = -87
        while x < 88.5 {
            var v = SIMD16<Float>(repeating: 0)
            for i in 0..<16 { v[i] = x + Float(i) * 0.0007 }
            let e = VectorMath.exp(v)
            for i in 0..<16 {
                let ref = Float(Foundation.exp(Double(v[i])))
                worst = max(worst, abs(e[i] - ref) / ref)
            }
            x += 0.0137
        }
        XCTAssertLessThan(worst, 3e-7)
        let special = VectorMath.exp(SIMD16<Float>(-200, -88, 0, 89, .infinity, -.infinity, .nan, 1, 2, 3, 4, 5, 6, 7, 8, 9))
        XCTAssertEqual(special[0], 0)
        XCTAssertEqual(special[2], 1)
        XCTAssertEqual(special[3], .infinity)
        XCTAssertEqual(special[4], .infinity)
        XCTAssertEqual(special[5], 0)
        XCTAssertTrue(special[6].isNaN)
    }
}
