import Foundation
import Llama
import Tensor
import XCTest

/// The blocks compute each distinct row of a batch once (programs sampled from one prompt share
/// it; a repeated program shares everything): the losses, gradients (trained blocks, norms,
/// head, and the embedding when every block is trained) and logits must be those of computing
/// every row, and the shortcut must actually be taken.
final class SharedPrefixTests: XCTestCase {
    let config = try! LlamaConfig(vocabularySize: 48, channels: 32, layers: 4, heads: 4, kvHeads: 2, feedForward: 40, contextLength: 192)

    /// Five sequences: three programs after one 90-token prompt (past the attention's 64-row
    /// blocks), one repeated whole, and one after a prompt of its own; right-padded.
    func batch(weighted: Bool) throws -> TrainingBatch {
        var rng = Xoshiro256(seed: 11)
        let prompt = randomTokens(90, vocabulary: 48, rng: &rng), other = randomTokens(70, vocabulary: 48, rng: &rng)
        let programs = [7, 19, 12].map { randomTokens($0, vocabulary: 48, rng: &rng) }
        let sequences = [prompt + programs[0], prompt + programs[1], prompt + programs[2], prompt + programs[1], other + programs[0]]
        let prompts = [90, 90, 90, 90, 70]
        let weights: [[Float]]? = weighted
            ? zip(sequences, prompts).map { s, p in (0..<(s.count - p)).map { Float($0 % 3) - 0.7 } } : nil
        return try TrainingBatch.completions(sequences, promptLengths: prompts, weights: weights, pad: 0, vocabularySize: 48)
    }

    func trainer(_ weights: LlamaWeights, trained: Int, shares: Bool) throws -> LlamaTrainer {
        let t = try LlamaTrainer(weights: weights, trainedLayers: trained)
        t.sharesPrefixes = shares
        t.profiling = true
        return t
    }

    func testSharedRowsChangeNothing() throws {
        let weights = randomWeights(config, seed: 5)
        for trained in [1, 3, 4] {
            let shared = try trainer(weights, trained: trained, shares: true)
            let every = try trainer(weights, trained: trained, shares: false)
            let b = try batch(weighted: true)
            let mix = LossMix(crossEntropy: 1, weighted: 0.5)
            shared.zeroGradients()
            every.zeroGradients()
            let l1 = try shared.forwardBackward(b, mix: mix), l2 = try every.forwardBackward(b, mix: mix)
            XCTAssertNotNil(shared.timings["forward shared rows"], "the shared-row path was not taken")
            XCTAssertNil(every.timings["forward shared rows"])
            XCTAssertEqual(l1.crossEntropy, l2.crossEntropy, accuracy: 1e-5 * abs(l2.crossEntropy))
            XCTAssertEqual(l1.weighted, l2.weighted, accuracy: 1e-5 * max(1, abs(l2.weighted)))
            let r = shared.trainedRange
            let error = relativeError(shared.gradients.buffer.pointer + r.lowerBound, every.gradients.buffer.pointer + r.lowerBound, count: r.count)
            XCTAssertLessThan(error, 1e-5, "gradients with \(trained) trained blocks")
            // Nothing kept: every block runs on the distinct rows (padding rows included, as
            // `logits` gives every row).
            let unweighted = try batch(weighted: false)
            shared.timings = [:]
            XCTAssertLessThan(relativeError(try shared.logits(unweighted), try every.logits(unweighted)), 1e-5)
            XCTAssertNotNil(shared.timings["forward shared rows"])
        }
    }

    /// A batch with nothing shared and no padding takes the ordinary path.
    func testABatchWithNothingSharedIsComputedAsBefore() throws {
        var rng = Xoshiro256(seed: 3)
        let b = try TrainingBatch.completions([randomTokens(40, vocabulary: 48, rng: &rng), randomTokens(40, vocabulary: 48, rng: &rng)],
                                             promptLengths: [30, 30], pad: 0, vocabularySize: 48)
        let t = try trainer(randomWeights(config, seed: 2), trained: 2, shares: true)
        _ = try t.forwardBackward(b)
        XCTAssertNil(t.timings["forward shared rows"])
    }
}
