import Foundation

/// Elementwise and row kernels used by the model. Shapes use T rows of C channels.
/// Reductions accumulate in SIMD16 lanes so the compiler vectorises them.
public enum Kernels {
    /// Dot product of two length-n vectors.
    @inlinable @inline(__always)
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = SIMD16<Float>(repeating: 0)
        var i = 0
        while i + 16 <= n {
            let x = UnsafeRawPointer(a + i).loadUnaligned(as: SIMD16<Float>.self)
            let y = UnsafeRawPointer(b + i).loadUnaligned(as: SIMD16<Float>.self)
            acc.addProduct(x, y)
            i += 16
        }
        var sum = VectorMath.sum(acc)
        while i < n { sum += a[i] * b[i]; i += 1 }
        return sum
    }

    /// y[n] += alpha * x[n]
    @inlinable @inline(__always)
    public static func axpy(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        let a = SIMD16<Float>(repeating: alpha)
        var i = 0
        while i + 16 <= n {
            var v = UnsafeRawPointer(y + i).loadUnaligned(as: SIMD16<Float>.self)
            v.addProduct(a, UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self))
            UnsafeMutableRawPointer(y + i).storeBytes(of: v, as: SIMD16<Float>.self)
            i += 16
        }
        while i < n { y[i] += alpha * x[i]; i += 1 }
    }

    /// out[T,C] = x[T,C] / rms(x row) * weight[C]; `out` may alias `x`.
    public static func rmsNorm(
        _ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>,
        rows: Int, channels c: Int, eps: Float
    ) {
        for t in 0..<rows {
            let xr = x + t * c, or = out + t * c
            let ms = dot(xr, xr, c) / Float(c)
            let scale = 1 / (ms + eps).squareRoot()
            for i in 0..<c { or[i] = xr[i] * scale * weight[i] }
        }
    }

    /// SwiGLU in place on rows laid out [gate(F) | up(F)]: out[t,f] = silu(gate) * up.
    /// `out` is [T,F] and may alias the gate half of `gateUp` only when T == 1.
    public static func swiglu(
        _ out: UnsafeMutablePointer<Float>, _ gateUp: UnsafePointer<Float>, rows: Int, hidden f: Int
    ) {
        for t in 0..<rows {
            let g = gateUp + t * 2 * f, u = g + f, o = out + t * f
            var i = 0
            while i + 16 <= f {
                let x = UnsafeRawPointer(g + i).loadUnaligned(as: SIMD16<Float>.self)
                let up = UnsafeRawPointer(u + i).loadUnaligned(as: SIMD16<Float>.self)
                let y = x / (1 + VectorMath.exp(-x)) * up
                UnsafeMutableRawPointer(o + i).storeBytes(of: y, as: SIMD16<Float>.self)
                i += 16
            }
            while i < f {
                let x = g[i]
                o[i] = x / (1 + expf(-x)) * u[i]
                i += 1
            }
        }
    }

    /// Numerically stable softmax of `x[n]` in place; returns log(sum(exp(x))).
    @discardableResult
    public static func softmax(_ x: UnsafeMutablePointer<Float>, _ n: Int) -> Float {
        let m = VectorMath.max(x, n)
        let s = VectorMath.expShifted(x, x, n, shift: m)
        let inv = 1 / s
        scale(x, n, by: inv)
        return m + logf(s)
    }

    /// x[n] *= factor.
    @inlinable @inline(__always)
    public static func scale(_ x: UnsafeMutablePointer<Float>, _ n: Int, by factor: Float) {
        let f = SIMD16<Float>(repeating: factor)
        var i = 0
        while i + 16 <= n {
            let v = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self) * f
            UnsafeMutableRawPointer(x + i).storeBytes(of: v, as: SIMD16<Float>.self)
            i += 16
        }
        while i < n { x[i] *= factor; i += 1 }
    }

    /// log(sum(exp(x[n]))) without modifying x.
    public static func logSumExp(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        let m = VectorMath.max(x, n)
        if m == -.infinity { return m }
        var s = SIMD16<Float>(repeating: 0)
        let ms = SIMD16<Float>(repeating: m)
        var i = 0
        while i + 16 <= n {
            s += VectorMath.exp(UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self) - ms)
            i += 16
        }
        var total = VectorMath.sum(s)
        while i < n { total += expf(x[i] - m); i += 1 }
        return m + logf(total)
    }
}

/// Rotary position embedding in the "rotate half" convention (Hugging Face Llama):
/// for i < HS/2, (x[i], x[i+HS/2]) is rotated by angle pos * theta^(-2i/HS).
/// Tables hold cos/sin for every position up to `maxPositions`.
public final class RoPE: @unchecked Sendable {  // immutable after init
    public let headSize: Int
    public let maxPositions: Int
    let cosTable: FloatBuffer  // [P, HS/2]
    let sinTable: FloatBuffer

    public init(headSize: Int, theta: Float, maxPositions: Int) {
        require(headSize % 2 == 0, "RoPE head size must be even, got \(headSize)")
        self.headSize = headSize
        self.maxPositions = maxPositions
        let half = headSize / 2
        cosTable = FloatBuffer(count: maxPositions * half)
        sinTable = FloatBuffer(count: maxPositions * half)
        for i in 0..<half {
            // Computed in double then rounded, as PyTorch's inv_freq is fp32 of an fp32 pow.
            let invFreq = Float(1.0 / pow(Double(theta), Double(2 * i) / Double(headSize)))
            for p in 0..<maxPositions {
                let angle = Float(p) * invFreq
                cosTable[p * half + i] = cosf(angle)
                sinTable[p * half + i] = sinf(angle)
            }
        }
    }

    /// Rotates `heads` consecutive heads of size HS at `x`, all at position `pos`; `inverse`
    /// rotates by the opposite angle (the gradient of the rotation).
    @inline(__always)
    public func apply(_ x: UnsafeMutablePointer<Float>, heads: Int, position pos: Int, inverse: Bool = false) {
        require(pos < maxPositions, "position \(pos) beyond RoPE table of \(maxPositions)")
        let half = headSize / 2
        let c = cosTable.pointer + pos * half, s = sinTable.pointer + pos * half
        let sign: Float = inverse ? -1 : 1
        for h in 0..<heads {
            let v = x + h * headSize
            for i in 0..<half {
                let a = v[i], b = v[i + half], si = sign * s[i]
                v[i] = a * c[i] - b * si
                v[i + half] = b * c[i] + a * si
            }
        }
    }
}
