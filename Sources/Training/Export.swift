import Foundation
import Llama
import ModelIO
import Tensor

/// A model loaded from any file we read, and the GGUF file holding its tokenizer when there is one.
public struct LoadedModel {
    public let weights: LlamaWeights
    /// The source GGUF itself, or `tokenizer.gguf` beside a checkpoint / inside a Hugging Face
    /// directory; nil when there is none.
    public let tokenizerPath: String?
    public let source: String

    /// Name of the tokenizer file `coderl sft` writes beside its checkpoints.
    public static let tokenizerFileName = "tokenizer.gguf"

    /// `path` is a training checkpoint (`.safetensors` with coderl metadata), a GGUF file, or a
    /// Hugging Face directory (`config.json` + `model.safetensors`).
    public static func load(_ path: String) throws -> LoadedModel {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw CheckpointError.missing(path: path)
        }
        func existing(_ p: String) -> String? { FileManager.default.fileExists(atPath: p) ? p : nil }
        if isDirectory.boolValue {
            let config = try LlamaConfig(huggingFaceConfig: path + "/config.json")
            let weights = try LlamaWeights(safetensors: try SafetensorsFile(path: path + "/model.safetensors"), config: config)
            return LoadedModel(weights: weights, tokenizerPath: existing(path + "/" + tokenizerFileName), source: path)
        }
        if let magic = FileHandle(forReadingAtPath: path)?.readData(ofLength: 4), magic == Data("GGUF".utf8) {
            let file = try GGUFFile(path: path)
            let weights = try LlamaWeights(gguf: file, config: try LlamaConfig(gguf: file))
            return LoadedModel(weights: weights, tokenizerPath: path, source: path)
        }
        let reader = try Checkpoint.Reader(path: path)
        guard reader.state.kind == .actor else {
            throw CheckpointError.incompatible(path: path, reason: "it holds a critic; only actor checkpoints export as language models")
        }
        let weights = LlamaWeights(config: reader.config)
        try reader.read(into: weights)
        let beside = (path as NSString).deletingLastPathComponent + "/" + tokenizerFileName
        return LoadedModel(weights: weights, tokenizerPath: existing(beside), source: path)
    }

    /// Where the tokenizer of the model at `path` is, without loading the model (see `load`).
    public static func tokenizerPath(of path: String) -> String? {
        func existing(_ p: String) -> String? { FileManager.default.fileExists(atPath: p) ? p : nil }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return nil }
        if isDirectory.boolValue { return existing(path + "/" + tokenizerFileName) }
        if let magic = FileHandle(forReadingAtPath: path)?.readData(ofLength: 4), magic == Data("GGUF".utf8) { return path }
        return existing((path as NSString).deletingLastPathComponent + "/" + tokenizerFileName)
    }

    public static func tokenizerMetadata(of file: GGUFFile) -> [(String, GGUFValue)] {
        file.metadataKeys.filter { $0.hasPrefix("tokenizer.") || $0 == "general.name" }.map { ($0, file.metadata[$0]!) }
    }

    /// Writes the tokenizer metadata alone as a GGUF without tensors (kept beside checkpoints).
    public static func writeTokenizer(_ metadata: [(String, GGUFValue)], to path: String) throws {
        var w = GGUFWriter()
        w.add("general.architecture", .string("llama"))
        for (k, v) in metadata { w.add(k, v) }
        try w.write(to: path)
    }
}

public enum ModelExport {
    public enum Format: String, CaseIterable, Sendable { case gguf, safetensors }

