import Foundation
import Tensor

/// The layers of the decoder as forward/backward pairs (llm.c style). Every backward
/// *accumulates* into its weight gradients (`+=`); input gradients are written (`=`) unless the
/// name says `accumulate`. Shapes use N rows (B sequences of T positions), C channels,
/// NH/NKV heads of HS values, F feed-forward width, V vocabulary.
public enum Layers {
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

    /// y[N,out] = x[N,in] · W[out,in]^T (+ y when `accumulate`).
    public static func linearForward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                                     rows N: Int, in k: Int, out n: Int, accumulate: Bool = false) {
        BLAS.gemmNT(x, w, y, m: N, n: n, k: k, ldc: n, beta: accumulate ? 1 : 0)
    }

    /// dx[N,in] (=|+=) dy[N,out] · W[out,in]; dW[out,in] += dy^T · x. `dx` nil skips the input
    /// gradient (the lowest trained layer), `dw` nil skips the weight gradient (frozen weights).
    public static func linearBackward(dx: UnsafeMutablePointer<Float>?, dw: UnsafeMutablePointer<Float>?,
                                      dy: UnsafePointer<Float>, x: UnsafePointer<Float>, w: UnsafePointer<Float>,
                                      rows N: Int, in k: Int, out n: Int, accumulateInput: Bool = false) {
        if let dx { BLAS.gemmNN(dy, w, dx, m: N, n: k, k: n, beta: accumulateInput ? 1 : 0) }
        if let dw { BLAS.gemmTN(dy, x, dw, m: n, n: k, k: N, beta: 1) }
    }

    // MARK: RMSNorm

    /// out[N,C] = x / rms(x) * w; rstd[N] = 1 / sqrt(mean(x^2) + eps). `out` may alias `x`.
    public static func rmsNormForward(_ out: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
                                      _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, rows N: Int, channels C: Int, eps: Float) {
        for n in 0..<N {
            let xr = x + n * C, or = out + n * C
            let r = 1 / (Kernels.dot(xr, xr, C) / Float(C) + eps).squareRoot()
            rstd[n] = r
            for i in 0..<C { or[i] = xr[i] * r * w[i] }
        }
    }

    /// With x̂ = x * rstd: dw += Σ_n dout ⊙ x̂, and
    /// dx = rstd * (w ⊙ dout - x̂ * mean(w ⊙ dout ⊙ x̂)), written or added (`accumulate`).
    public static func rmsNormBackward(dx: UnsafeMutablePointer<Float>?, dw: UnsafeMutablePointer<Float>?,
                                       dout: UnsafePointer<Float>, x: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
                                       w: UnsafePointer<Float>, rows N: Int, channels C: Int, accumulate: Bool) {
        for n in 0..<N {
            let xr = x + n * C, dr = dout + n * C, r = rstd[n]
            if let dw { for i in 0..<C { dw[i] += dr[i] * xr[i] * r } }
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

    // MARK: SwiGLU

    /// Rows laid out [gate(F) | up(F)]: h[N,F] = silu(gate) * up (`Kernels.swiglu`).
    public static func swigluForward(_ h: UnsafeMutablePointer<Float>, _ gateUp: UnsafePointer<Float>, rows N: Int, hidden F: Int) {
        Kernels.swiglu(h, gateUp, rows: N, hidden: F)
    }

    /// dgate = dh * up * σ(g) (1 + g (1 - σ(g))), dup = dh * silu(g); dgateUp[N,2F] written.
    public static func swigluBackward(_ dgateUp: UnsafeMutablePointer<Float>, dh: UnsafePointer<Float>,
                                      gateUp: UnsafePointer<Float>, rows N: Int, hidden F: Int) {
        for n in 0..<N {
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

    // MARK: attention (one sequence)

    /// Causal grouped-query attention of one sequence of T rows, with a key mask.
    ///
    /// qkv[T, QKV] holds rotated q (NH heads), k (NKV heads), v (NKV heads) per row; query head h
    /// reads kv head h / G. Position t sees key j when j <= t and `keyMask[j]`; a row that sees
    /// nothing outputs zeros. out[T, NH*HS]. `scores` is scratch of T*T.
    public static func attentionForward(_ out: UnsafeMutablePointer<Float>, qkv: UnsafePointer<Float>, keyMask: [Bool],
                                        rows T: Int, heads NH: Int, kvHeads NKV: Int, headSize HS: Int,
                                        scores: UnsafeMutablePointer<Float>) {
        let QKV = (NH + 2 * NKV) * HS, G = NH / NKV
        for h in 0..<NH {
            let g = h / G
            let q = qkv + h * HS, k = qkv + (NH + g) * HS, v = qkv + (NH + NKV + g) * HS
            attentionProbabilities(scores, q: q, k: k, keyMask: keyMask, rows: T, ld: QKV, headSize: HS)
            // out_h[T,HS] = P[T,T] · V[T,HS]
            BLAS.gemmNN(scores, v, out + h * HS, m: T, n: HS, k: T, lda: T, ldb: QKV, ldc: NH * HS)
        }
    }

    /// Backward of `attentionForward`: given dout[T, NH*HS], writes dqkv[T, QKV] (gradients of the
    /// rotated q and k, and of v). Probabilities are recomputed from q and k, not stored.
    /// With P = softmax(S), dP = dout_h · V^T, dS = P ⊙ (dP - rowsum(dP ⊙ P)) / sqrt(HS):
    /// dq_h = dS · K, dk_g += dS^T · q_h, dv_g += P^T · dout_h.
    public static func attentionBackward(_ dqkv: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                         qkv: UnsafePointer<Float>, keyMask: [Bool], rows T: Int,
                                         heads NH: Int, kvHeads NKV: Int, headSize HS: Int,
                                         scores: UnsafeMutablePointer<Float>, dscores: UnsafeMutablePointer<Float>) {
        let QKV = (NH + 2 * NKV) * HS, G = NH / NKV
        let scale = 1 / Float(HS).squareRoot()
        // k and v gradients accumulate over the G query heads of a group.
        for t in 0..<T { (dqkv + t * QKV + NH * HS).update(repeating: 0, count: 2 * NKV * HS) }
        for h in 0..<NH {
            let g = h / G
            let q = qkv + h * HS, k = qkv + (NH + g) * HS, v = qkv + (NH + NKV + g) * HS
            let dq = dqkv + h * HS, dk = dqkv + (NH + g) * HS, dv = dqkv + (NH + NKV + g) * HS
            let dout_h = dout + h * HS
            attentionProbabilities(scores, q: q, k: k, keyMask: keyMask, rows: T, ld: QKV, headSize: HS)
            // dv[T,HS] += P^T · dout_h
            BLAS.gemmTN(scores, dout_h, dv, m: T, n: HS, k: T, lda: T, ldb: NH * HS, ldc: QKV, beta: 1)
            // dP[T,T] = dout_h · V^T
            BLAS.gemmNT(dout_h, v, dscores, m: T, n: T, k: HS, lda: NH * HS, ldb: QKV, ldc: T)
            for t in 0..<T {
                let p = scores + t * T, dp = dscores + t * T
                let visible = t + 1
                let s = Kernels.dot(p, dp, visible)
                for j in 0..<visible { dp[j] = p[j] * (dp[j] - s) * scale }
                if visible < T { (dp + visible).update(repeating: 0, count: T - visible) }
            }
            // dq_h[T,HS] = dS · K ; dk[T,HS] += dS^T · q_h
            BLAS.gemmNN(dscores, k, dq, m: T, n: HS, k: T, lda: T, ldb: QKV, ldc: QKV)
            BLAS.gemmTN(dscores, q, dk, m: T, n: HS, k: T, lda: T, ldb: QKV, ldc: QKV, beta: 1)
        }
    }

    /// scores[T,T] = softmax over visible keys of q·k^T / sqrt(HS); invisible entries are 0.
    static func attentionProbabilities(_ scores: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                                       keyMask: [Bool], rows T: Int, ld: Int, headSize HS: Int) {
        BLAS.gemmNT(q, k, scores, m: T, n: T, k: HS, lda: ld, ldb: ld, ldc: T, alpha: 1 / Float(HS).squareRoot())
        let allVisible = !keyMask.contains(false)
        for t in 0..<T {
            let row = scores + t * T
            if allVisible {
                Kernels.softmax(row, t + 1)
            } else {
                var any = false
                for j in 0...t where !keyMask[j] { row[j] = -.infinity }
                for j in 0...t where keyMask[j] { any = true; break }
                if any { Kernels.softmax(row, t + 1) } else { row.update(repeating: 0, count: t + 1) }
            }
            if t + 1 < T { (row + t + 1).update(repeating: 0, count: T - t - 1) }
        }
    }

    // MARK: token losses

    /// For R rows of logits[R,V] with targets and coefficients c: returns Σ c_r * (-log p_r(target))
    /// pieces as log-probabilities `logp[r]`, and overwrites logits with the gradient of
    /// `-Σ c_r log p_r(target_r)`: dlogits = c_r (softmax - onehot(target)).
    public static func tokenLossBackward(_ logits: UnsafeMutablePointer<Float>, targets: UnsafePointer<Int>,
                                         coefficients: UnsafePointer<Float>, logp: UnsafeMutablePointer<Float>,
                                         rows R: Int, vocabulary V: Int) {
        for r in 0..<R {
            let row = logits + r * V, y = targets[r]
            let target = row[y]
            let lse = Kernels.softmax(row, V)
            logp[r] = target - lse
            let c = coefficients[r]
            for i in 0..<V { row[i] *= c }
            row[y] -= c
        }
    }

    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
    }
    @inline(__always) static func store(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Float>.self)
    }
}
