import ModelIO

/// Shape of a Llama-family decoder. Letters used in shape comments throughout:
/// V vocab, C channels, L layers, NH query heads, NKV key/value heads, HS head size,
/// G = NH/NKV query heads per KV head, F feed-forward hidden size, T tokens, B sequences.
public struct LlamaConfig: Sendable, Equatable, Codable {
    public var vocabularySize: Int
    public var channels: Int
    public var layers: Int
    public var heads: Int
    public var kvHeads: Int
    public var feedForward: Int
    public var ropeTheta: Float
    public var rmsEpsilon: Float
    public var contextLength: Int
    public var tiedEmbeddings: Bool

    public var headSize: Int { channels / heads }
    public var groupSize: Int { heads / kvHeads }
    /// Width of the fused q|k|v projection: (NH + 2 NKV) * HS.
    public var qkvWidth: Int { (heads + 2 * kvHeads) * headSize }
    public var kvWidth: Int { kvHeads * headSize }

    public init(vocabularySize: Int, channels: Int, layers: Int, heads: Int, kvHeads: Int,
                feedForward: Int, ropeTheta: Float = 10_000, rmsEpsilon: Float = 1e-5,
                contextLength: Int = 2048, tiedEmbeddings: Bool = true) throws {
        self.vocabularySize = vocabularySize
        self.channels = channels
        self.layers = layers
        self.heads = heads
        self.kvHeads = kvHeads
        self.feedForward = feedForward
        self.ropeTheta = ropeTheta
        self.rmsEpsilon = rmsEpsilon
        self.contextLength = contextLength
        self.tiedEmbeddings = tiedEmbeddings
        try validate()
    }

    public func validate() throws {
        func check(_ ok: Bool, _ key: String, _ value: Any, _ expected: String) throws {
            if !ok { throw LlamaError.badConfig(key: key, value: "\(value)", expected: expected) }
        }
        try check(vocabularySize > 0, "vocab_size", vocabularySize, "a positive integer")
        try check(channels > 0, "hidden_size", channels, "a positive integer")
        try check(layers > 0, "num_hidden_layers", layers, "a positive integer")
        try check(heads > 0 && channels % heads == 0, "num_attention_heads", heads,
                  "a positive divisor of hidden_size \(channels)")
        try check(kvHeads > 0 && heads % kvHeads == 0, "num_key_value_heads", kvHeads,
                  "a positive divisor of num_attention_heads \(heads)")
        try check(headSize % 2 == 0, "head_dim", headSize, "an even number (RoPE rotates pairs)")
        try check(feedForward > 0, "intermediate_size", feedForward, "a positive integer")
        try check(ropeTheta > 0 && ropeTheta.isFinite, "rope_theta", ropeTheta, "a positive number")
        try check(rmsEpsilon > 0 && rmsEpsilon < 1, "rms_norm_eps", rmsEpsilon, "a number in (0, 1)")
        try check(contextLength > 0, "max_position_embeddings", contextLength, "a positive integer")
    }

    /// Reads `llama.*` (or the file's `general.architecture`) hyper-parameters from GGUF.
    public init(gguf: GGUFFile) throws {
        let arch = (try? gguf.string("general.architecture")) ?? "llama"
        guard ["llama", "qwen2", "mistral"].contains(arch) else {
            throw LlamaError.unsupportedArchitecture(arch, path: gguf.path)
        }
        let embd = try gguf.tensorInfo("token_embd.weight")
            .orThrow(GGUFError.missingTensor(path: gguf.path, tensor: "token_embd.weight"))
        let channels = try gguf.int("\(arch).embedding_length")
        let heads = try gguf.int("\(arch).attention.head_count")
        let vocab = (try? gguf.int("\(arch).vocab_size")) ?? embd.shape[1]
        try self.init(
            vocabularySize: vocab, channels: channels,
            layers: try gguf.int("\(arch).block_count"), heads: heads,
            kvHeads: (try? gguf.int("\(arch).attention.head_count_kv")) ?? heads,
            feedForward: try gguf.int("\(arch).feed_forward_length"),
            ropeTheta: Float((try? gguf.float("\(arch).rope.freq_base")) ?? 10_000),
            rmsEpsilon: Float(try gguf.float("\(arch).attention.layer_norm_rms_epsilon")),
            contextLength: (try? gguf.int("\(arch).context_length")) ?? 2048,
            tiedEmbeddings: gguf.tensorInfo("output.weight") == nil)
        if let rope = try? gguf.int("\(arch).rope.dimension_count"), rope != headSize {
            throw LlamaError.badConfig(key: "\(arch).rope.dimension_count", value: "\(rope)",
                                       expected: "the head size \(headSize) (partial RoPE is not supported)")
        }
    }
}

public enum LlamaError: Error, CustomStringConvertible {
    case badConfig(key: String, value: String, expected: String)
    case badParameter(name: String, value: String, expected: String)
    case unsupportedArchitecture(String, path: String)
    case contextOverflow(needed: Int, capacity: Int)
    case badToken(Int, vocabularySize: Int)
    case emptyPrompt

    public var description: String {
        switch self {
        case let .badConfig(key, value, expected):
            return "model config '\(key)' is \(value), expected \(expected)"
        case let .badParameter(name, value, expected):
            return "\(name) is \(value), expected \(expected)"
        case let .unsupportedArchitecture(arch, path):
            return "\(path): architecture '\(arch)' is not supported (llama, qwen2 and mistral are)"
        case let .contextOverflow(needed, capacity):
            return "sequence needs \(needed) positions but the cache holds \(capacity); lower max new tokens or shorten the prompt"
        case let .badToken(id, v):
            return "token id \(id) is outside the vocabulary of \(v)"
        case .emptyPrompt:
            return "the prompt is empty: at least one token is needed to start generating"
        }
    }
}

extension Optional {
    func orThrow(_ error: @autoclosure () -> Error) throws -> Wrapped {
        guard let v = self else { throw error() }
        return v
    }
}
