import Foundation
import ModelIO
import Tensor

/// A Llama-family decoder for inference: RMSNorm, rotary attention with grouped kv heads,
/// SwiGLU, optionally tied embeddings, all fp32: OpenBLAS for the linear layers' products of
/// many rows (prefill), `SkinnyGemm` on both cores for few rows (decode, short prompts), and
/// attention on our own threads.
///
/// With `precision: .bf16` the linear layers' weights are also packed once, rounded to
/// bfloat16 (`BF16PackedMatrix`), and every linear product (prefill and decode) takes bf16
/// inputs with fp32 sums: half the weight bytes per decode step and twice the multiply rate
/// on CPUs with AVX512-BF16; the prompt's attention becomes bf16 products too. Norms, RoPE,
/// softmax, decode attention and the KV cache are unchanged. The packed copy is made at init:
/// a model whose weights change must be created again (the sampler makes one per version).
///
/// Two entry points: `prefill` runs T prompt tokens of one sequence into a `PrefixCache`, and
/// `decode` advances B sequences by one token each, sharing that prefix and keeping their own
/// generated keys and values in a `SlotCache`. Not thread-safe: one generation at a time per
/// instance (the workspace is reused between calls).
public final class LlamaModel: @unchecked Sendable {  // see above: confined to one thread at a time
    public let config: LlamaConfig
    public let weights: LlamaWeights
    /// The arithmetic of the linear layers' products.
    public let precision: MatrixPrecision
    let packed: PackedWeights?
    let rope: RoPE
    let work = Workspace()

    /// `precision: .bf16` requires `MatrixPrecision.bf16.unavailableReason == nil`.
    public init(weights: LlamaWeights, precision: MatrixPrecision = .fp32) {
        require(precision.unavailableReason == nil, precision.unavailableReason ?? "")
        self.config = weights.config
        self.weights = weights
        self.precision = precision
        packed = precision == .bf16 ? PackedWeights(weights) : nil
        rope = RoPE(headSize: weights.config.headSize, theta: weights.config.ropeTheta,
                    maxPositions: weights.config.contextLength)
    }

    /// Loads a Llama GGUF file (weights dequantized to fp32) and its tokenizer.
    public static func load(gguf path: String, precision: MatrixPrecision = .fp32) throws -> (LlamaModel, Tokenizer, ChatTemplate?) {
        let file = try GGUFFile(path: path)
        let config = try LlamaConfig(gguf: file)
        let weights = try LlamaWeights(gguf: file, config: config)
        let tokenizer = try Tokenizer(gguf: file)
        let template = try? ChatTemplate(gguf: file)
        return (LlamaModel(weights: weights, precision: precision), tokenizer, template)
    }

    func checkTokens(_ tokens: [Int]) throws {
        for t in tokens where t < 0 || t >= config.vocabularySize {
            throw LlamaError.badToken(t, vocabularySize: config.vocabularySize)
        }
    }

    // MARK: prefill

    /// Runs `tokens` at positions `cache.length...` and appends their keys and values to the
    /// prefix cache. Writes the logits of the last token into `logits[V]` when given.
    public func prefill(_ tokens: [Int], cache: PrefixCache, logits: UnsafeMutablePointer<Float>? = nil) throws {
        let T = tokens.count, start = cache.length
        guard T > 0 else { throw LlamaError.emptyPrompt }
        guard start + T <= cache.capacity, start + T <= config.contextLength else {
            throw LlamaError.contextOverflow(needed: start + T, capacity: min(cache.capacity, config.contextLength))
        }
        try checkTokens(tokens)
        let HS = config.headSize, NH = config.heads, NKV = config.kvHeads, QKV = config.qkvWidth
        let ctx = start + T
        // Score rows per thread: a piece of rows (bf16) or one row's G heads (fp32).
        let pieceRows = packed != nil ? min(T, Self.attentionRows) : config.groupSize
        work.reserve(rows: T, config: config, scoreColumns: ctx, scoreRows: pieceRows * ComputePool.shared.parts)
        let qkv = work.qkv.pointer
        embed(tokens)
        for l in 0..<config.layers {
            projectQKV(l, rows: T)
            for t in 0..<T {
                let row = qkv + t * QKV
                rope.apply(row, heads: NH + NKV, position: start + t)  // q and k heads are adjacent
                for g in 0..<NKV {
                    (cache.k(l, g) + (start + t) * HS).update(from: row + (NH + g) * HS, count: HS)
                    (cache.v(l, g) + (start + t) * HS).update(from: row + (NH + NKV + g) * HS, count: HS)
                }
            }
            // Attention on our own threads (OpenBLAS's, spinning after a call, slowed the pool).
            if packed != nil {
                attendBF16(l, rows: T, start: start, cache: cache)
            } else {
                attendPrompt(l, rows: T, start: start, cache: cache)
            }
            finishLayer(l, rows: T)
        }
        cache.length = ctx
        if let logits { outputLogits(fromRow: T - 1, rows: 1, into: logits) }
    }

