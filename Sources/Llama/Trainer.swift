import Foundation
import Tensor

/// Forward and backward passes of the decoder over a `TrainingBatch`, accumulating gradients
/// into `gradients` (same layout as the weights).
///
/// Only the top `trainedLayers` blocks (plus the final norm and the output head) are trained:
/// lower blocks run forward without keeping activations and backward stops above them. When
/// every block is trained the embedding gets both its input-side and (tied) output-side
/// gradient; otherwise a tied embedding is trained as the head only.
///
/// Kept per trained block for the backward pass, per row: the block input x[C], the rotated
/// qkv[QKV], the attention output att[C], the residual after attention xMid[C], gate|up[2F] and
/// two RMS scales; normalised inputs, SwiGLU outputs and attention probabilities are recomputed.
/// Not thread-safe: one pass at a time.
public final class LlamaTrainer: @unchecked Sendable {  // confined to one thread at a time
    public let config: LlamaConfig
    public let weights: LlamaWeights
    public let gradients: LlamaWeights
    public let trainedLayers: Int
    let rope: RoPE

    /// Activations of one block (sized for `rows`).
    final class Saved {
        let rows: Int
        let x, qkv, att, xMid, gateUp, rstd1, rstd2: FloatBuffer
        init(rows N: Int, config c: LlamaConfig) {
            rows = N
            x = FloatBuffer(count: N * c.channels)
            qkv = FloatBuffer(count: N * c.qkvWidth)
            att = FloatBuffer(count: N * c.channels)
            xMid = FloatBuffer(count: N * c.channels)
            gateUp = FloatBuffer(count: N * 2 * c.feedForward)
            rstd1 = FloatBuffer(count: N)
            rstd2 = FloatBuffer(count: N)
        }
    }

    /// Scratch shared by every block (sized for `rows` and `length`).
    final class Scratch {
        let rows: Int, length: Int
        let xn, dx, dxn, datt, h, dh, dgateUp, dqkv, xFinal, rstdFinal, scores, dscores: FloatBuffer
        init(rows N: Int, length T: Int, config c: LlamaConfig) {
            rows = N
            length = T
            xn = FloatBuffer(count: N * c.channels)
            dx = FloatBuffer(count: N * c.channels)
            dxn = FloatBuffer(count: N * c.channels)
            datt = FloatBuffer(count: N * c.channels)
            h = FloatBuffer(count: N * c.feedForward)
            dh = FloatBuffer(count: N * c.feedForward)
            dgateUp = FloatBuffer(count: N * 2 * c.feedForward)
            dqkv = FloatBuffer(count: N * c.qkvWidth)
            xFinal = FloatBuffer(count: N * c.channels)
            rstdFinal = FloatBuffer(count: N)
            // One T x T pair per compute part (attention runs over sequences and groups in parallel).
            scores = FloatBuffer(count: T * T * ComputePool.shared.parts)
            dscores = FloatBuffer(count: T * T * ComputePool.shared.parts)
        }
    }

    private var saved: [Saved] = []  // one per trained block, lowest first
    private var transient: Saved?     // shared by blocks whose activations are not kept
    private var scratch: Scratch?
    /// Output chunk buffers: rows [R,C], their gradient [R,C], logits [R,V].
    private var outputBuffers: (FloatBuffer, FloatBuffer, FloatBuffer)?
    /// Output rows are processed this many at a time (logits of a chunk: rows x V floats).
    public var outputChunkRows = 256
    /// When set, wall time per phase accumulates in `timings` (seconds), for `coderl bench train`.
    public var profiling = false
    public var timings: [String: Double] = [:]
    /// Arithmetic of the linear layers' products (the output layer included): fp32, or bf16
    /// inputs with fp32 sums (mixed precision; check `unavailableReason` before choosing it).
    public var precision: MatrixPrecision = .fp32

    @inline(__always) func timed<R>(_ phase: String, _ body: () throws -> R) rethrows -> R {
        guard profiling else { return try body() }
        let t0 = DispatchTime.now().uptimeNanoseconds
        defer { timings[phase, default: 0] += Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9 }
        return try body()
    }

    /// False for a critic backbone: the hidden states feed another head, so the (tied) output
    /// matrix is neither used nor trained.
    public let usesOutputHead: Bool
    /// False: the output head (with tied embeddings, the embedding) stays as it is; its weight
    /// gradient is not computed, and a new version of the model differs only in its blocks.
    public let trainsOutputHead: Bool

