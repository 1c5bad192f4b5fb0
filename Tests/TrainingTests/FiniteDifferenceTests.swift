import Foundation
import Llama
import Tensor
import XCTest

/// Every backward function against central finite differences of its forward, and the whole
/// model (both losses, padding, negative weights, tied and untied heads) the same way.
///
/// A layer's scalar test loss is L = Σ out ⊙ R for a fixed random R, so its output gradient is R.
/// Central differences with step 1e-2 on fp32 forwards summed in double agree with exact
/// gradients to about 1e-3 relative here; the tolerance is 2e-2 of the largest gradient checked.
final class FiniteDifferenceTests: XCTestCase {
    var rng = Xoshiro256(seed: 7)

    func random(_ n: Int, scale: Float = 1) -> [Float] { (0..<n).map { _ in (rng.nextUnit() * 2 - 1) * scale } }

    func check(_ name: String, _ values: UnsafeMutablePointer<Float>, count: Int, analytic: UnsafePointer<Float>,
               samples: Int = 40, step h: Float = 1e-2, tolerance: Double = 2e-2, loss: () -> Double) {
        checkGradient(name, values, count: count, analytic: analytic, samples: samples, step: h, tolerance: tolerance,
                      rng: &rng, loss: loss)
    }

    func dotLoss(_ out: UnsafePointer<Float>, _ r: [Float]) -> Double {
        var s = 0.0
        for i in 0..<r.count { s += Double(out[i]) * Double(r[i]) }
        return s
    }

    func testLinear() {
        let N = 5, K = 16, M = 12
        let x = FloatBuffer(random(N * K)), w = FloatBuffer(random(M * K)), r = random(N * M)
        let y = FloatBuffer(count: N * M), dx = FloatBuffer(count: N * K), dw = FloatBuffer(count: M * K)
        let loss = { Layers.linearForward(y.pointer, x.pointer, w.pointer, rows: N, in: K, out: M); return self.dotLoss(y.pointer, r) }
        r.withUnsafeBufferPointer {
            Layers.linearBackward(dx: dx.pointer, dw: dw.pointer, dy: $0.baseAddress!, x: x.pointer, w: w.pointer, rows: N, in: K, out: M)
        }
        check("linear dx", x.pointer, count: x.count, analytic: dx.pointer, loss: loss)
        check("linear dW", w.pointer, count: w.count, analytic: dw.pointer, loss: loss)
    }

    func testRMSNorm() {
        let N = 4, C = 24
        let x = FloatBuffer(random(N * C, scale: 2)), w = FloatBuffer(random(C).map { 1 + $0 * 0.3 }), r = random(N * C)
        let y = FloatBuffer(count: N * C), rstd = FloatBuffer(count: N)
        let dx = FloatBuffer(count: N * C), dw = FloatBuffer(count: C)
        let loss = {
            Layers.rmsNormForward(y.pointer, rstd: rstd.pointer, x.pointer, w.pointer, rows: N, channels: C, eps: 1e-5)
            return self.dotLoss(y.pointer, r)
        }
        _ = loss()
        r.withUnsafeBufferPointer {
            Layers.rmsNormBackward(dx: dx.pointer, dw: dw.pointer, dout: $0.baseAddress!, x: x.pointer, rstd: rstd.pointer,
                                   w: w.pointer, rows: N, channels: C, accumulate: false)
        }
        check("rmsnorm dx", x.pointer, count: x.count, analytic: dx.pointer, step: 1e-3, loss: loss)
        check("rmsnorm dw", w.pointer, count: w.count, analytic: dw.pointer, loss: loss)
    }

    func testSwiGLU() {
        let N = 3, F = 20  // F not a multiple of 16: the scalar tail runs too
        let gu = FloatBuffer(random(N * 2 * F, scale: 3)), r = random(N * F)
        let h = FloatBuffer(count: N * F), dgu = FloatBuffer(count: N * 2 * F)
        let loss = { Layers.swigluForward(h.pointer, gu.pointer, rows: N, hidden: F); return self.dotLoss(h.pointer, r) }
        r.withUnsafeBufferPointer { Layers.swigluBackward(dgu.pointer, dh: $0.baseAddress!, gateUp: gu.pointer, rows: N, hidden: F) }
        check("swiglu", gu.pointer, count: gu.count, analytic: dgu.pointer, samples: 120, step: 1e-3, loss: loss)
    }

    func testRoPE() {
        let T = 6, HS = 8, heads = 3
        let rope = RoPE(headSize: HS, theta: 10_000, maxPositions: 16)
        let x0 = random(T * heads * HS), r = random(T * heads * HS)
        let x = FloatBuffer(x0), y = FloatBuffer(count: x0.count)
        let loss = {
            y.pointer.update(from: x.pointer, count: x0.count)
            Layers.ropeForward(y.pointer, rope: rope, rows: T, ld: heads * HS, heads: heads)
            return self.dotLoss(y.pointer, r)
        }
        let dx = FloatBuffer(r)
        Layers.ropeBackward(dx.pointer, rope: rope, rows: T, ld: heads * HS, heads: heads)
        check("rope", x.pointer, count: x.count, analytic: dx.pointer, samples: 144, loss: loss)
    }

    /// Attention of every kv group, RoPE included (the forward rotates q and k in place, so each
    /// evaluation starts from a fresh copy of the unrotated input).
    func testAttentionWithGroupedHeadsAndKeyMask() {
        // Key 2 and the padded tail are masked; row 0 still sees itself.
        attentionCheck(mask: [true, true, false, true, true, false, false])
    }

    /// Longer than one causal block (64 query rows), so the blocked products are covered.
    func testAttentionAcrossCausalBlocks() {
        attentionCheck(mask: (0..<150).map { $0 < 140 && $0 != 70 })
    }