    /// Prompt attention in fp32 on our own threads: each row's G query heads per kv head go
    /// through the decode attention kernel (`attendOwnPositions`, each key loaded once for the
    /// group), over the positions the row can see; rows are dealt to the threads in turn
    /// (row t costs start + t + 1 positions).
    private func attendPrompt(_ l: Int, rows T: Int, start: Int, cache: PrefixCache) {
        let HS = config.headSize, NH = config.heads, NKV = config.kvHeads, G = config.groupSize, QKV = config.qkvWidth
        let qkv = work.qkv.pointer, att = work.att.pointer, scores = work.scores.pointer, qg = work.groupQ.pointer
        let scale = 1 / Float(HS).squareRoot(), ld = start + T
        ComputePool.shared.run { part, parts in
            let s = scores + part * G * ld, q = qg + part * G * HS
            var t = part
            while t < T {
                for g in 0..<NKV {
                    let src = qkv + t * QKV + g * G * HS
                    for i in 0..<G * HS { q[i] = src[i] * scale }
                    Self.attendOwnPositions(KVFloat32.self, q: q, scores: s, ld: ld, groupSize: G, headSize: HS,
                                            prefixLength: 0, prefixV: cache.v(l, g), keys: UnsafeRawPointer(cache.k(l, g)),
                                            values: UnsafeRawPointer(cache.v(l, g)), count: start + t + 1,
                                            out: att + t * NH * HS + g * G * HS)
                }
                t += parts
            }
        }
    }

    /// Rows of one head's prompt attention per piece of work under bf16.
    static let attentionRows = 64

    /// Prefill attention under bf16: scores and outputs as bf16 products (`BF16Gemm` on one
    /// thread each), the work split into (rows, head) pieces over the pool's threads; a piece of
    /// rows t0..<t1 reads only the positions they can see (causal), up to start + t1.
    private func attendBF16(_ l: Int, rows T: Int, start: Int, cache: PrefixCache) {
        let HS = config.headSize, NH = config.heads, G = config.groupSize, QKV = config.qkvWidth
        let qkv = work.qkv.pointer, att = work.att.pointer, scores = work.scores.pointer
        let scale = 1 / Float(HS).squareRoot(), chunk = Self.attentionRows
        let chunks = (T + chunk - 1) / chunk
        ComputePool.shared.run { part, parts in
            let s = scores + part * min(T, chunk) * (start + T)
            var piece = part
            while piece < chunks * NH {
                let head = piece % NH, t0 = piece / NH * chunk, t1 = min(T, t0 + chunk)
                let g = head / G, rows = t1 - t0, seen = start + t1
                // s[rows, seen] = q_h · K_g^T / sqrt(HS)
                BF16Gemm.product(transA: false, transB: true, m: rows, n: seen, k: HS, alpha: scale,
                                 qkv + t0 * QKV + head * HS, lda: QKV, cache.k(l, g), ldb: HS, s, ldc: seen, pool: nil)
                for t in t0..<t1 {
                    let row = s + (t - t0) * seen, visible = start + t + 1
                    Kernels.softmax(row, visible)
                    if visible < seen { (row + visible).update(repeating: 0, count: seen - visible) }
                }
                // att[rows, head] = s · V_g
                BF16Gemm.product(transA: false, transB: false, m: rows, n: HS, k: seen,
                                 s, lda: seen, cache.v(l, g), ldb: HS, att + t0 * NH * HS + head * HS, ldc: NH * HS, pool: nil)
                piece += parts
            }
        }
    }

    // MARK: decode