    /// False: the embedding's input side stays as it is even when every block is trained.
    public let trainsEmbedding: Bool

    public init(weights: LlamaWeights, trainedLayers: Int? = nil, usesOutputHead: Bool = true, trainsOutputHead: Bool = true,
                trainsEmbedding: Bool = true) throws {
        config = weights.config
        self.weights = weights
        self.usesOutputHead = usesOutputHead
        self.trainsEmbedding = trainsEmbedding
        self.trainsOutputHead = usesOutputHead && trainsOutputHead
        let n = trainedLayers ?? weights.config.layers
        guard n >= 0 && n <= config.layers else {
            throw LlamaError.badParameter(name: "trained layers", value: "\(n)", expected: "0 to \(config.layers)")
        }
        self.trainedLayers = n
        gradients = LlamaWeights(config: weights.config)
        rope = RoPE(headSize: config.headSize, theta: config.ropeTheta, maxPositions: config.contextLength)
    }

    public var firstTrainedLayer: Int { config.layers - trainedLayers }
    public var trainsEmbeddingInput: Bool { trainedLayers == config.layers && trainsEmbedding }

    /// The trained tensors: the top blocks, the final norm, the output head, and the embedding
    /// when every block is trained or it is the tied head. The optimizer updates (and decays)
    /// these only.
    public var trainedTensors: [NamedTensor] {
        weights.namedTensors.filter { t in
            if let l = t.layer { return l >= firstTrainedLayer }
            switch t.name {
            case "model.embed_tokens.weight": return trainsEmbeddingInput || (trainsOutputHead && config.tiedEmbeddings)
            case "lm_head.weight": return trainsOutputHead
            default: return true
            }
        }
    }

    /// Range of the flat buffer holding every trained tensor (a suffix: blocks come first in
    /// layer order, then embedding, final norm and head).
    public var trainedRange: Range<Int> {
        (firstTrainedLayer * weights.layerStride)..<weights.buffer.count
    }

    public func zeroGradients() {
        let r = trainedRange
        (gradients.buffer.pointer + r.lowerBound).update(repeating: 0, count: r.count)
    }

    // MARK: passes

    /// Runs the batch forward and backward, adding the gradient of the mixed loss to `gradients`.
    @discardableResult
    public func forwardBackward(_ batch: TrainingBatch, mix: LossMix = LossMix()) throws -> TokenLosses {
        try run(batch, mix: mix, backward: true)
    }

    /// The losses of the batch without gradients.
    public func losses(_ batch: TrainingBatch) throws -> TokenLosses {
        try run(batch, mix: LossMix(), backward: false)
    }

    /// Logits at every position: [B*T, V] (for checks against references).
    public func logits(_ batch: TrainingBatch) throws -> [Float] {
        let N = batch.sequences * batch.length, C = config.channels, V = config.vocabularySize
        let s = try normalizedHidden(batch, keep: false, padding: true)
        var out = [Float](repeating: 0, count: N * V)
        out.withUnsafeMutableBufferPointer {
            Layers.linearForward($0.baseAddress!, s.xn.pointer, weights.output, rows: N, in: C, out: V, precision: precision)
        }
        return out
    }

    func prepare(rows N: Int, length T: Int) -> Scratch {
        if let s = scratch, s.rows >= N, s.length == T { return s }
        let s = Scratch(rows: max(N, scratch?.rows ?? 0), length: T, config: config)
        scratch = s
        return s
    }