    /// SmolLM2's head size (64), one kv head for two query heads, T = 83 (a partial second block).
    func testAttentionAtTheModelsHeadSize() {
        attentionCheck(mask: (0..<83).map { $0 != 5 && $0 < 80 }, heads: 2, kvHeads: 1, headSize: 64)
    }

    func attentionCheck(mask: [Bool], heads NH: Int = 4, kvHeads NKV: Int = 2, headSize HS: Int = 8) {
        let T = mask.count, QKV = (NH + 2 * NKV) * HS
        let rope = RoPE(headSize: HS, theta: 10_000, maxPositions: T)
        let input = FloatBuffer(random(T * QKV, scale: 1.5)), r = random(T * NH * HS)
        let qkv = FloatBuffer(count: T * QKV), out = FloatBuffer(count: T * NH * HS), dqkv = FloatBuffer(count: T * QKV)
        let scores = FloatBuffer(count: T * T), dscores = FloatBuffer(count: T * T)
        let forward = {
            qkv.pointer.update(from: input.pointer, count: T * QKV)
            for g in 0..<NKV {
                Layers.attentionForward(out.pointer, qkv: qkv.pointer, keyMask: mask, group: g, rope: rope, rows: T, heads: NH,
                                        kvHeads: NKV, headSize: HS, scores: scores.pointer)
            }
        }
        let loss = { forward(); return self.dotLoss(out.pointer, r) }
        forward()
        r.withUnsafeBufferPointer {
            for g in 0..<NKV {
                Layers.attentionBackward(dqkv.pointer, dout: $0.baseAddress!, qkv: qkv.pointer, keyMask: mask, group: g, rope: rope,
                                         rows: T, heads: NH, kvHeads: NKV, headSize: HS, scores: scores.pointer, dscores: dscores.pointer)
            }
        }
        check("attention dqkv", input.pointer, count: input.count, analytic: dqkv.pointer, samples: 200, step: 1e-3, loss: loss)
        // Masked keys get no gradient and change nothing.
        for t in mask.indices where !mask[t] {
            for i in NH * HS..<QKV { XCTAssertEqual(dqkv[t * QKV + i], 0, "masked key \(t) got a gradient") }
        }
    }

    func testEmbeddingAndTokenLoss() {
        let V = 30, C = 16, tokens = [3, 7, 3, 29]
        let table = FloatBuffer(random(V * C)), r = random(tokens.count * C)
        let out = FloatBuffer(count: tokens.count * C), dtable = FloatBuffer(count: V * C)
        let loss = { Layers.embeddingForward(out.pointer, tokens: tokens, table: table.pointer, channels: C); return self.dotLoss(out.pointer, r) }
        r.withUnsafeBufferPointer { Layers.embeddingBackward(dtable.pointer, dout: $0.baseAddress!, tokens: tokens, channels: C) }
        check("embedding (token 3 used twice)", table.pointer, count: table.count, analytic: dtable.pointer, samples: 480, loss: loss)

        // -Σ c_r log p(target_r) with a negative coefficient.
        let R = 3, targets = [4, 0, 29], coefficients: [Float] = [0.5, -0.7, 1.2]
        let logits = FloatBuffer(random(R * V, scale: 3)), grad = FloatBuffer(count: R * V), logp = FloatBuffer(count: R)
        let ce = {
            var s = 0.0
            for i in 0..<R {
                let lse = Kernels.logSumExp(logits.pointer + i * V, V)
                s -= Double(coefficients[i]) * Double(logits[i * V + targets[i]] - lse)
            }
            return s
        }
        grad.pointer.update(from: logits.pointer, count: R * V)
        Layers.tokenLossBackward(grad.pointer, targets: targets, coefficients: coefficients, logp: logp.pointer, rows: R, vocabulary: V)
        check("token loss", logits.pointer, count: logits.count, analytic: grad.pointer, samples: 90, step: 1e-3, loss: ce)
    }

    // MARK: the whole model

    func modelCheck(tied: Bool) throws {
        let config = try LlamaConfig(vocabularySize: 40, channels: 32, layers: 2, heads: 4, kvHeads: 2, feedForward: 24,
                                     contextLength: 16, tiedEmbeddings: tied)
        let weights = randomWeights(config, seed: tied ? 11 : 12)
        var r = Xoshiro256(seed: 5)
        let seqs = [randomTokens(9, vocabulary: 40, rng: &r), randomTokens(6, vocabulary: 40, rng: &r)]
        let batch = try TrainingBatch.completions(seqs, promptLengths: [3, 2],
                                                  weights: [[0.8, -1.3, 0.4, 0.0, 2.0, -0.2], [1.0, -0.5, 0.3, 0.9]],
                                                  pad: 0, vocabularySize: 40)
        let mix = LossMix(crossEntropy: 1, weighted: 1)
        let trainer = try LlamaTrainer(weights: weights)
        trainer.zeroGradients()
        try trainer.forwardBackward(batch, mix: mix)
        let loss = { () -> Double in
            let l = try! trainer.losses(batch)
            return Double(l.crossEntropy) + Double(l.weighted)
        }
        for t in weights.namedTensors {
            check("model \(tied ? "tied" : "untied"): \(t.name)", weights.buffer.pointer + t.offset, count: t.count,
                  analytic: trainer.gradients.buffer.pointer + t.offset, samples: 12, step: 1e-2, tolerance: 3e-2, loss: loss)
        }
    }

    func testWholeModelTied() throws { try modelCheck(tied: true) }
    func testWholeModelUntied() throws { try modelCheck(tied: false) }
}