    /// Advances sequences by one token: row b feeds `tokens[b]` to slot `slots[b]` at position
    /// `prefix.length + cache.lengths[slots[b]]`. Writes logits `[B, V]`.
    public func decode(_ tokens: [Int], slots: [Int], prefix: PrefixCache, cache: SlotCache,
                       logits: UnsafeMutablePointer<Float>) throws {
        try decode(tokens, slots: slots, prefixes: [prefix], rowPrefix: [Int](repeating: 0, count: tokens.count),
                   cache: cache, logits: logits)
    }

    /// Advances sequences of several prompts by one token: row b continues prefix
    /// `prefixes[rowPrefix[b]]` in slot `slots[b]`, at position `prefix.length +
    /// cache.lengths[slots[b]]`. Rows of one prefix must be adjacent (their prefix scores are
    /// one product). Writes logits `[B, V]`.
    public func decode(_ tokens: [Int], slots: [Int], prefixes: [PrefixCache], rowPrefix: [Int], cache: SlotCache,
                       logits: UnsafeMutablePointer<Float>) throws {
        let B = tokens.count
        require(slots.count == B && rowPrefix.count == B, "decode: \(B) tokens for \(slots.count) slots and \(rowPrefix.count) prefixes")
        try checkTokens(tokens)
        var maxLen = 0, maxPrefix = 0
        var runs: [(prefix: Int, rows: Range<Int>)] = []
        for (b, s) in slots.enumerated() {
            require(s >= 0 && s < cache.slots, "decode: slot \(s) outside 0..<\(cache.slots)")
            let pi = rowPrefix[b]
            require(pi >= 0 && pi < prefixes.count, "decode: prefix \(pi) outside 0..<\(prefixes.count)")
            let prefix = prefixes[pi]
            guard cache.lengths[s] < cache.capacity, prefix.length + cache.lengths[s] < config.contextLength else {
                throw LlamaError.contextOverflow(needed: prefix.length + cache.lengths[s] + 1,
                                                 capacity: min(prefix.length + cache.capacity, config.contextLength))
            }
            maxLen = max(maxLen, cache.lengths[s] + 1)
            maxPrefix = max(maxPrefix, prefix.length)
            if let last = runs.last, last.prefix == pi {
                runs[runs.count - 1].rows = last.rows.lowerBound..<(b + 1)
            } else {
                require(!runs.contains { $0.prefix == pi }, "decode: the rows of prefix \(pi) are not adjacent")
                runs.append((pi, b..<(b + 1)))
            }
        }
        switch cache.precision {
        case .f32: decode(KVFloat32.self, tokens, slots, prefixes, rowPrefix, runs, cache, logits, maxPrefix + maxLen)
        case .f16: decode(KVFloat16.self, tokens, slots, prefixes, rowPrefix, runs, cache, logits, maxPrefix + maxLen)
        }
    }

