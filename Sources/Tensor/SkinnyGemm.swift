import CIntrinsics

/// Y[M,N] (+)= X[M,K] · W[N,K]^T for few rows (decode: M is the batch), on both cores.
///
/// OpenBLAS repacks W on every call, which dominates when M is small: at M = 16 it spent two
/// thirds of decode time copying weights. This kernel reads W once, straight from its row-major
/// layout: tiles of 8 W rows x 2 X rows accumulate 16 SIMD16 dot products over K, reduced at the
/// end; the N range is split across `ComputePool.shared`. Requires K % 16 == 0 (all model
/// widths); other shapes and large M go to OpenBLAS.
public enum SkinnyGemm {
    public static let maxRows = 96

    public static func supports(m: Int, k: Int) -> Bool { m <= maxRows && k % 16 == 0 && k > 0 }

    /// `ldy` is Y's row stride; `accumulate` adds into Y instead of overwriting it.
    public static func run(
        _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
        m: Int, n: Int, k: Int, ldy: Int? = nil, accumulate: Bool = false,
        pool: ComputePool = .shared
    ) {
        let ld = ldy ?? n
        guard supports(m: m, k: k) else {
            BLAS.gemmNT(x, w, y, m: m, n: n, k: k, ldc: ld, beta: accumulate ? 1 : 0)
            return
        }
        // Small products are not worth waking the other thread for.
        if m * n * k < 1 << 15 {
            kernel(x, w, y, m: m, n: 0..<n, k: k, ldy: ld, accumulate: accumulate)
            return
        }
        pool.run { part, parts in
            let r = ComputePool.range(part, of: parts, count: n, align: 8)
            guard !r.isEmpty else { return }
            if m == 1 {
                rowKernel(x, w, y, n: r, k: k, accumulate: accumulate)
            } else {
                kernel(x, w, y, m: m, n: r, k: k, ldy: ld, accumulate: accumulate)
            }
        }
    }

