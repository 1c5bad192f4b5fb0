/// One named tensor of `LlamaWeights`: where it lives in the flat buffer and its Hugging Face
/// name and shape ([out, in] for linear weights).
public struct NamedTensor: Sendable {
    public let name: String
    public let shape: [Int]
    /// Offset into `LlamaWeights.buffer` (and into any buffer of the same layout: gradients,
    /// optimizer moments).
    public let offset: Int
    public var count: Int { shape.reduce(1, *) }
    /// Layer index for transformer-block tensors, nil for embedding and final norm/head.
    public let layer: Int?
    /// Weight decay applies to matrices only (nanoGPT/PyTorch convention), not to norms.
    public var decays: Bool { shape.count >= 2 }
}

extension LlamaWeights {
    /// Every tensor, in buffer order, under its Hugging Face `LlamaForCausalLM` name. The one
    /// place that maps checkpoint names to our layout: loading and exporting safetensors, and
    /// comparing gradients with PyTorch, all go through it. The tied head is not listed
    /// separately (it is `model.embed_tokens.weight`).
    public var namedTensors: [NamedTensor] {
        let c = config.channels, f = config.feedForward, hs = config.headSize
        let qRows = config.heads * hs, kvRows = config.kvHeads * hs
        var out: [NamedTensor] = []
        for l in 0..<config.layers {
            let base = l * layerStride, p = "model.layers.\(l)."
            func add(_ name: String, _ shape: [Int], _ offset: Int) {
                out.append(NamedTensor(name: p + name, shape: shape, offset: base + offset, layer: l))
            }
            add("input_layernorm.weight", [c], offsets.attnNorm)
            add("self_attn.q_proj.weight", [qRows, c], offsets.wqkv)
            add("self_attn.k_proj.weight", [kvRows, c], offsets.wqkv + qRows * c)
            add("self_attn.v_proj.weight", [kvRows, c], offsets.wqkv + (qRows + kvRows) * c)
            add("self_attn.o_proj.weight", [c, qRows], offsets.wo)
            add("post_attention_layernorm.weight", [c], offsets.ffnNorm)
            add("mlp.gate_proj.weight", [f, c], offsets.wGateUp)
            add("mlp.up_proj.weight", [f, c], offsets.wGateUp + f * c)
            add("mlp.down_proj.weight", [c, f], offsets.wDown)
        }
        out.append(NamedTensor(name: "model.embed_tokens.weight", shape: [config.vocabularySize, c], offset: embeddingOffset, layer: nil))
        out.append(NamedTensor(name: "model.norm.weight", shape: [c], offset: finalNormOffset, layer: nil))
        if !config.tiedEmbeddings {
            out.append(NamedTensor(name: "lm_head.weight", shape: [config.vocabularySize, c], offset: outputOffset, layer: nil))
        }
        return out
    }
}