    private func decode<E: KVElement>(_: E.Type, _ tokens: [Int], _ slots: [Int], _ prefixes: [PrefixCache], _ rowPrefix: [Int],
                                      _ runs: [(prefix: Int, rows: Range<Int>)], _ cache: SlotCache,
                                      _ logits: UnsafeMutablePointer<Float>, _ ld: Int) {
        let B = tokens.count
        let HS = config.headSize, NH = config.heads, NKV = config.kvHeads
        let G = config.groupSize, QKV = config.qkvWidth
        // ld: score row stride, the longest prefix and then the longest run of own positions.
        work.reserve(rows: B, config: config, scoreColumns: ld, scoreRows: B * G)
        let qkv = work.qkv.pointer, att = work.att.pointer
        let scores = work.scores.pointer, qg = work.groupQ.pointer
        let scale = 1 / Float(HS).squareRoot()
        let elem = E.bytes
        embed(tokens)
        for l in 0..<config.layers {
            projectQKV(l, rows: B)
            for b in 0..<B {
                let row = qkv + b * QKV, s = slots[b], len = cache.lengths[s]
                rope.apply(row, heads: NH + NKV, position: prefixes[rowPrefix[b]].length + len)
                for g in 0..<NKV {
                    E.store(row + (NH + g) * HS, cache.k(l, s, g) + len * HS * elem, HS)
                    E.store(row + (NH + NKV + g) * HS, cache.v(l, s, g) + len * HS * elem, HS)
                }
            }
            for g in 0..<NKV {
                // Gather the G query heads of every row that read kv head g, pre-scaled by
                // 1/sqrt(HS): qg[B*G, HS].
                for b in 0..<B {
                    let src = qkv + b * QKV + g * G * HS, dst = qg + b * G * HS
                    for i in 0..<G * HS { dst[i] = src[i] * scale }
                }
                // Each prefix's rows: scores[rows*G, 0..<P] = qg · Kprefix^T
                for run in runs where prefixes[run.prefix].length > 0 {
                    let first = run.rows.lowerBound
                    SkinnyGemm.run(qg + first * G * HS, prefixes[run.prefix].k(l, g), scores + first * G * ld,
                                   m: run.rows.count * G, n: prefixes[run.prefix].length, k: HS, ldy: ld)
                }
                ComputePool.shared.run { part, parts in
                    for b in ComputePool.range(part, of: parts, count: B) {
                        // The group's G heads are adjacent in the row of `att`.
                        let s = slots[b], prefix = prefixes[rowPrefix[b]]
                        Self.attendOwnPositions(E.self, q: qg + b * G * HS, scores: scores + b * G * ld, ld: ld,
                                                groupSize: G, headSize: HS, prefixLength: prefix.length, prefixV: prefix.v(l, g),
                                                keys: cache.k(l, s, g), values: cache.v(l, s, g), count: cache.lengths[s] + 1,
                                                out: att + b * NH * HS + g * G * HS)
                    }
                }
            }
            finishLayer(l, rows: B)
        }
        for s in slots { cache.lengths[s] += 1 }
        outputLogits(fromRow: 0, rows: B, into: logits)
    }

