/// Vectorised exp for softmax, sampling and SwiGLU, which call it V or F times per row.
///
/// Cephes-style: x = n ln2 + r with |r| <= ln2/2, exp(r) by a degree-6 polynomial, 2^n built in
/// the exponent bits. Relative error below 2e-7 (about 2 ulp) over the whole float range; inputs
/// below -87.3 give 0, above 88.7 give +inf, NaN stays NaN.
public enum VectorMath {
    /// Sum of the 16 lanes by halving (`SIMD.sum()` compiled to a lane-by-lane loop here).
    @inlinable @inline(__always)
    public static func sum(_ v: SIMD16<Float>) -> Float {
        let a = v.lowHalf + v.highHalf
        let b = a.lowHalf + a.highHalf
        let c = b.lowHalf + b.highHalf
        return c[0] + c[1]
    }

    /// Lane-wise larger of a and b (NaN in b is ignored). `pointwiseMax`, and generic forms of
    /// this, compile to a loop over lanes; for a concrete vector type the compare and masked move
    /// are one instruction each.
    @inlinable @inline(__always)
    public static func larger(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> { a.replacing(with: b, where: b .> a) }
    @inline(__always)
    static func larger(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { a.replacing(with: b, where: b .> a) }
    @inline(__always)
    static func larger(_ a: SIMD4<Float>, _ b: SIMD4<Float>) -> SIMD4<Float> { a.replacing(with: b, where: b .> a) }
    @inline(__always)
    static func larger(_ a: SIMD2<Float>, _ b: SIMD2<Float>) -> SIMD2<Float> { a.replacing(with: b, where: b .> a) }

    /// Largest of the 16 lanes by halving (`SIMD.max()` compiled to a lane-by-lane loop here).
    @inline(__always)
    public static func max(_ v: SIMD16<Float>) -> Float {
        let a = larger(v.lowHalf, v.highHalf)
        let b = larger(a.lowHalf, a.highHalf)
        let c = larger(b.lowHalf, b.highHalf)
        return Swift.max(c[0], c[1])
    }

    /// The first `count` (< 16) values at `p` in a vector whose other lanes are `fill`.
    @inlinable @inline(__always)
    public static func loadPartial(_ p: UnsafePointer<Float>, _ count: Int, fill: Float) -> SIMD16<Float> {
        var v = SIMD16<Float>(repeating: fill)
        withUnsafeMutableBytes(of: &v) { $0.baseAddress!.copyMemory(from: p, byteCount: count * 4) }
        return v
    }

    /// Stores the first `count` (< 16) lanes of `v` at `p`.
    @inlinable @inline(__always)
    public static func storePartial(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>, _ count: Int) {
        withUnsafeBytes(of: v) { UnsafeMutableRawPointer(p).copyMemory(from: $0.baseAddress!, byteCount: count * 4) }
    }
    @inlinable @inline(__always)
    public static func exp(_ x: SIMD16<Float>) -> SIMD16<Float> {
        let hi = SIMD16<Float>(repeating: 88.72283), lo = SIMD16<Float>(repeating: -87.33654)
        // (Generic SIMD helpers such as `clamped` and `SIMD16<Int32>(_:rounding:)` compile to
        // per-lane calls; these forms become single vector instructions.)
        let xc = x.replacing(with: lo, where: x .< lo).replacing(with: hi, where: x .> hi)
        // Round to nearest with the 1.5 * 2^23 trick: the integer lands in the mantissa bits.
        let magic = SIMD16<Float>(repeating: 12_582_912)
        let t = xc * 1.442695041 + magic
        let n = t - magic
        // r = x - n ln2, with ln2 split in two for precision.
        var r = xc - n * 0.693359375
        r = r + n * 2.12194440e-4
        var p = SIMD16<Float>(repeating: 1.9875691500e-4)
        p = p * r + 1.3981999507e-3
        p = p * r + 8.3334519073e-3
        p = p * r + 4.1665795894e-2
        p = p * r + 1.6666665459e-1
        p = p * r + 5.0000001201e-1
        p = p * (r * r) + r + 1
        // 2^n as two factors, so n = 128 (x near 88.7) and n = -126 stay representable.
        let ni = unsafeBitCast(t, to: SIMD16<Int32>.self) &- 0x4B40_0000
        let n1 = ni &>> 1, n2 = ni &- n1
        let f1 = unsafeBitCast((n1 &+ 127) &<< 23, to: SIMD16<Float>.self)
        let f2 = unsafeBitCast((n2 &+ 127) &<< 23, to: SIMD16<Float>.self)
        var y = p * f1 * f2
        y.replace(with: 0, where: x .< lo)
        y.replace(with: .infinity, where: x .> hi)
        y.replace(with: x, where: x .!= x)
        return y
    }

    /// out[i] = exp((x[i] - shift) * scale) for n values; returns their sum.
    @inline(__always)
    public static func expShifted(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int,
                                  shift: Float, scale: Float = 1) -> Float {
        var acc = SIMD16<Float>(repeating: 0)
        let s = SIMD16<Float>(repeating: shift), k = SIMD16<Float>(repeating: scale)
        var i = 0
        while i + 16 <= n {
            let e = exp((UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self) - s) * k)
            UnsafeMutableRawPointer(out + i).storeBytes(of: e, as: SIMD16<Float>.self)
            acc += e
            i += 16
        }
        if i < n {
            // The last n % 16 values in one vector; unused lanes hold -inf (exp gives 0).
            let rest = n - i
            let e = exp((loadPartial(x + i, rest, fill: -.infinity) - s) * k)
            storePartial(e, out + i, rest)
            acc += e
        }
        return sum(acc)
    }

    /// Largest of n values (-inf when n == 0).
    @inline(__always)
    public static func max(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var m = SIMD16<Float>(repeating: -.infinity)
        var i = 0
        while i + 16 <= n {
            m = larger(m, UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self))
            i += 16
        }
        var r = max(m)
        while i < n { r = Swift.max(r, x[i]); i += 1 }
        return r
    }
}
