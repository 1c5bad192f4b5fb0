import Llama
import ModelIO
import Optim
import Tensor
import Training
import XCTest

/// The per-term gradient norms a step reports are each term's own gradient norm: the norm a
/// step on that term alone measures, while the update is the one of both terms together.
final class TermNormTests: XCTestCase {
    func session() throws -> ActorSession {
        let config = try LlamaConfig(vocabularySize: 48, channels: 32, layers: 3, heads: 4, kvHeads: 2, feedForward: 40, contextLength: 32)
        let state = TrainingState(kind: .actor, trainedLayers: 2, adamw: AdamWSettings(),
                                  schedule: LearningRateSchedule(peak: 1e-2, totalSteps: 20), rng: Xoshiro256(seed: 9))
        return try ActorSession(weights: randomWeights(config, seed: 3), state: state)
    }

    func testEachTermsNormIsTheNormOfThatTermAlone() throws {
        var r = Xoshiro256(seed: 5)
        let ce = try TrainingBatch.completions([randomTokens(10, vocabulary: 48, rng: &r), randomTokens(8, vocabulary: 48, rng: &r)],
                                               promptLengths: [3, 2], pad: 0, vocabularySize: 48)
        let tokens = [randomTokens(9, vocabulary: 48, rng: &r), randomTokens(7, vocabulary: 48, rng: &r)]
        let weights: [[Float]] = [[0.5, -0.25, 1, 0.75, -1, 0.5], [-0.5, 0.25, 1, -1, 0.5]]
        let pg = try TrainingBatch.completions(tokens, promptLengths: [3, 2], weights: weights, pad: 0, vocabularySize: 48)
        let parts: [(TrainingBatch, LossMix)] = [(ce, LossMix(crossEntropy: 0.3, weighted: 0)), (pg, LossMix(crossEntropy: 0, weighted: 1))]

        let both = try session().step(parts: parts, examples: 4, rng: r, termsAfter: 1)
        let ceOnly = try session().step(parts: [parts[0]], examples: 2, rng: r)
        let pgOnly = try session().step(parts: [parts[1]], examples: 2, rng: r)
        let norms = try XCTUnwrap(both.termNorms)
        let first = try XCTUnwrap(norms.first), rest = try XCTUnwrap(norms.rest)
        XCTAssertEqual(first, ceOnly.gradientNorm, accuracy: 1e-5 * ceOnly.gradientNorm)
        XCTAssertEqual(rest, pgOnly.gradientNorm, accuracy: 1e-4 * pgOnly.gradientNorm)
        XCTAssertGreaterThan(first, 0)
        XCTAssertGreaterThan(rest, 0)
        // Two different directions: the total is neither term, and within the triangle inequality.
        XCTAssertLessThanOrEqual(both.gradientNorm, first + rest + 1e-6)
        XCTAssertGreaterThan(both.gradientNorm, abs(first - rest) - 1e-6)
        XCTAssertNotEqual(both.gradientNorm, first, accuracy: 1e-6)

        // The same update with or without the measurement.
        let a = try session(), b = try session()
        _ = try a.step(parts: parts, examples: 4, rng: r, termsAfter: 1)
        _ = try b.step(parts: parts, examples: 4, rng: r)
        XCTAssertEqual(a.weights.buffer.array, b.weights.buffer.array)
        // A second measured step reuses the kept buffer and measures again.
        let again = try a.step(parts: parts, examples: 4, rng: r, termsAfter: 1)
        XCTAssertNotNil(again.termNorms?.first)
        XCTAssertNotNil(again.termNorms?.rest)
        _ = try b.step(parts: parts, examples: 4, rng: r)
        XCTAssertEqual(a.weights.buffer.array, b.weights.buffer.array)
        // No split asked for: no term norms. A split at either end: one term, its norm the total.
        XCTAssertNil(try session().step(parts: parts, examples: 4, rng: r).termNorms)
        let allFirst = try session().step(parts: parts, examples: 4, rng: r, termsAfter: 2)
        XCTAssertNotNil(allFirst.termNorms)
        XCTAssertEqual(allFirst.termNorms?.first, allFirst.gradientNorm)
        XCTAssertNil(allFirst.termNorms?.rest)
        let allRest = try session().step(parts: parts, examples: 4, rng: r, termsAfter: 0)
        XCTAssertNotNil(allRest.termNorms)
        XCTAssertNil(allRest.termNorms?.first)
        XCTAssertEqual(allRest.termNorms?.rest, allRest.gradientNorm)
    }
}