    /// Attention of the G query heads of one sequence that share one kv head. `scores` rows
    /// already hold the prefix scores in columns 0..<P; this adds the sequence's own `count`
    /// positions, normalises, and writes out[G, HS] = probs · [Vprefix; Vown], keeping each head's
    /// query and output in registers (the HS = 64 path).
    @inline(__always)
    static func attendOwnPositions<E: KVElement>(
        _: E.Type, q: UnsafePointer<Float>, scores: UnsafeMutablePointer<Float>, ld: Int, groupSize G: Int,
        headSize HS: Int, prefixLength P: Int, prefixV: UnsafePointer<Float>,
        keys: UnsafeRawPointer, values: UnsafeRawPointer, count n: Int, out: UnsafeMutablePointer<Float>
    ) {
        let elem = E.bytes
        @inline(__always) func ld16(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
            UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
        }
        @inline(__always) func st16(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>) {
            UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Float>.self)
        }
        guard HS == 64 else {  // general head sizes: one head at a time
            for j in 0..<G {
                let row = scores + j * ld, qj = q + j * HS, o = out + j * HS
                for p in 0..<n { row[P + p] = E.dot(qj, keys + p * HS * elem, HS) }
                Kernels.softmax(row, P + n)
                o.update(repeating: 0, count: HS)
                for p in 0..<P { Kernels.axpy(row[p], prefixV + p * HS, o, HS) }
                for p in 0..<n { E.axpy(row[P + p], values + p * HS * elem, o, HS) }
            }
            return
        }
        // Scores, up to four heads at a time: each key is loaded (and converted) once for the
        // group's heads, and their four dot products are reduced together. (Four positions of
        // one head at a time, the earlier form, let LLVM vectorize across the positions' f16
        // keys into lane shuffles: 16% of batch-64 decode.)
        var first = 0
        while first < G {
            let h = min(4, G - first)
            // Missing heads repeat the last one; their sums are not stored.
            let qa = q + first * HS, qb = q + (first + min(1, h - 1)) * HS
            let qc = q + (first + min(2, h - 1)) * HS, qd = q + (first + min(3, h - 1)) * HS
            let a0 = ld16(qa), a1 = ld16(qa + 16), a2 = ld16(qa + 32), a3 = ld16(qa + 48)
            let b0 = ld16(qb), b1 = ld16(qb + 16), b2 = ld16(qb + 32), b3 = ld16(qb + 48)
            let c0 = ld16(qc), c1 = ld16(qc + 16), c2 = ld16(qc + 32), c3 = ld16(qc + 48)
            let d0 = ld16(qd), d1 = ld16(qd + 16), d2 = ld16(qd + 32), d3 = ld16(qd + 48)
            let row = scores + first * ld + P
            for p in 0..<n {
                let kp = keys + p * HS * elem
                let k0 = E.load16(kp, 0), k1 = E.load16(kp, 16), k2 = E.load16(kp, 32), k3 = E.load16(kp, 48)
                var a = a0 * k0, b = b0 * k0, c = c0 * k0, d = d0 * k0
                a.addProduct(a1, k1); b.addProduct(b1, k1); c.addProduct(c1, k1); d.addProduct(d1, k1)
                a.addProduct(a2, k2); b.addProduct(b2, k2); c.addProduct(c2, k2); d.addProduct(d2, k2)
                a.addProduct(a3, k3); b.addProduct(b3, k3); c.addProduct(c3, k3); d.addProduct(d3, k3)
                let s4 = SkinnyGemm.sum4(a, b, c, d)
                for j in 0..<h { row[j * ld + p] = s4[j] }
            }
            first += 4
        }
        // Outputs, one head at a time with its 64 values in four registers.
        for j in 0..<G {
            let row = scores + j * ld
            Kernels.softmax(row, P + n)
            var o0 = SIMD16<Float>(), o1 = SIMD16<Float>(), o2 = SIMD16<Float>(), o3 = SIMD16<Float>()
            for p in 0..<P {
                let w = SIMD16<Float>(repeating: row[p]), vp = prefixV + p * HS
                o0.addProduct(w, ld16(vp)); o1.addProduct(w, ld16(vp + 16))
                o2.addProduct(w, ld16(vp + 32)); o3.addProduct(w, ld16(vp + 48))
            }
            for p in 0..<n {
                let w = SIMD16<Float>(repeating: row[P + p]), vp = values + p * HS * elem
                o0.addProduct(w, E.load16(vp, 0)); o1.addProduct(w, E.load16(vp, 16))
                o2.addProduct(w, E.load16(vp, 32)); o3.addProduct(w, E.load16(vp, 48))
            }
            let o = out + j * HS
            st16(o0, o); st16(o1, o + 16); st16(o2, o + 32); st16(o3, o + 48)
        }
    }

    // MARK: steps shared by prefill and decode (R rows of the workspace)

    /// x[R, C] = embedding rows of `tokens`.
    private func embed(_ tokens: [Int]) {
        let C = config.channels, x = work.x.pointer
        for (t, id) in tokens.enumerated() {
            (x + t * C).update(from: weights.embedding + id * C, count: C)
        }
    }

    /// xn = RMSNorm(x); qkv[R, QKV] = xn · Wqkv^T.
    private func projectQKV(_ l: Int, rows R: Int) {
        let C = config.channels
        Kernels.rmsNorm(work.xn.pointer, work.x.pointer, weights.attnNorm(l), rows: R, channels: C, eps: config.rmsEpsilon)
        linear(work.xn.pointer, weights.wqkv(l), packed?.layers[l].qkv, work.qkv.pointer, m: R, n: config.qkvWidth, k: C)
    }

    /// x += att · Wo^T, then the feed-forward block: x += Wdown · swiglu(Wgate|up · RMSNorm(x)).
    private func finishLayer(_ l: Int, rows R: Int) {
        let C = config.channels, F = config.feedForward
        let x = work.x.pointer, xn = work.xn.pointer, gu = work.gateUp.pointer, h = work.hidden.pointer
        let p = packed?.layers[l]
        linear(work.att.pointer, weights.wo(l), p?.o, x, m: R, n: C, k: config.heads * config.headSize, accumulate: true)
        Kernels.rmsNorm(xn, x, weights.ffnNorm(l), rows: R, channels: C, eps: config.rmsEpsilon)
        linear(xn, weights.wGateUp(l), p?.gateUp, gu, m: R, n: 2 * F, k: C)  // [R, 2F]
        Kernels.swiglu(h, gu, rows: R, hidden: F)
        linear(h, weights.wDown(l), p?.down, x, m: R, n: C, k: F, accumulate: true)
    }

    /// logits[R, V] = RMSNorm(x[first..<first+R]) · Wout^T.
    private func outputLogits(fromRow first: Int, rows R: Int, into logits: UnsafeMutablePointer<Float>) {
        let C = config.channels
        Kernels.rmsNorm(work.xn.pointer, work.x.pointer + first * C, weights.finalNorm, rows: R, channels: C, eps: config.rmsEpsilon)
        linear(work.xn.pointer, weights.output, packed?.output, logits, m: R, n: config.vocabularySize, k: C)
    }

    /// y[R, N] (+)= x[R, K] · W^T: from the packed bf16 copy when there is one, else fp32.
    @inline(__always)
    private func linear(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ packed: BF16PackedMatrix?,
                        _ y: UnsafeMutablePointer<Float>, m: Int, n: Int, k: Int, accumulate: Bool = false) {
        if let packed {
            packed.product(x, m: m, y, accumulate: accumulate)
        } else {
            SkinnyGemm.run(x, w, y, m: m, n: n, k: k, accumulate: accumulate)
        }
    }
}

