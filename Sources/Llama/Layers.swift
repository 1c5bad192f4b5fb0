import Foundation
import Tensor

/// The layers of the decoder as forward/backward pairs (llm.c style). Every backward
/// *accumulates* into its weight gradients (`+=`); input gradients are written (`=`) unless the
/// name says `accumulate`. Shapes use N rows (B sequences of T positions), C channels,
/// NH/NKV heads of HS values, F feed-forward width, V vocabulary.
public enum Layers {
    /// Splits rows 0..<count over `ComputePool.shared` (part 0 on the caller); small counts run
    /// inline. `body(rows, part)`.
    @inline(__always)
    static func parallelRows(_ count: Int, minimum: Int = 32, _ body: (Range<Int>, Int) -> Void) {
        if count < minimum || ComputePool.shared.parts == 1 { body(0..<count, 0); return }
        ComputePool.shared.run { part, parts in
            let r = ComputePool.range(part, of: parts, count: count)
            if !r.isEmpty { body(r, part) }
        }
    }

    // MARK: embedding

    /// out[N,C] = table[tokens[n]].
    public static func embeddingForward(_ out: UnsafeMutablePointer<Float>, tokens: [Int],
                                        table: UnsafePointer<Float>, channels C: Int) {
        for (n, id) in tokens.enumerated() { (out + n * C).update(from: table + id * C, count: C) }
    }

    /// dtable[tokens[n]] += dout[n].
    public static func embeddingBackward(_ dtable: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                         tokens: [Int], channels C: Int) {
        for (n, id) in tokens.enumerated() { Kernels.axpy(1, dout + n * C, dtable + id * C, C) }
    }

    // MARK: linear (y = x W^T, W stored as [out, in])

    /// fp32 products run as OpenBLAS calls on one thread over blocks of a fixed size (rows of
    /// the input, or output features of a weight gradient), the blocks shared among our own
    /// threads. OpenBLAS's multi-threaded driver splits the inner dimension differently from its
    /// single-threaded one, so the same product on one thread and on two would differ in the
    /// last bits; with fixed blocks every number is summed the same way whatever the thread
    /// count, and a replay on another machine's core count reproduces a run bit for bit (the
    /// bf16 kernels split only output panels and are exact already).
    static let blockRows = 512, blockFeatures = 256

    /// `body(range)` for consecutive blocks of `size` in 0..<count, spread over the pool.
    static func inBlocks(_ count: Int, of size: Int, _ body: (Range<Int>) -> Void) {
        let blocks = (count + size - 1) / size
        BLAS.singleThreaded {
            parallelRows(blocks, minimum: 2) { range, _ in
                for b in range { body(b * size..<min(count, (b + 1) * size)) }
            }
        }
    }