    /// Embedding and all blocks; leaves x_L in `scratch.xFinal`. Trained blocks keep their
    /// activations in `saved` when `keep`. Padding rows are computed only with `padding`
    /// (their values are used by nothing but `logits`).
    func forwardBlocks(_ batch: TrainingBatch, keep: Bool, padding: Bool = false) throws -> Scratch {
        let B = batch.sequences, T = batch.length, N = B * T, C = config.channels
        guard T <= config.contextLength else {
            throw LlamaError.contextOverflow(needed: T, capacity: config.contextLength)
        }
        let s = prepare(rows: N, length: T)
        if keep && (saved.count != trainedLayers || (saved.first?.rows ?? N) < N) {
            saved = (0..<trainedLayers).map { _ in Saved(rows: N, config: config) }
        }
        // Blocks whose activations are not kept all run through one set of buffers (a block may
        // write its output over its own input).
        let kept = { (l: Int) in keep && l >= self.firstTrainedLayer }
        if !kept(0) && (transient?.rows ?? 0) < N { transient = Saved(rows: N, config: config) }
        func buffers(_ l: Int) -> Saved { kept(l) ? saved[l - firstTrainedLayer] : transient! }
        // Every block runs on the batch's distinct rows only (a prompt that several sequences
        // share is computed once, padding is skipped), when that saves rows.
        if sharesPrefixes, let plan = RowPlan(batch, padding: padding), plan.rows.count < N * 7 / 8 {
            rowPlan = plan
            timed("forward shared rows") { forwardPacked(plan: plan, batch: batch, kept: kept, scratch: s) }
            return s
        }
        rowPlan = nil
        Layers.embeddingForward(buffers(0).x.pointer, tokens: batch.tokens.flatMap { $0 }, table: weights.embedding, channels: C)
        for l in 0..<config.layers {
            let out = l + 1 < config.layers ? buffers(l + 1).x.pointer : s.xFinal.pointer
            blockForward(l, buffers(l), into: out, batch: batch, scratch: s)
        }
        return s
    }

    /// Whether the blocks compute each distinct row of a batch once (on by default; off only
    /// to check that it changes nothing, and to measure what it saves).
    public var sharesPrefixes = true
    /// The plan of the last forward pass when it ran on distinct rows (its backward pass
    /// then does too).
    private var rowPlan: RowPlan?

    /// The rows of a batch that differ: row t of sequence b equals row t of an earlier sequence
    /// whose first t+1 tokens are b's (causal attention, same positions, every key visible), so
    /// only the first of equal rows is computed. Padding rows are computed only with `padding`
    /// (they are neither attended to nor scored; otherwise they stay zero).
    struct RowPlan {
        /// The batch row (b * T + t) of each computed row, in computed order.
        let rows: [Int]
        /// For every batch row, the computed row holding its value, or -1 for padding.
        let source: [Int]
        /// Per sequence, its first computed row (rows before it are another sequence's).
        let firstOwn: [Int]

        init?(_ batch: TrainingBatch, padding: Bool) {
            let B = batch.sequences, T = batch.length
            var rows: [Int] = [], source = [Int](repeating: -1, count: B * T), firstOwn = [Int](repeating: 0, count: B)
            var lengths: [Int] = []
            for b in 0..<B {
                // Right padding only (the visible keys are a prefix); anything else is not planned.
                let length = batch.keyMask[b].firstIndex(of: false) ?? T
                guard !batch.keyMask[b][length...].contains(true) else { return nil }
                lengths.append(length)
                var shared = 0, from = -1
                for e in 0..<b {
                    var p = 0
                    let limit = min(lengths[e], length)
                    while p < limit && batch.tokens[e][p] == batch.tokens[b][p] { p += 1 }
                    if p > shared { shared = p; from = e }
                }
                for t in 0..<shared { source[b * T + t] = source[from * T + t] }
                firstOwn[b] = shared
                for t in shared..<(padding ? T : length) {
                    source[b * T + t] = rows.count
                    rows.append(b * T + t)
                }
            }
            self.rows = rows
            self.source = source
            self.firstOwn = firstOwn
        }
    }

    /// Buffers of the packed path: the distinct rows' activations of blocks that keep none,
    /// their gradient, and the batch-layout q/k/v and attention output attention works on.
    private var packed: (x: FloatBuffer, xMid: FloatBuffer, att: FloatBuffer, gateUp: FloatBuffer, qkv: FloatBuffer, dx: FloatBuffer,
                         batchQKV: FloatBuffer, batchAtt: FloatBuffer)?

    private func packedBuffers(rows R: Int, all N: Int) -> (x: FloatBuffer, xMid: FloatBuffer, att: FloatBuffer, gateUp: FloatBuffer,
                                                             qkv: FloatBuffer, dx: FloatBuffer, batchQKV: FloatBuffer, batchAtt: FloatBuffer) {
        let C = config.channels, F = config.feedForward, QKV = config.qkvWidth
        if (packed?.batchQKV.count ?? 0) < N * QKV || (packed?.x.count ?? 0) < R * C {
            let rows = max(R, (packed?.x.count ?? 0) / C), all = max(N, (packed?.batchAtt.count ?? 0) / C)
            packed = (FloatBuffer(count: rows * C), FloatBuffer(count: rows * C), FloatBuffer(count: rows * C),
                      FloatBuffer(count: rows * 2 * F), FloatBuffer(count: rows * QKV), FloatBuffer(count: rows * C),
                      FloatBuffer(count: all * QKV), FloatBuffer(count: all * C))
        }
        return packed!
    }

