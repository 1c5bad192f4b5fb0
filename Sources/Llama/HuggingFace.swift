import Foundation
import ModelIO
import Tensor

/// Hugging Face checkpoints: a directory with `config.json` and `model.safetensors`
/// (`LlamaForCausalLM` layout; q/k rows in Hugging Face order, rotate-half RoPE).
/// JSONSerialization gives NSNumber for both numbers and booleans, and on Linux `is Bool` holds
/// for any 0 or 1; booleans are the numbers whose type code is "c".
func isJSONBool(_ value: Any) -> Bool {
    guard let n = value as? NSNumber else { return false }
    return String(cString: n.objCType) == "c"
}

extension LlamaConfig {
    /// Reads a `config.json`. RoPE theta comes from `rope_parameters.rope_theta` (newer files) or
    /// the top-level `rope_theta` (older ones); scaled RoPE, biases and a `head_dim` other than
    /// hidden_size / heads are refused with the key that asks for them.
    public init(huggingFaceConfig path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LlamaError.badConfig(key: path, value: "unreadable", expected: "a readable config.json")
        }
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw LlamaError.badConfig(key: path, value: "not a JSON object", expected: "a Hugging Face config.json")
        }
        func int(_ key: String, default value: Int? = nil) throws -> Int {
            guard let raw = object[key] else {
                if let value { return value }
                throw LlamaError.badConfig(key: key, value: "missing", expected: "an integer (in \(path))")
            }
            guard let n = raw as? NSNumber, n.doubleValue == n.doubleValue.rounded(), !isJSONBool(raw) else {
                throw LlamaError.badConfig(key: key, value: "\(raw)", expected: "an integer (in \(path))")
            }
            return n.intValue
        }
        func number(_ raw: Any?, _ key: String) throws -> Double? {
            guard let raw, !(raw is NSNull) else { return nil }
            guard let n = raw as? NSNumber, !isJSONBool(raw) else {
                throw LlamaError.badConfig(key: key, value: "\(raw)", expected: "a number (in \(path))")
            }
            return n.doubleValue
        }
        let type = object["model_type"] as? String ?? "llama"
        guard ["llama", "mistral"].contains(type) else {
            throw LlamaError.badConfig(key: "model_type", value: type, expected: "llama or mistral (in \(path))")
        }
        for key in ["attention_bias", "mlp_bias"] where (object[key] as? Bool) == true {
            throw LlamaError.badConfig(key: key, value: "true", expected: "false: biases are not supported (in \(path))")
        }
        var theta = try number(object["rope_theta"], "rope_theta")
        if let rope = object["rope_parameters"] as? [String: Any] {
            if let t = try number(rope["rope_theta"], "rope_parameters.rope_theta") { theta = t }
            if let kind = rope["rope_type"] as? String, kind != "default" {
                throw LlamaError.badConfig(key: "rope_parameters.rope_type", value: kind, expected: "default (scaled RoPE is not supported; in \(path))")
            }
        }
        if let scaling = object["rope_scaling"], !(scaling is NSNull) {
            throw LlamaError.badConfig(key: "rope_scaling", value: "\(scaling)", expected: "null (scaled RoPE is not supported; in \(path))")
        }
        let heads = try int("num_attention_heads")
        let channels = try int("hidden_size")
        try self.init(
            vocabularySize: try int("vocab_size"), channels: channels, layers: try int("num_hidden_layers"),
            heads: heads, kvHeads: try int("num_key_value_heads", default: heads),
            feedForward: try int("intermediate_size"),
            ropeTheta: Float(theta ?? 10_000),
            rmsEpsilon: Float(try number(object["rms_norm_eps"], "rms_norm_eps") ?? 1e-6),
            contextLength: try int("max_position_embeddings", default: 2048),
            tiedEmbeddings: (object["tie_word_embeddings"] as? Bool) ?? false)
        if let hd = object["head_dim"], !(hd is NSNull) {
            let v = try int("head_dim")
            if v != headSize {
                throw LlamaError.badConfig(key: "head_dim", value: "\(v)", expected: "hidden_size / num_attention_heads = \(headSize) (in \(path))")
            }
        }
    }

    /// The `config.json` of this shape, with RoPE theta in both the older and newer places.
    public var huggingFaceConfig: [String: Any] {
        [
            "architectures": ["LlamaForCausalLM"], "model_type": "llama",
            "vocab_size": vocabularySize, "hidden_size": channels, "num_hidden_layers": layers,
            "num_attention_heads": heads, "num_key_value_heads": kvHeads, "head_dim": headSize,
            "intermediate_size": feedForward, "hidden_act": "silu", "rms_norm_eps": Double(rmsEpsilon),
            "rope_theta": Double(ropeTheta), "rope_parameters": ["rope_theta": Double(ropeTheta), "rope_type": "default"],
            "max_position_embeddings": contextLength, "tie_word_embeddings": tiedEmbeddings,
            "attention_bias": false, "mlp_bias": false, "torch_dtype": "float32", "dtype": "float32",
        ]
    }
}

extension LlamaWeights {
    /// Loads `model.safetensors` of a Hugging Face Llama checkpoint, checking every shape.
    /// A tied checkpoint may carry `lm_head.weight` as well; it is ignored.
    public convenience init(safetensors file: SafetensorsFile, config: LlamaConfig) throws {
        self.init(config: config)
        for t in namedTensors {
            try file.read(t.name, shape: t.shape, into: buffer.pointer + t.offset)
        }
    }

    /// Writes the weights as Hugging Face `model.safetensors` (F32, F16 or BF16).
    public func writeSafetensors(to path: String, dtype: SafetensorsWriter.DType = .f32) throws {
        var w = SafetensorsWriter()
        for t in namedTensors { w.add(t.name, shape: t.shape, values: buffer.pointer + t.offset, dtype: dtype) }
        try w.write(to: path)
    }
}

extension LlamaModel {
    /// Loads a Hugging Face checkpoint directory (`config.json` + `model.safetensors`).
    public static func load(huggingFace directory: String) throws -> LlamaModel {
        let config = try LlamaConfig(huggingFaceConfig: directory + "/config.json")
        let file = try SafetensorsFile(path: directory + "/model.safetensors")
        return LlamaModel(weights: try LlamaWeights(safetensors: file, config: config))
    }
}
