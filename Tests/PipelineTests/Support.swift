import Foundation
import TestSupport
import Llama
import ModelIO
import Tensor
import Training

/// A 2-block model with SmolLM2's vocabulary and tokenizer and random weights: the pipeline
/// runs on it in seconds (its programs are nonsense, which is all these tests need).
func writeTinyModel(to path: String) throws -> String {
    let config = try LlamaConfig(vocabularySize: 49152, channels: 32, layers: 2, heads: 4, kvHeads: 2, feedForward: 64, contextLength: 1024)
    let w = LlamaWeights(config: config)
    var rng = Xoshiro256(seed: 7)
    for t in w.namedTensors {
        for i in 0..<t.count { w.buffer[t.offset + i] = t.decays ? (rng.nextUnit() * 2 - 1) * 0.1 : 1 }
    }
    try ModelExport.gguf(w, tokenizer: LoadedModel.tokenizerMetadata(of: try GGUFFile(path: DefaultModel.path)), to: path)
    return path
}

/// Runs a built executable (`coderl` unless `tool` says otherwise) to its end and returns its
/// exit status and what it wrote (standard output and error together). `threads` sets both
/// our thread count and OpenBLAS's.
func runProduct(_ arguments: [String], threads: Int? = nil, tool: String = "coderl") throws -> (status: Int32, output: String) {
    try runCLI(tool, arguments, environment: threads.map { ["CODERL_THREADS": "\($0)", "OPENBLAS_NUM_THREADS": "\($0)"] } ?? [:])
}

/// The weight tensors (by name) whose values differ between two weight files of one model.
func differingTensors(_ a: String, _ b: String) throws -> [String] {
    let first = try Checkpoint.Reader(path: a), second = try Checkpoint.Reader(path: b)
    return try LlamaWeights(config: first.config).namedTensors.compactMap { t in
        var x = [Float](repeating: 0, count: t.count), y = x
        try first.read(t.name, shape: t.shape, into: &x)
        try second.read(t.name, shape: t.shape, into: &y)
        return x == y ? nil : t.name
    }
}
