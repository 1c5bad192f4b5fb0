import CIntrinsics

/// Y[M,N] (+)= X[M,K] · W[N,K]^T for few rows (decode: M is the batch), on both cores.
///
/// OpenBLAS repacks W on every call, which dominates when M is small: at M = 16 it spent two
/// thirds of decode time copying weights. This kernel reads W once, straight from its row-major
/// layout: tiles of 8 W rows x 2 X rows accumulate 16 SIMD16 dot products over K, reduced at the
/// end, prefetching the next tile from 8 rows of X on; for one to three rows of X, where only
/// reading W matters, W is read row after row instead (`rowsKernel`). The N range is split
/// across `ComputePool.shared`. Requires K % 16 == 0 (all model widths); other shapes and
/// large M go to OpenBLAS. `coderl bench kernels` measures it.
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
            product(x, w, y, m: m, n: 0..<n, k: k, ldy: ld, accumulate: accumulate)
            return
        }
        pool.run { part, parts in
            let r = ComputePool.range(part, of: parts, count: n, align: 8)
            if !r.isEmpty { product(x, w, y, m: m, n: r, k: k, ldy: ld, accumulate: accumulate) }
        }
    }

    /// Rows `range` of Y by the kernel for M rows.
    @inline(__always)
    static func product(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                        m: Int, n range: Range<Int>, k: Int, ldy: Int, accumulate: Bool) {
        if m <= rowByRowLimit {
            rowsKernel(x, w, y, m: m, n: range, k: k, ldy: ldy, accumulate: accumulate)
        } else {
            kernel(x, w, y, m: m, n: range, k: k, ldy: ldy, accumulate: accumulate)
        }
    }

    /// Up to this many input rows, W is read row after row (`rowsKernel`); from `prefetchFrom`
    /// rows on, the tile kernel prefetches the next tile. Measured with interleaved runs on the
    /// model's shapes: row after row took an M = 1 pass from 17-21 to 12-15.6 ms, M = 2 from
    /// 19 to 12.7-12.9, M = 3 from 20.6 to 17.1, and lost at M = 4 and 8; prefetching cost
    /// ~10% at M = 2-5, nothing at 8, and gained 20% at 16.
    static let rowByRowLimit = 3, prefetchFrom = 8

    /// Few input rows (decode of one to three sequences, bound by reading the weights): W's
    /// rows one after another, so each thread reads one sequential stream; the tile kernel
    /// reads eight streams 4*K bytes apart. Each W row meets the input rows (up to four at a
    /// time; a missing row repeats the last and its sum is not stored).
    static func rowsKernel(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                           m: Int, n range: Range<Int>, k: Int, ldy: Int, accumulate: Bool) {
        for n in range {
            let p = w + n * k
            var r = 0
            while r < m {
                let h = min(4, m - r)
                let x0 = x + r * k, x1 = x + (r + min(1, h - 1)) * k
                let x2 = x + (r + min(2, h - 1)) * k, x3 = x + (r + min(3, h - 1)) * k
                var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
                var b0 = SIMD16<Float>(), b1 = SIMD16<Float>(), b2 = SIMD16<Float>(), b3 = SIMD16<Float>()
                var i = 0
                while i + 32 <= k {
                    let u = load(p + i), v = load(p + i + 16)
                    a0.addProduct(load(x0 + i), u); a1.addProduct(load(x1 + i), u)
                    a2.addProduct(load(x2 + i), u); a3.addProduct(load(x3 + i), u)
                    b0.addProduct(load(x0 + i + 16), v); b1.addProduct(load(x1 + i + 16), v)
                    b2.addProduct(load(x2 + i + 16), v); b3.addProduct(load(x3 + i + 16), v)
                    i += 32
                }
                if i < k {  // K % 32 == 16
                    let u = load(p + i)
                    a0.addProduct(load(x0 + i), u); a1.addProduct(load(x1 + i), u)
                    a2.addProduct(load(x2 + i), u); a3.addProduct(load(x3 + i), u)
                }
                let sums = sum4(a0 + b0, a1 + b1, a2 + b2, a3 + b3)
                for j in 0..<h {
                    let o = y + (r + j) * ldy + n
                    o.pointee = accumulate ? o.pointee + sums[j] : sums[j]
                }
                r += 4
            }
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
            // The next tile, when it is this call's: prefetched a few lines per iteration, for
            // enough rows that the tile is reused (see `prefetchFrom`).
            let next = UnsafeRawPointer(w0 + 8 * k)
            var line = m >= prefetchFrom && n + 16 <= range.upperBound ? 0 : tileLines
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