extension LlamaModel {
    /// Takes weights changed in place (a new version read over the old one): the tensors named
    /// in `tensors` (`namedTensors` names) are packed again under bf16; under fp32 nothing is
    /// derived from the weights, so there is nothing to do. The model's other buffers stay.
    public func weightsChanged(_ tensors: Set<String>) {
        guard let packed else { return }
        let changed = weights.namedTensors.filter { tensors.contains($0.name) }
        for l in Set(changed.compactMap(\.layer)).sorted() { packed.repack(layer: l, weights) }
        if changed.contains(where: { $0.layer == nil && $0.offset == weights.outputOffset }) { packed.output.repack(weights.output) }
    }
}

/// The linear layers' weights rounded to bfloat16 and packed (`LlamaModel` under `.bf16`).
final class PackedWeights {
    struct Layer { let qkv, o, gateUp, down: BF16PackedMatrix }
    let layers: [Layer]
    let output: BF16PackedMatrix

    /// Packs layer `l`'s four matrices again from `w` (the same shapes as at init).
    func repack(layer l: Int, _ w: LlamaWeights) {
        let p = layers[l]
        p.qkv.repack(w.wqkv(l))
        p.o.repack(w.wo(l))
        p.gateUp.repack(w.wGateUp(l))
        p.down.repack(w.wDown(l))
    }

    init(_ w: LlamaWeights) {
        let c = w.config, C = c.channels, F = c.feedForward
        layers = (0..<c.layers).map { l in
            Layer(qkv: BF16PackedMatrix(w.wqkv(l), rows: c.qkvWidth, columns: C),
                  o: BF16PackedMatrix(w.wo(l), rows: C, columns: c.heads * c.headSize),
                  gateUp: BF16PackedMatrix(w.wGateUp(l), rows: 2 * F, columns: C),
                  down: BF16PackedMatrix(w.wDown(l), rows: C, columns: F))
        }
        output = BF16PackedMatrix(w.output, rows: c.vocabularySize, columns: C)
    }
}

/// Activation buffers reused across calls; grown on demand, never shrunk.
final class Workspace {
    var rows = 0, scoreSize = 0, groupRows = 0
    var x = FloatBuffer(count: 0), xn = FloatBuffer(count: 0), qkv = FloatBuffer(count: 0)
    var att = FloatBuffer(count: 0), gateUp = FloatBuffer(count: 0), hidden = FloatBuffer(count: 0)
    var scores = FloatBuffer(count: 0), groupQ = FloatBuffer(count: 0)

    func reserve(rows r: Int, config c: LlamaConfig, scoreColumns: Int, scoreRows: Int) {
        if r > rows {
            rows = r
            x = FloatBuffer(count: r * c.channels)
            xn = FloatBuffer(count: r * c.channels)
            qkv = FloatBuffer(count: r * c.qkvWidth)
            att = FloatBuffer(count: r * c.heads * c.headSize)
            gateUp = FloatBuffer(count: r * 2 * c.feedForward)
            hidden = FloatBuffer(count: r * c.feedForward)
        }
        if scoreRows * scoreColumns > scoreSize {
            scoreSize = scoreRows * scoreColumns
            scores = FloatBuffer(count: scoreSize)
        }
        if scoreRows > groupRows {
            groupRows = scoreRows
            groupQ = FloatBuffer(count: scoreRows * c.headSize)
        }
    }
}