    /// y[N,out] = x[N,in] · W[out,in]^T (+ y when `accumulate`).
    public static func linearForward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                                     rows N: Int, in k: Int, out n: Int, accumulate: Bool = false, precision: MatrixPrecision = .fp32) {
        switch precision {
        case .fp32:
            inBlocks(N, of: blockRows) { r in
                BLAS.gemmNT(x + r.lowerBound * k, w, y + r.lowerBound * n, m: r.count, n: n, k: k, lda: k, ldc: n, beta: accumulate ? 1 : 0)
            }
        case .bf16: BF16Gemm.product(transA: false, transB: true, m: N, n: n, k: k, x, lda: k, w, ldb: k, beta: accumulate ? 1 : 0, y, ldc: n)
        }
    }

    /// dx[N,in] (=|+=) dy[N,out] · W[out,in]; dW[out,in] += dy^T · x. `dx` nil skips the input
    /// gradient (the lowest trained layer), `dw` nil skips the weight gradient (frozen weights).
    public static func linearBackward(dx: UnsafeMutablePointer<Float>?, dw: UnsafeMutablePointer<Float>?,
                                      dy: UnsafePointer<Float>, x: UnsafePointer<Float>, w: UnsafePointer<Float>,
                                      rows N: Int, in k: Int, out n: Int, accumulateInput: Bool = false,
                                      precision: MatrixPrecision = .fp32) {
        switch precision {
        case .fp32:
            if let dx {
                inBlocks(N, of: blockRows) { r in
                    BLAS.gemmNN(dy + r.lowerBound * n, w, dx + r.lowerBound * k, m: r.count, n: k, k: n, beta: accumulateInput ? 1 : 0)
                }
            }
            if let dw {
                inBlocks(n, of: blockFeatures) { r in
                    BLAS.gemmTN(dy + r.lowerBound, x, dw + r.lowerBound * k, m: r.count, n: k, k: N, lda: n, ldb: k, ldc: k, beta: 1)
                }
            }
        case .bf16:
            if let dx { BF16Gemm.product(transA: false, transB: false, m: N, n: k, k: n, dy, lda: n, w, ldb: k, beta: accumulateInput ? 1 : 0, dx, ldc: k) }
            if let dw { BF16Gemm.product(transA: true, transB: false, m: n, n: k, k: N, dy, lda: n, x, ldb: k, beta: 1, dw, ldc: k) }
        }
    }

    // MARK: RMSNorm

    /// out[N,C] = x / rms(x) * w; rstd[N] = 1 / sqrt(mean(x^2) + eps). `out` may alias `x`.
    public static func rmsNormForward(_ out: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
                                      _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, rows N: Int, channels C: Int, eps: Float) {
        parallelRows(N) { rows, _ in
            for n in rows {
                let xr = x + n * C, or = out + n * C
                let r = 1 / (Kernels.dot(xr, xr, C) / Float(C) + eps).squareRoot()
                rstd[n] = r
                for i in 0..<C { or[i] = xr[i] * r * w[i] }
            }
        }
    }

    /// With x̂ = x * rstd: dw += Σ_n dout ⊙ x̂, and
    /// dx = rstd * (w ⊙ dout - x̂ * mean(w ⊙ dout ⊙ x̂)), written or added (`accumulate`).
    public static func rmsNormBackward(dx: UnsafeMutablePointer<Float>?, dw: UnsafeMutablePointer<Float>?,
                                       dout: UnsafePointer<Float>, x: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
                                       w: UnsafePointer<Float>, rows N: Int, channels C: Int, accumulate: Bool) {
        // The weight gradient is summed per block of `rowsPerPartial` rows, and the blocks are
        // added in order at the end: the same sums in the same order whatever the number of
        // threads, so a replay on another core count reproduces a run bit for bit.
        let rowsPerPartial = 32
        let blocks = (N + rowsPerPartial - 1) / rowsPerPartial
        let partials = UnsafeMutablePointer<Float>.allocate(capacity: dw == nil ? 1 : C * blocks)
        if dw != nil { partials.initialize(repeating: 0, count: C * blocks) }
        defer { partials.deallocate() }
        parallelRows(blocks, minimum: 2) { range, _ in
            for block in range {
                let pw = partials + block * C
                for n in block * rowsPerPartial..<min(N, (block + 1) * rowsPerPartial) {
                    let xr = x + n * C, dr = dout + n * C, r = rstd[n]
                    if dw != nil { for i in 0..<C { pw[i] += dr[i] * xr[i] * r } }
                    guard let dx else { continue }
                    var s: Float = 0
                    for i in 0..<C { s += w[i] * dr[i] * xr[i] }
                    let k = s * r * r / Float(C)
                    let o = dx + n * C
                    if accumulate {
                        for i in 0..<C { o[i] += r * (w[i] * dr[i] - xr[i] * k) }
                    } else {
                        for i in 0..<C { o[i] = r * (w[i] * dr[i] - xr[i] * k) }
                    }
                }
            }
        }
        if let dw {
            for block in 0..<blocks { Kernels.axpy(1, partials + block * C, dw, C) }
        }
    }

    // MARK: SwiGLU

    /// Rows laid out [gate(F) | up(F)]: h[N,F] = silu(gate) * up (`Kernels.swiglu`).
    public static func swigluForward(_ h: UnsafeMutablePointer<Float>, _ gateUp: UnsafePointer<Float>, rows N: Int, hidden F: Int) {
        parallelRows(N) { rows, _ in
            Kernels.swiglu(h + rows.lowerBound * F, gateUp + rows.lowerBound * 2 * F, rows: rows.count, hidden: F)
        }
    }

    /// dgate = dh * up * σ(g) (1 + g (1 - σ(g))), dup = dh * silu(g); dgateUp[N,2F] written.
    public static func swigluBackward(_ dgateUp: UnsafeMutablePointer<Float>, dh: UnsafePointer<Float>,
                                      gateUp: UnsafePointer<Float>, rows N: Int, hidden F: Int) {
        parallelRows(N) { rows, _ in swigluBackwardRows(dgateUp, dh: dh, gateUp: gateUp, rows: rows, hidden: F) }
    }

    static func swigluBackwardRows(_ dgateUp: UnsafeMutablePointer<Float>, dh: UnsafePointer<Float>,
                                   gateUp: UnsafePointer<Float>, rows: Range<Int>, hidden F: Int) {
        for n in rows {
            let g = gateUp + n * 2 * F, u = g + F, d = dh + n * F
            let dg = dgateUp + n * 2 * F, du = dg + F
            var i = 0
            while i + 16 <= F {
                let x = load(g + i), up = load(u + i), dy = load(d + i)
                let s = 1 / (1 + VectorMath.exp(-x))
                store(dy * up * s * (1 + x * (1 - s)), dg + i)
                store(dy * x * s, du + i)
                i += 16
            }
            while i < F {
                let x = g[i], s = 1 / (1 + expf(-x))
                dg[i] = d[i] * u[i] * s * (1 + x * (1 - s))
                du[i] = d[i] * x * s
                i += 1
            }
        }
    }

    // MARK: rotary embedding

    /// Rotates the first `heads` heads of each of T rows (stride `ld`), row t at position t.
    public static func ropeForward(_ x: UnsafeMutablePointer<Float>, rope: RoPE, rows T: Int, ld: Int, heads: Int) {
        for t in 0..<T { rope.apply(x + t * ld, heads: heads, position: t) }
    }

    /// The rotation is orthogonal: its gradient is the rotation by the opposite angle.
    public static func ropeBackward(_ dx: UnsafeMutablePointer<Float>, rope: RoPE, rows T: Int, ld: Int, heads: Int) {
        for t in 0..<T { rope.apply(dx + t * ld, heads: heads, position: t, inverse: true) }
    }

    // MARK: attention (one sequence, one kv group)

    /// Causal grouped-query attention of one sequence of T rows for the G query heads that read
    /// kv head `group`, with a key mask. RoPE is applied to those q heads and that k head first.
    ///
    /// qkv[T, QKV] holds q (NH heads), k (NKV heads), v (NKV heads) per row; query head h reads kv
    /// head h / G. Position t sees key j when j <= t and `keyMask[j]`; a row that sees nothing
    /// outputs zeros. out[T, NH*HS] (the group's heads are written). `scores` is scratch of T*T.
    public static func attentionForward(_ out: UnsafeMutablePointer<Float>, qkv: UnsafeMutablePointer<Float>, keyMask: [Bool],
                                        group g: Int, rope: RoPE, rows T: Int, heads NH: Int, kvHeads NKV: Int, headSize HS: Int,
                                        scores: UnsafeMutablePointer<Float>, fromRow: Int = 0) {
        let QKV = (NH + 2 * NKV) * HS, G = NH / NKV
        ropeForward(qkv + g * G * HS, rope: rope, rows: T, ld: QKV, heads: G)
        ropeForward(qkv + (NH + g) * HS, rope: rope, rows: T, ld: QKV, heads: 1)
        let k = qkv + (NH + g) * HS, v = qkv + (NH + NKV + g) * HS
        for h in (g * G)..<((g + 1) * G) {
            // Causal blocks: query rows r0..<r1 only need keys 0..<r1. Blocks wholly before
            // `fromRow` are skipped (their outputs are not wanted).
            for r0 in stride(from: fromRow / attentionBlock * attentionBlock, to: T, by: attentionBlock) {
                let r1 = min(T, r0 + attentionBlock), rb = r1 - r0
                attentionProbabilities(scores, q: qkv + h * HS, k: k, keyMask: keyMask, rows: r0..<r1, length: T, ld: QKV, headSize: HS)
                // out_h[r0..<r1, HS] = P[r0..<r1, 0..<r1] · V[0..<r1, HS]
                BLAS.gemmNN(scores + r0 * T, v, out + r0 * NH * HS + h * HS, m: rb, n: HS, k: r1, lda: T, ldb: QKV, ldc: NH * HS)
            }
        }
    }

    /// Query rows per causal block of the attention products.
    static let attentionBlock = 64

    /// Backward of `attentionForward` for kv group `group`: given dout[T, NH*HS], writes the
    /// group's columns of dqkv[T, QKV] (q heads, k head, v head) as gradients of the *unrotated*
    /// q and k (RoPE backward included). `qkv` holds the rotated values the forward left.
    /// Probabilities are recomputed. With P = softmax(S), dP = dout_h · V^T,
    /// dS = P ⊙ (dP - rowsum(dP ⊙ P)) / sqrt(HS): dq_h = dS · K, dk += dS^T · q_h, dv += P^T · dout_h.
    public static func attentionBackward(_ dqkv: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                         qkv: UnsafePointer<Float>, keyMask: [Bool], group g: Int, rope: RoPE, rows T: Int,
                                         heads NH: Int, kvHeads NKV: Int, headSize HS: Int,
                                         scores: UnsafeMutablePointer<Float>, dscores: UnsafeMutablePointer<Float>, fromRow: Int = 0) {
        let QKV = (NH + 2 * NKV) * HS, G = NH / NKV
        // Query blocks wholly before `fromRow` have zero `dout` (their outputs were not used):
        // they add nothing, and their dq is zero.
        let first = fromRow / attentionBlock * attentionBlock
        let scale = 1 / Float(HS).squareRoot()
        let k = qkv + (NH + g) * HS, v = qkv + (NH + NKV + g) * HS
        let dk = dqkv + (NH + g) * HS, dv = dqkv + (NH + NKV + g) * HS
        for t in 0..<T {
            (dk + t * QKV).update(repeating: 0, count: HS)
            (dv + t * QKV).update(repeating: 0, count: HS)
        }
        for h in (g * G)..<((g + 1) * G) {
            let q = qkv + h * HS, dq = dqkv + h * HS, dout_h = dout + h * HS
            for t in 0..<min(first, T) { (dq + t * QKV).update(repeating: 0, count: HS) }
            for r0 in stride(from: first, to: T, by: attentionBlock) {
                let r1 = min(T, r0 + attentionBlock), rb = r1 - r0
                let p = scores + r0 * T, dp = dscores + r0 * T
                attentionProbabilities(scores, q: q, k: k, keyMask: keyMask, rows: r0..<r1, length: T, ld: QKV, headSize: HS)
                // dv[0..<r1] += P_blk^T · dout_blk
                BLAS.gemmTN(p, dout_h + r0 * NH * HS, dv, m: r1, n: HS, k: rb, lda: T, ldb: NH * HS, ldc: QKV, beta: 1)
                // dP_blk[rb, r1] = dout_blk · V[0..<r1]^T
                BLAS.gemmNT(dout_h + r0 * NH * HS, v, dp, m: rb, n: r1, k: HS, lda: NH * HS, ldb: QKV, ldc: T)
                for t in r0..<r1 {
                    let pr = scores + t * T, dr = dscores + t * T
                    let visible = t + 1
                    let s = Kernels.dot(pr, dr, visible)
                    for j in 0..<visible { dr[j] = pr[j] * (dr[j] - s) * scale }
                    if visible < r1 { (dr + visible).update(repeating: 0, count: r1 - visible) }
                }
                // dq_blk = dS_blk · K[0..<r1] ; dk[0..<r1] += dS_blk^T · q_blk
                BLAS.gemmNN(dp, k, dq + r0 * QKV, m: rb, n: HS, k: r1, lda: T, ldb: QKV, ldc: QKV)
                BLAS.gemmTN(dp, q + r0 * QKV, dk, m: r1, n: HS, k: rb, lda: T, ldb: QKV, ldc: QKV, beta: 1)
            }
        }
        ropeBackward(dqkv + g * G * HS, rope: rope, rows: T, ld: QKV, heads: G)
        ropeBackward(dk, rope: rope, rows: T, ld: QKV, heads: 1)
    }

    /// Rows r0..<r1 of scores[T,T] (row stride `length`): softmax over visible keys of
    /// q·k^T / sqrt(HS) in columns 0..<r1; invisible entries are 0, columns from r1 untouched.
    static func attentionProbabilities(_ scores: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                                       keyMask: [Bool], rows: Range<Int>, length T: Int, ld: Int, headSize HS: Int) {
        let r0 = rows.lowerBound, r1 = rows.upperBound
        BLAS.gemmNT(q + r0 * ld, k, scores + r0 * T, m: r1 - r0, n: r1, k: HS, lda: ld, ldb: ld, ldc: T,
                    alpha: 1 / Float(HS).squareRoot())
        let allVisible = !keyMask.contains(false)
        for t in rows {
            let row = scores + t * T
            if allVisible {
                Kernels.softmax(row, t + 1)
            } else {
                var any = false
                for j in 0...t where !keyMask[j] { row[j] = -.infinity }
                for j in 0...t where keyMask[j] { any = true; break }
                if any { Kernels.softmax(row, t + 1) } else { row.update(repeating: 0, count: t + 1) }
            }
            if t + 1 < r1 { (row + t + 1).update(repeating: 0, count: r1 - t - 1) }
        }
    }

    // MARK: token losses

    /// For R rows of logits[R,V] with targets and coefficients c: returns Σ c_r * (-log p_r(target))
    /// pieces as log-probabilities `logp[r]`, and overwrites logits with the gradient of
    /// `-Σ c_r log p_r(target_r)`: dlogits = c_r (softmax - onehot(target)).
    public static func tokenLossBackward(_ logits: UnsafeMutablePointer<Float>, targets: UnsafePointer<Int>,
                                         coefficients: UnsafePointer<Float>, logp: UnsafeMutablePointer<Float>,
                                         rows R: Int, vocabulary V: Int) {
        parallelRows(R, minimum: 2) { rows, _ in
            for r in rows {
                let row = logits + r * V, y = targets[r]
                let target = row[y]
                let lse = Kernels.softmax(row, V)
                logp[r] = target - lse
                let c = coefficients[r]
                for i in 0..<V { row[i] *= c }
                row[y] -= c
            }
        }
    }

    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
    }
    @inline(__always) static func store(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Float>.self)
    }
}