    /// GGUF for llama.cpp: Llama metadata, the tokenizer keys carried over, q/k rows permuted
    /// back to llama.cpp's adjacent-pair RoPE order, matrices in `type` (F32 or F16) and norms
    /// in F32 (as llama.cpp's converter does).
    /// `progress(done, total)` is called after each tensor is converted and once the file is written.
    public static func gguf(_ weights: LlamaWeights, tokenizer: [(String, GGUFValue)], to path: String, type: GGMLType = .f32,
                            progress: ((Int, Int) -> Void)? = nil) throws {
        guard type == .f32 || type == .f16 else {
            throw LlamaError.badParameter(name: "GGUF export type", value: "\(type)", expected: "F32 or F16")
        }
        let c = weights.config
        var w = GGUFWriter()
        w.add("general.architecture", .string("llama"))
        w.add("general.file_type", .uint32(type == .f32 ? 0 : 1))
        w.add("llama.vocab_size", .uint32(UInt32(c.vocabularySize)))
        w.add("llama.context_length", .uint32(UInt32(c.contextLength)))
        w.add("llama.embedding_length", .uint32(UInt32(c.channels)))
        w.add("llama.block_count", .uint32(UInt32(c.layers)))
        w.add("llama.feed_forward_length", .uint32(UInt32(c.feedForward)))
        w.add("llama.attention.head_count", .uint32(UInt32(c.heads)))
        w.add("llama.attention.head_count_kv", .uint32(UInt32(c.kvHeads)))
        w.add("llama.rope.freq_base", .float32(c.ropeTheta))
        w.add("llama.rope.dimension_count", .uint32(UInt32(c.headSize)))
        w.add("llama.attention.layer_norm_rms_epsilon", .float32(c.rmsEpsilon))
        for (k, v) in tokenizer where k != "general.architecture" { w.add(k, v) }
        for t in weights.namedTensors {
            let name = ggufName(t.name)
            let src = weights.buffer.pointer + t.offset
            var values = Array(UnsafeBufferPointer(start: src, count: t.count))
            if t.name.hasSuffix("q_proj.weight") || t.name.hasSuffix("k_proj.weight") {
                values.withUnsafeMutableBufferPointer {
                    LlamaWeights.permuteRoPERows(src, into: $0.baseAddress!, heads: t.shape[0] / c.headSize, headSize: c.headSize,
                                                 columns: t.shape[1], toGGUF: true)
                }
            }
            // GGUF lists dimensions fastest first: [in, out] for an [out, in] matrix.
            w.addTensor(name, shape: t.shape.reversed(), values: values, type: t.shape.count == 1 ? .f32 : type)
            progress?(w.tensorCount, weights.namedTensors.count + 1)
        }
        try w.write(to: path)
        progress?(weights.namedTensors.count + 1, weights.namedTensors.count + 1)
    }

    /// Hugging Face layout: `config.json` and `model.safetensors` in `directory`.
    public static func huggingFace(_ weights: LlamaWeights, to directory: String, dtype: SafetensorsWriter.DType = .f32) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var config = weights.config.huggingFaceConfig
        config["torch_dtype"] = dtype == .f32 ? "float32" : dtype == .f16 ? "float16" : "bfloat16"
        config["dtype"] = config["torch_dtype"]
        let json = try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys])
        try AtomicFile.write(json, to: directory + "/config.json")
        try weights.writeSafetensors(to: directory + "/model.safetensors", dtype: dtype)
    }

    /// Hugging Face tensor name to llama.cpp's.
    static func ggufName(_ hf: String) -> String {
        switch hf {
        case "model.embed_tokens.weight": return "token_embd.weight"
        case "model.norm.weight": return "output_norm.weight"
        case "lm_head.weight": return "output.weight"
        default: break
        }
        let parts = hf.split(separator: ".")  // model.layers.N.<module>.<proj>.weight
        let layer = parts[2]
        let suffix = parts[3...].joined(separator: ".")
        let map = [
            "input_layernorm.weight": "attn_norm.weight", "post_attention_layernorm.weight": "ffn_norm.weight",
            "self_attn.q_proj.weight": "attn_q.weight", "self_attn.k_proj.weight": "attn_k.weight",
            "self_attn.v_proj.weight": "attn_v.weight", "self_attn.o_proj.weight": "attn_output.weight",
            "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight", "mlp.down_proj.weight": "ffn_down.weight",
        ]
        return "blk.\(layer).\(map[suffix]!)"
    }
}