    /// Every block on the plan's distinct rows: a kept block's activations go to its `Saved`
    /// (rows in plan order, but q/k/v in batch layout, as attention and its backward read
    /// them); the last block's output is spread back to batch layout in `s.xFinal`.
    private func forwardPacked(plan: RowPlan, batch: TrainingBatch, kept: (Int) -> Bool, scratch s: Scratch) {
        let B = batch.sequences, T = batch.length, N = B * T, R = plan.rows.count
        let C = config.channels, F = config.feedForward, QKV = config.qkvWidth
        let NH = config.heads, NKV = config.kvHeads, HS = config.headSize, eps = config.rmsEpsilon
        let p = packedBuffers(rows: R, all: N)
        let xn = s.xn.pointer, h = s.h.pointer
        // A block's input: its Saved's x when kept, else the shared packed x (a block may write
        // its output over its own input).
        func input(_ l: Int) -> UnsafeMutablePointer<Float> { kept(l) ? saved[l - firstTrainedLayer].x.pointer : p.x.pointer }
        let tokens = batch.tokens.flatMap { $0 }
        Layers.embeddingForward(input(0), tokens: plan.rows.map { tokens[$0] }, table: weights.embedding, channels: C)
        let batchAtt = p.batchAtt.pointer, rope = rope
        for l in 0..<config.layers {
            let a: Saved? = kept(l) ? saved[l - firstTrainedLayer] : nil
            let x = input(l), out = l + 1 < config.layers ? input(l + 1) : p.x.pointer
            let qkv = a?.qkv.pointer ?? p.batchQKV.pointer
            let rstd1 = a?.rstd1.pointer ?? s.rstdFinal.pointer, rstd2 = a?.rstd2.pointer ?? s.rstdFinal.pointer
            let att = a?.att.pointer ?? p.att.pointer, xMid = a?.xMid.pointer ?? p.xMid.pointer, gateUp = a?.gateUp.pointer ?? p.gateUp.pointer
            Layers.rmsNormForward(xn, rstd: rstd1, x, weights.attnNorm(l), rows: R, channels: C, eps: eps)
            Layers.linearForward(p.qkv.pointer, xn, weights.wqkv(l), rows: R, in: C, out: QKV, precision: precision)
            for (g, i) in plan.source.enumerated() {
                if i >= 0 { (qkv + g * QKV).update(from: p.qkv.pointer + i * QKV, count: QKV) } else { (qkv + g * QKV).update(repeating: 0, count: QKV) }
            }
            BLAS.singleThreaded {
                ComputePool.shared.run { part, parts in
                    for item in ComputePool.range(part, of: parts, count: B * NKV) {
                        let b = item / NKV
                        Layers.attentionForward(batchAtt + b * T * C, qkv: qkv + b * T * QKV, keyMask: batch.keyMask[b], group: item % NKV,
                                                rope: rope, rows: T, heads: NH, kvHeads: NKV, headSize: HS,
                                                scores: s.scores.pointer + part * T * T, fromRow: plan.firstOwn[b])
                    }
                }
            }
            for (i, g) in plan.rows.enumerated() { (att + i * C).update(from: batchAtt + g * C, count: C) }
            xMid.update(from: x, count: R * C)
            Layers.linearForward(xMid, att, weights.wo(l), rows: R, in: C, out: C, accumulate: true, precision: precision)
            Layers.rmsNormForward(xn, rstd: rstd2, xMid, weights.ffnNorm(l), rows: R, channels: C, eps: eps)
            Layers.linearForward(gateUp, xn, weights.wGateUp(l), rows: R, in: C, out: 2 * F, precision: precision)
            Layers.swigluForward(h, gateUp, rows: R, hidden: F)
            out.update(from: xMid, count: R * C)
            Layers.linearForward(out, h, weights.wDown(l), rows: R, in: F, out: C, accumulate: true, precision: precision)
        }
        for (g, i) in plan.source.enumerated() {
            let row = s.xFinal.pointer + g * C
            if i >= 0 { row.update(from: p.x.pointer + i * C, count: C) } else { row.update(repeating: 0, count: C) }
        }
    }

