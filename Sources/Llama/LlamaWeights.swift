import ModelIO
import Tensor

/// All parameters in one allocation with named views (llm.c style): zeroing gradients or an
/// optimizer step is one loop over `buffer`. Per layer, in order:
///
///     attnNorm[C]  wqkv[(NH+2NKV)*HS, C]  wo[C, NH*HS]  ffnNorm[C]  wGateUp[2F, C]  wDown[C, F]
///
/// then `embedding[V, C]`, `finalNorm[C]`, and `output[V, C]` when not tied. Linear weights are
/// stored as rows of output features (y = W x), q and k rows in Hugging Face order (rotate-half
/// RoPE); GGUF's adjacent-pair permutation is undone at load.
public final class LlamaWeights: @unchecked Sendable {  // written only while loading or training, by one thread
    public let config: LlamaConfig
    public let buffer: FloatBuffer
    public let layerStride: Int
    let offsets: LayerOffsets
    public let embeddingOffset: Int
    public let finalNormOffset: Int
    public let outputOffset: Int

    struct LayerOffsets {
        var attnNorm = 0, wqkv = 0, wo = 0, ffnNorm = 0, wGateUp = 0, wDown = 0
    }

    public init(config: LlamaConfig) {
        self.config = config
        let c = config.channels, f = config.feedForward
        var o = LayerOffsets()
        var at = 0
        o.attnNorm = at; at += c
        o.wqkv = at; at += config.qkvWidth * c
        o.wo = at; at += c * config.heads * config.headSize
        o.ffnNorm = at; at += c
        o.wGateUp = at; at += 2 * f * c
        o.wDown = at; at += c * f
        offsets = o
        layerStride = at
        embeddingOffset = at * config.layers
        finalNormOffset = embeddingOffset + config.vocabularySize * c
        outputOffset = config.tiedEmbeddings ? embeddingOffset : finalNormOffset + c
        let total = finalNormOffset + c + (config.tiedEmbeddings ? 0 : config.vocabularySize * c)
        buffer = FloatBuffer(count: total)
    }

    public var parameterCount: Int { buffer.count }

    @inline(__always) func layer(_ l: Int) -> UnsafeMutablePointer<Float> { buffer.pointer + l * layerStride }
    @inline(__always) func attnNorm(_ l: Int) -> UnsafeMutablePointer<Float> { layer(l) + offsets.attnNorm }
    @inline(__always) func wqkv(_ l: Int) -> UnsafeMutablePointer<Float> { layer(l) + offsets.wqkv }
    @inline(__always) func wo(_ l: Int) -> UnsafeMutablePointer<Float> { layer(l) + offsets.wo }
    @inline(__always) func ffnNorm(_ l: Int) -> UnsafeMutablePointer<Float> { layer(l) + offsets.ffnNorm }
    @inline(__always) func wGateUp(_ l: Int) -> UnsafeMutablePointer<Float> { layer(l) + offsets.wGateUp }
    @inline(__always) func wDown(_ l: Int) -> UnsafeMutablePointer<Float> { layer(l) + offsets.wDown }
    @inline(__always) var embedding: UnsafeMutablePointer<Float> { buffer.pointer + embeddingOffset }
    @inline(__always) var finalNorm: UnsafeMutablePointer<Float> { buffer.pointer + finalNormOffset }
    @inline(__always) var output: UnsafeMutablePointer<Float> { buffer.pointer + outputOffset }
}

extension LlamaWeights {
    /// Loads every tensor of a Llama GGUF, dequantized to fp32, checking each shape.
    public convenience init(gguf: GGUFFile, config: LlamaConfig) throws {
        self.init(config: config)
        let c = config.channels, f = config.feedForward, hs = config.headSize
        let qRows = config.heads * hs, kvRows = config.kvHeads * hs
        func load(_ name: String, _ shape: [Int], into dst: UnsafeMutablePointer<Float>) throws {
            guard let info = gguf.tensorInfo(name) else { throw GGUFError.missingTensor(path: gguf.path, tensor: name) }
            guard info.shape == shape else {
                throw GGUFError.wrongShape(path: gguf.path, tensor: name, expected: shape, found: info.shape)
            }
            try gguf.dequantize(name, into: dst)
        }
        let scratch = FloatBuffer(count: max(qRows, kvRows) * c)
        for l in 0..<config.layers {
            let p = "blk.\(l)."
            try load(p + "attn_norm.weight", [c], into: attnNorm(l))
            try load(p + "attn_q.weight", [c, qRows], into: scratch.pointer)
            Self.permuteRoPERows(scratch.pointer, into: wqkv(l), heads: config.heads, headSize: hs, columns: c)
            try load(p + "attn_k.weight", [c, kvRows], into: scratch.pointer)
            Self.permuteRoPERows(scratch.pointer, into: wqkv(l) + qRows * c, heads: config.kvHeads, headSize: hs, columns: c)
            try load(p + "attn_v.weight", [c, kvRows], into: wqkv(l) + (qRows + kvRows) * c)
            try load(p + "attn_output.weight", [qRows, c], into: wo(l))
            try load(p + "ffn_norm.weight", [c], into: ffnNorm(l))
            try load(p + "ffn_gate.weight", [c, f], into: wGateUp(l))
            try load(p + "ffn_up.weight", [c, f], into: wGateUp(l) + f * c)
            try load(p + "ffn_down.weight", [f, c], into: wDown(l))
        }
        try load("token_embd.weight", [c, config.vocabularySize], into: embedding)
        try load("output_norm.weight", [c], into: finalNorm)
        if !config.tiedEmbeddings {
            try load("output.weight", [c, config.vocabularySize], into: output)
        }
    }

    /// GGUF (llama.cpp) stores q/k rows of each head as interleaved pairs (row 2i+j holds
    /// Hugging Face row j*HS/2+i) so that RoPE rotates adjacent elements. This restores
    /// Hugging Face order, where RoPE rotates the two halves of a head, or (`toGGUF`) makes it.
    public static func permuteRoPERows(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>,
                                       heads: Int, headSize hs: Int, columns c: Int, toGGUF: Bool = false) {
        let half = hs / 2
        for h in 0..<heads {
            for i in 0..<half {
                for j in 0..<2 {
                    let gguf = h * hs + 2 * i + j, hf = h * hs + j * half + i
                    (dst + (toGGUF ? gguf : hf) * c).update(from: src + (toGGUF ? hf : gguf) * c, count: c)
                }
            }
        }
    }
}
