import Foundation
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

/// The directory holding the built executables (coderl, executor, the roles).
var productsDirectory: URL {
    var products = Bundle.main.bundleURL
    for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
        products = bundle.bundleURL.deletingLastPathComponent()
    }
    return products
}