    /// One input row (batch-1 decode): W's rows one after another, so each thread reads one
    /// sequential stream. The 8-row tile reads eight streams 4*K bytes apart, which measured
    /// 30-40% slower here for one row (`coderl bench kernels`, M = 1: 19-20 ms per pass
    /// against 13.5-15), where the weights are read once and memory is all that matters.
    static func rowKernel(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                          n range: Range<Int>, k: Int, accumulate: Bool) {
        @inline(__always) func row(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
            var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
            var i = 0
            while i + 64 <= k {
                a0.addProduct(load(x + i), load(p + i)); a1.addProduct(load(x + i + 16), load(p + i + 16))
                a2.addProduct(load(x + i + 32), load(p + i + 32)); a3.addProduct(load(x + i + 48), load(p + i + 48))
                i += 64
            }
            while i < k { a0.addProduct(load(x + i), load(p + i)); i += 16 }
            return (a0 + a1) + (a2 + a3)
        }
        var n = range.lowerBound
        while n + 4 <= range.upperBound {
            let r0 = row(w + n * k), r1 = row(w + (n + 1) * k), r2 = row(w + (n + 2) * k), r3 = row(w + (n + 3) * k)
            put(sum4(r0, r1, r2, r3), y + n, accumulate)
            n += 4
        }
        while n < range.upperBound {
            let d = row(w + n * k).sum()
            y[n] = accumulate ? y[n] + d : d
            n += 1
        }
    }

    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
    }

    /// Sums of four accumulators: [sum a, sum b, sum c, sum d], with vector shuffles.
    @inlinable @inline(__always) public static func sum4(_ a: SIMD16<Float>, _ b: SIMD16<Float>, _ c: SIMD16<Float>, _ d: SIMD16<Float>) -> SIMD4<Float> {
        let ab = SIMD16(lowHalf: a.lowHalf + a.highHalf, highHalf: b.lowHalf + b.highHalf)
        let cd = SIMD16(lowHalf: c.lowHalf + c.highHalf, highHalf: d.lowHalf + d.highHalf)
        let lo = SIMD16(lowHalf: SIMD8(lowHalf: ab.lowHalf.lowHalf, highHalf: ab.highHalf.lowHalf),
                        highHalf: SIMD8(lowHalf: cd.lowHalf.lowHalf, highHalf: cd.highHalf.lowHalf))
        let hi = SIMD16(lowHalf: SIMD8(lowHalf: ab.lowHalf.highHalf, highHalf: ab.highHalf.highHalf),
                        highHalf: SIMD8(lowHalf: cd.lowHalf.highHalf, highHalf: cd.highHalf.highHalf))
        let e = lo + hi  // [a4 b4 c4 d4]
        let g = e.evenHalf + e.oddHalf
        return g.evenHalf + g.oddHalf
    }

    @inline(__always) static func put(_ v: SIMD4<Float>, _ p: UnsafeMutablePointer<Float>, _ accumulate: Bool) {
        let raw = UnsafeMutableRawPointer(p)
        raw.storeBytes(of: accumulate ? v + raw.loadUnaligned(as: SIMD4<Float>.self) : v, as: SIMD4<Float>.self)
    }

    static func kernel(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                       m: Int, n range: Range<Int>, k: Int, ldy: Int, accumulate: Bool) {
        var n = range.lowerBound
        let tileLines = 8 * k / 16  // cache lines of one 8-row tile of W
        let iterations = (m + 1) / 2 * (k / 16)
        let linesPerIteration = (tileLines + iterations - 1) / iterations
        while n + 8 <= range.upperBound {
            let w0 = w + n * k
            // The next tile, when it is this call's: prefetched a few lines per iteration. Not
            // for one row, a plain stream the hardware prefetcher follows (prefetching it there
            // measured 0-15% slower).
            let next = UnsafeRawPointer(w0 + 8 * k)
            var line = m > 1 && n + 16 <= range.upperBound ? 0 : tileLines
            @inline(__always) func prefetchSome() {
                var j = 0
                while j < linesPerIteration && line < tileLines {
                    coderl_prefetch(next + line * 64)
                    line += 1; j += 1
                }
            }
            var r = 0
            while r < m {
                let two = r + 1 < m
                let x0 = x + r * k, x1 = two ? x0 + k : x0
                var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
                var a4 = SIMD16<Float>(), a5 = SIMD16<Float>(), a6 = SIMD16<Float>(), a7 = SIMD16<Float>()
                var b0 = SIMD16<Float>(), b1 = SIMD16<Float>(), b2 = SIMD16<Float>(), b3 = SIMD16<Float>()
                var b4 = SIMD16<Float>(), b5 = SIMD16<Float>(), b6 = SIMD16<Float>(), b7 = SIMD16<Float>()
                if two {
                    var i = 0
                    while i < k {
                        prefetchSome()
                        let u = load(x0 + i), v = load(x1 + i)
                        var q = load(w0 + i); a0.addProduct(u, q); b0.addProduct(v, q)
                        q = load(w0 + k + i); a1.addProduct(u, q); b1.addProduct(v, q)
                        q = load(w0 + 2 * k + i); a2.addProduct(u, q); b2.addProduct(v, q)
                        q = load(w0 + 3 * k + i); a3.addProduct(u, q); b3.addProduct(v, q)
                        q = load(w0 + 4 * k + i); a4.addProduct(u, q); b4.addProduct(v, q)
                        q = load(w0 + 5 * k + i); a5.addProduct(u, q); b5.addProduct(v, q)
                        q = load(w0 + 6 * k + i); a6.addProduct(u, q); b6.addProduct(v, q)
                        q = load(w0 + 7 * k + i); a7.addProduct(u, q); b7.addProduct(v, q)
                        i += 16
                    }
                } else {
                    var i = 0
                    while i < k {
                        prefetchSome()
                        let u = load(x0 + i)
                        a0.addProduct(u, load(w0 + i)); a1.addProduct(u, load(w0 + k + i))
                        a2.addProduct(u, load(w0 + 2 * k + i)); a3.addProduct(u, load(w0 + 3 * k + i))
                        a4.addProduct(u, load(w0 + 4 * k + i)); a5.addProduct(u, load(w0 + 5 * k + i))
                        a6.addProduct(u, load(w0 + 6 * k + i)); a7.addProduct(u, load(w0 + 7 * k + i))
                        i += 16
                    }
                }
                let o = y + r * ldy + n
                put(sum4(a0, a1, a2, a3), o, accumulate)
                put(sum4(a4, a5, a6, a7), o + 4, accumulate)
                if two {
                    put(sum4(b0, b1, b2, b3), o + ldy, accumulate)
                    put(sum4(b4, b5, b6, b7), o + ldy + 4, accumulate)
                }
                r += 2
            }
            n += 8
        }
        // Fewer than 8 rows of W left: plain dot products.
        while n < range.upperBound {
            for r in 0..<m {
                let d = Kernels.dot(x + r * k, w + n * k, k)
                y[r * ldy + n] = accumulate ? y[r * ldy + n] + d : d
            }
            n += 1
        }
    }
}
