import Foundation
import Llama
import ModelIO
import Tensor
import XCTest

enum Shared {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures")

    /// SmolLM2 loaded once for all tests (about 2 s), or nil when the file is absent.
    static let smol: (LlamaModel, Tokenizer, ChatTemplate?)? = {
        BLAS.setThreads(ProcessInfo.processInfo.activeProcessorCount)
        guard DefaultModel.isPresent else { return nil }
        return try? LlamaModel.load(gguf: DefaultModel.path)
    }()

    static func model() throws -> (LlamaModel, Tokenizer, ChatTemplate?) {
        guard let m = smol else {
            print("SKIPPED: default model absent at \(DefaultModel.path); run `make setup` to fetch it")
            throw XCTSkip("default model absent; run `make setup`")
        }
        return m
    }

    /// A tiny random Llama (V 64, C 32, L 2, NH 4, NKV 2, F 48) for tests that need no file;
    /// `headSize64` makes its heads 64 wide (the vectorised attention path): `kvHeads` groups of
    /// `groupSize` query heads (the default, 1 x 2, is C 128; 2 x 5 takes that path's loop over
    /// heads twice, four heads and then one).
    static func tiny(seed: UInt64 = 1, tied: Bool = true, headSize64: Bool = false,
                     kvHeads: Int = 1, groupSize: Int = 2) throws -> LlamaModel {
        let heads = headSize64 ? kvHeads * groupSize : 4
        let config = try LlamaConfig(vocabularySize: 64, channels: headSize64 ? 64 * heads : 32, layers: 2,
                                     heads: heads, kvHeads: headSize64 ? kvHeads : 2,
                                     feedForward: 48, ropeTheta: 10_000, contextLength: 128, tiedEmbeddings: tied)
        let w = LlamaWeights(config: config)
        var rng = Xoshiro256(seed: seed)
        for i in 0..<w.buffer.count { w.buffer[i] = (rng.nextUnit() - 0.5) * 0.5 }
        return LlamaModel(weights: w)
    }
}