    /// Backward of `forwardPacked` through the trained blocks, given d x_L in batch layout in
    /// `s.dx`: a distinct row's gradient is the sum over the batch rows it stands for.
    private func backwardPacked(plan: RowPlan, batch: TrainingBatch, scratch s: Scratch) {
        let B = batch.sequences, T = batch.length, N = B * T, R = plan.rows.count
        let C = config.channels, F = config.feedForward, QKV = config.qkvWidth
        let NH = config.heads, NKV = config.kvHeads, HS = config.headSize, eps = config.rmsEpsilon
        let p = packedBuffers(rows: R, all: N), g = gradients
        let dx = p.dx.pointer, datt = s.datt.pointer, batchAtt = p.batchAtt.pointer, dqkv = p.qkv.pointer, batchDQKV = s.dqkv.pointer
        dx.update(repeating: 0, count: R * C)
        for (row, i) in plan.source.enumerated() where i >= 0 { Kernels.axpy(1, s.dx.pointer + row * C, dx + i * C, C) }
        for l in stride(from: config.layers - 1, through: firstTrainedLayer, by: -1) {
            let a = saved[l - firstTrainedLayer]
            let propagate = l > firstTrainedLayer || trainsEmbeddingInput
            Layers.swigluForward(s.h.pointer, a.gateUp.pointer, rows: R, hidden: F)
            Layers.linearBackward(dx: s.dh.pointer, dw: g.wDown(l), dy: dx, x: s.h.pointer, w: weights.wDown(l), rows: R, in: F, out: C, precision: precision)
            Layers.swigluBackward(s.dgateUp.pointer, dh: s.dh.pointer, gateUp: a.gateUp.pointer, rows: R, hidden: F)
            Layers.rmsNormForward(s.xn.pointer, rstd: a.rstd2.pointer, a.xMid.pointer, weights.ffnNorm(l), rows: R, channels: C, eps: eps)
            Layers.linearBackward(dx: s.dxn.pointer, dw: g.wGateUp(l), dy: s.dgateUp.pointer, x: s.xn.pointer, w: weights.wGateUp(l),
                                  rows: R, in: C, out: 2 * F, precision: precision)
            Layers.rmsNormBackward(dx: dx, dw: g.ffnNorm(l), dout: s.dxn.pointer, x: a.xMid.pointer, rstd: a.rstd2.pointer,
                                   w: weights.ffnNorm(l), rows: R, channels: C, accumulate: true)
            Layers.linearBackward(dx: datt, dw: g.wo(l), dy: dx, x: a.att.pointer, w: weights.wo(l), rows: R, in: C, out: C, precision: precision)
            // A distinct row's attention output was computed at its own batch row only.
            batchAtt.update(repeating: 0, count: N * C)
            for (i, row) in plan.rows.enumerated() { (batchAtt + row * C).update(from: datt + i * C, count: C) }
            let qkv = a.qkv.pointer, rope = rope
            BLAS.singleThreaded {
                ComputePool.shared.run { part, parts in
                    for item in ComputePool.range(part, of: parts, count: B * NKV) {
                        let b = item / NKV
                        Layers.attentionBackward(batchDQKV + b * T * QKV, dout: batchAtt + b * T * C, qkv: qkv + b * T * QKV,
                                                 keyMask: batch.keyMask[b], group: item % NKV, rope: rope, rows: T, heads: NH,
                                                 kvHeads: NKV, headSize: HS, scores: s.scores.pointer + part * T * T,
                                                 dscores: s.dscores.pointer + part * T * T, fromRow: plan.firstOwn[b])
                    }
                }
            }
            // Keys and values of a shared row were read by every sequence that shares it.
            dqkv.update(repeating: 0, count: R * QKV)
            for (row, i) in plan.source.enumerated() where i >= 0 { Kernels.axpy(1, batchDQKV + row * QKV, dqkv + i * QKV, QKV) }
            Layers.rmsNormForward(s.xn.pointer, rstd: a.rstd1.pointer, a.x.pointer, weights.attnNorm(l), rows: R, channels: C, eps: eps)
            Layers.linearBackward(dx: s.dxn.pointer, dw: g.wqkv(l), dy: dqkv, x: s.xn.pointer, w: weights.wqkv(l), rows: R, in: C, out: QKV, precision: precision)
            Layers.rmsNormBackward(dx: propagate ? dx : nil, dw: g.attnNorm(l), dout: s.dxn.pointer, x: a.x.pointer, rstd: a.rstd1.pointer,
                                   w: weights.attnNorm(l), rows: R, channels: C, accumulate: true)
        }
        if trainsEmbeddingInput {
            let tokens = batch.tokens.flatMap { $0 }
            Layers.embeddingBackward(gradients.embedding, dout: dx, tokens: plan.rows.map { tokens[$0] }, channels: C)
        }
    }

    private func run(_ batch: TrainingBatch, mix: LossMix, backward: Bool) throws -> TokenLosses {
        try timed(backward ? "total forward+backward" : "total forward") { try runPass(batch, mix: mix, backward: backward) }
    }

    private func runPass(_ batch: TrainingBatch, mix: LossMix, backward: Bool) throws -> TokenLosses {
        let s = try normalizedHidden(batch, keep: backward)
        let losses = outputLoss(batch, mix: mix, backward: backward, scratch: s)
        guard backward else { return losses }
        backwardBlocks(batch, scratch: s)
        return losses
    }

    /// Given d(xn_final)[N,C] in `s.dxn` (the gradient at the final norm's output), runs the
    /// final norm and the trained blocks backward, down to the embedding when it is trained.
    func backwardBlocks(_ batch: TrainingBatch, scratch s: Scratch) {
        let N = batch.sequences * batch.length, C = config.channels
        Layers.rmsNormBackward(dx: s.dx.pointer, dw: gradients.finalNorm, dout: s.dxn.pointer, x: s.xFinal.pointer,
                               rstd: s.rstdFinal.pointer, w: weights.finalNorm, rows: N, channels: C, accumulate: false)
        if let plan = rowPlan {
            timed("backward shared rows") { backwardPacked(plan: plan, batch: batch, scratch: s) }
            return
        }
        for l in stride(from: config.layers - 1, through: firstTrainedLayer, by: -1) {
            blockBackward(l, saved[l - firstTrainedLayer], batch: batch, scratch: s,
                          propagate: l > firstTrainedLayer || trainsEmbeddingInput)
        }
        if trainsEmbeddingInput {
            Layers.embeddingBackward(gradients.embedding, dout: s.dx.pointer, tokens: batch.tokens.flatMap { $0 }, channels: C)
        }
    }

    /// Final-norm output for every row, xn[N,C] in `s.xn` (the input of any head).
    func normalizedHidden(_ batch: TrainingBatch, keep: Bool, padding: Bool = false) throws -> Scratch {
        let N = batch.sequences * batch.length
        let s = try forwardBlocks(batch, keep: keep, padding: padding)
        Layers.rmsNormForward(s.xn.pointer, rstd: s.rstdFinal.pointer, s.xFinal.pointer, weights.finalNorm,
                              rows: N, channels: config.channels, eps: config.rmsEpsilon)
        return s
    }

    // MARK: one block

    /// x_{l+1}[N,C] = block_l(a.x), keeping what backward needs in `a`.
    private func blockForward(_ l: Int, _ a: Saved, into out: UnsafeMutablePointer<Float>, batch: TrainingBatch, scratch s: Scratch) {
        let B = batch.sequences, T = batch.length, N = B * T
        let C = config.channels, F = config.feedForward, QKV = config.qkvWidth
        let NH = config.heads, NKV = config.kvHeads, HS = config.headSize, eps = config.rmsEpsilon
        timed("forward elementwise") { Layers.rmsNormForward(s.xn.pointer, rstd: a.rstd1.pointer, a.x.pointer, weights.attnNorm(l), rows: N, channels: C, eps: eps) }
        timed("forward matmul") { Layers.linearForward(a.qkv.pointer, s.xn.pointer, weights.wqkv(l), rows: N, in: C, out: QKV, precision: precision) }
        // Attention per (sequence, kv group), spread over the compute parts with OpenBLAS on one
        // thread: these are many small products.
        let qkv = a.qkv.pointer, att = a.att.pointer, rope = rope
        timed("forward attention") { BLAS.singleThreaded {
            ComputePool.shared.run { part, parts in
                for item in ComputePool.range(part, of: parts, count: B * NKV) {
                    let b = item / NKV
                    Layers.attentionForward(att + b * T * C, qkv: qkv + b * T * QKV, keyMask: batch.keyMask[b], group: item % NKV,
                                            rope: rope, rows: T, heads: NH, kvHeads: NKV, headSize: HS,
                                            scores: s.scores.pointer + part * T * T)
                }
            }
        } }
        a.xMid.pointer.update(from: a.x.pointer, count: N * C)
        timed("forward matmul") { Layers.linearForward(a.xMid.pointer, a.att.pointer, weights.wo(l), rows: N, in: C, out: C, accumulate: true, precision: precision) }
        timed("forward elementwise") { Layers.rmsNormForward(s.xn.pointer, rstd: a.rstd2.pointer, a.xMid.pointer, weights.ffnNorm(l), rows: N, channels: C, eps: eps) }
        timed("forward matmul") { Layers.linearForward(a.gateUp.pointer, s.xn.pointer, weights.wGateUp(l), rows: N, in: C, out: 2 * F, precision: precision) }
        timed("forward elementwise") { Layers.swigluForward(s.h.pointer, a.gateUp.pointer, rows: N, hidden: F) }
        out.update(from: a.xMid.pointer, count: N * C)
        timed("forward matmul") { Layers.linearForward(out, s.h.pointer, weights.wDown(l), rows: N, in: F, out: C, accumulate: true, precision: precision) }
    }

    /// Given dx_{l+1} in `s.dx`, accumulates block l's weight gradients and (when `propagate`)
    /// leaves dx_l in `s.dx`.
    private func blockBackward(_ l: Int, _ a: Saved, batch: TrainingBatch, scratch s: Scratch, propagate: Bool) {
        let B = batch.sequences, T = batch.length, N = B * T
        let C = config.channels, F = config.feedForward, QKV = config.qkvWidth
        let NH = config.heads, NKV = config.kvHeads, HS = config.headSize, eps = config.rmsEpsilon
        let g = gradients
        // Feed-forward: x_{l+1} = xMid + Wdown · swiglu(WgateUp · norm(xMid)).
        timed("backward elementwise") { Layers.swigluForward(s.h.pointer, a.gateUp.pointer, rows: N, hidden: F) }
        timed("backward matmul") {
        Layers.linearBackward(dx: s.dh.pointer, dw: g.wDown(l), dy: s.dx.pointer, x: s.h.pointer, w: weights.wDown(l),
                              rows: N, in: F, out: C, precision: precision)
        }
        timed("backward elementwise") { Layers.swigluBackward(s.dgateUp.pointer, dh: s.dh.pointer, gateUp: a.gateUp.pointer, rows: N, hidden: F) }
        timed("backward elementwise") { Layers.rmsNormForward(s.xn.pointer, rstd: a.rstd2.pointer, a.xMid.pointer, weights.ffnNorm(l), rows: N, channels: C, eps: eps) }
        timed("backward matmul") {
        Layers.linearBackward(dx: s.dxn.pointer, dw: g.wGateUp(l), dy: s.dgateUp.pointer, x: s.xn.pointer, w: weights.wGateUp(l),
                              rows: N, in: C, out: 2 * F, precision: precision)
        }
        // s.dx becomes d xMid: the residual path plus the norm's input gradient.
        timed("backward elementwise") { Layers.rmsNormBackward(dx: s.dx.pointer, dw: g.ffnNorm(l), dout: s.dxn.pointer, x: a.xMid.pointer, rstd: a.rstd2.pointer,
                               w: weights.ffnNorm(l), rows: N, channels: C, accumulate: true) }
        // Attention: xMid = x + Wo · attention(rope(Wqkv · norm(x))).
        timed("backward matmul") {
        Layers.linearBackward(dx: s.datt.pointer, dw: g.wo(l), dy: s.dx.pointer, x: a.att.pointer, w: weights.wo(l),
                              rows: N, in: C, out: C, precision: precision)
        }
        let qkv = a.qkv.pointer, rope = rope
        timed("backward attention") {
        BLAS.singleThreaded {
            ComputePool.shared.run { part, parts in
                for item in ComputePool.range(part, of: parts, count: B * NKV) {
                    let b = item / NKV
                    Layers.attentionBackward(s.dqkv.pointer + b * T * QKV, dout: s.datt.pointer + b * T * C, qkv: qkv + b * T * QKV,
                                             keyMask: batch.keyMask[b], group: item % NKV, rope: rope, rows: T, heads: NH,
                                             kvHeads: NKV, headSize: HS, scores: s.scores.pointer + part * T * T,
                                             dscores: s.dscores.pointer + part * T * T)
                }
            }
        }
        }
        timed("backward elementwise") { Layers.rmsNormForward(s.xn.pointer, rstd: a.rstd1.pointer, a.x.pointer, weights.attnNorm(l), rows: N, channels: C, eps: eps) }
        timed("backward matmul") {
        Layers.linearBackward(dx: s.dxn.pointer, dw: g.wqkv(l), dy: s.dqkv.pointer, x: s.xn.pointer, w: weights.wqkv(l),
                              rows: N, in: C, out: QKV, precision: precision)
        }
        timed("backward elementwise") { Layers.rmsNormBackward(dx: propagate ? s.dx.pointer : nil, dw: g.attnNorm(l), dout: s.dxn.pointer, x: a.x.pointer,
                               rstd: a.rstd1.pointer, w: weights.attnNorm(l), rows: N, channels: C, accumulate: true) }
    }

    // MARK: output head and losses

    /// Logits, losses and (when `backward`) d(xn_final) into `s.dxn` and the head's gradient, over
    /// the scored rows only, `outputChunkRows` at a time.
    private func outputLoss(_ batch: TrainingBatch, mix: LossMix, backward: Bool, scratch s: Scratch) -> TokenLosses {
        let T = batch.length, C = config.channels, V = config.vocabularySize
        var rows: [Int] = [], targets: [Int] = [], masks: [Float] = [], ws: [Float] = []
        for b in 0..<batch.sequences {
            for t in 0..<(T - 1) {
                let m = batch.lossMask[b][t], w = batch.weights?[b][t] ?? 0
                guard m != 0 || w != 0 else { continue }
                rows.append(b * T + t)
                targets.append(batch.tokens[b][t + 1])
                masks.append(m)
                ws.append(w)
            }
        }
        let scored = Int(masks.reduce(0, +))
        let M = Float(max(scored, 1))
        let coefficients = zip(masks, ws).map { mix.scale * (mix.crossEntropy * $0 + mix.weighted * $1) / M }
        if backward { s.dxn.pointer.update(repeating: 0, count: batch.sequences * T * C) }
        let R = max(1, outputChunkRows)
        if (outputBuffers?.2.count ?? 0) < R * V {
            outputBuffers = (FloatBuffer(count: R * C), FloatBuffer(count: R * C), FloatBuffer(count: R * V))
        }
        let (chunkX, chunkD, logits) = outputBuffers!
        var logp = [Float](repeating: 0, count: rows.count)
        var start = 0
        while start < rows.count {
            let n = min(R, rows.count - start)
            for i in 0..<n { (chunkX.pointer + i * C).update(from: s.xn.pointer + rows[start + i] * C, count: C) }
            timed("output matmul") { Layers.linearForward(logits.pointer, chunkX.pointer, weights.output, rows: n, in: C, out: V, precision: precision) }
            timed("output softmax") { targets.withUnsafeBufferPointer { tp in
                coefficients.withUnsafeBufferPointer { cp in
                    logp.withUnsafeMutableBufferPointer { lp in
                        Layers.tokenLossBackward(logits.pointer, targets: tp.baseAddress! + start, coefficients: cp.baseAddress! + start,
                                                 logp: lp.baseAddress! + start, rows: n, vocabulary: V)
                    }
                }
            } }
            if backward {
                timed("output matmul") {
                    Layers.linearBackward(dx: chunkD.pointer, dw: trainsOutputHead ? gradients.output : nil, dy: logits.pointer, x: chunkX.pointer, w: weights.output,
                                          rows: n, in: C, out: V, precision: precision)
                }
                for i in 0..<n { Kernels.axpy(1, chunkD.pointer + i * C, s.dxn.pointer + rows[start + i] * C, C) }
            }
            start += n
        }
        var ce: Double = 0, pg: Double = 0
        for i in 0..<rows.count {
            ce -= Double(masks[i] * logp[i])
            pg -= Double(ws[i] * logp[i])
        }
        return TokenLosses(crossEntropy: Float(ce / Double(M)), weighted: Float(pg / Double(M)), scoredTokens: scored)
    }
}
