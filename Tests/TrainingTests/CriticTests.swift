import Foundation
import Llama
import Optim
import Tensor
import XCTest

final class CriticTests: XCTestCase {
    func actor() throws -> LlamaWeights {
        let config = try LlamaConfig(vocabularySize: 40, channels: 32, layers: 4, heads: 4, kvHeads: 2, feedForward: 24,
                                     contextLength: 32, tiedEmbeddings: false)
        return randomWeights(config, seed: 31)
    }

    func programs(_ classes: CriticClasses, pad: Int = 0, seed: UInt64 = 8) throws -> CriticBatch {
        var r = Xoshiro256(seed: seed)
        let seqs = [randomTokens(10, vocabulary: 40, rng: &r), randomTokens(7, vocabulary: 40, rng: &r), randomTokens(9, vocabulary: 40, rng: &r)]
        return try CriticBatch.programs(seqs, promptLengths: [4, 3, 5], labels: [0, 1, classes.count - 1], classes: classes,
                                        pad: pad, vocabularySize: 40)
    }

    func testBuiltFromTheFirstLayersOfTheActor() throws {
        let a = try actor()
        let critic = try Critic.fromActor(a, layers: 2, classes: .outcomes, seed: 1)
        XCTAssertEqual(critic.config.layers, 2)
        XCTAssertEqual(Critic.defaultLayers(actorLayers: 30), 7)
        for t in critic.backbone.namedTensors {
            let src = try XCTUnwrap(a.namedTensors.first { $0.name == t.name }, t.name)
            XCTAssertEqual(Array(UnsafeBufferPointer(start: critic.backbone.buffer.pointer + t.offset, count: t.count)),
                           Array(UnsafeBufferPointer(start: a.buffer.pointer + src.offset, count: src.count)), t.name)
        }
        XCTAssertFalse(critic.backbone.namedTensors.contains { $0.name == "lm_head.weight" })
        XCTAssertThrowsError(try Critic.fromActor(a, layers: 5, classes: .binary, seed: 1))
        // Head initialisation is deterministic in the seed.
        let again = try Critic.fromActor(a, layers: 2, classes: .outcomes, seed: 1)
        XCTAssertEqual(critic.head.array, again.head.array)
        XCTAssertNotEqual(critic.head.array, try Critic.fromActor(a, layers: 2, classes: .outcomes, seed: 2).head.array)
    }

    /// Class-weighted pooled cross-entropy against finite differences, for head and backbone. The
    /// step is 1e-3 (1e-2 for the decoder): ReLU kinks and max-pool argmax switches lie within
    /// 1e-2 of some sampled parameters and bend the differences there.
    func testGradientsMatchFiniteDifferences() throws {
        let critic = try Critic.fromActor(try actor(), layers: 2, classes: .outcomes, seed: 3)
        let batch = try programs(.outcomes)
        let weights: [Float] = [0.5, 2, 1, 1.5]
        let trainer = try CriticTrainer(critic: critic)
        trainer.zeroGradients()
        try trainer.forwardBackward(batch, classWeights: weights)
        let loss = { Double(try! CriticTrainer(critic: critic).forwardBackward(batch, classWeights: weights).loss) }
        var rng = Xoshiro256(seed: 77)
        for t in critic.headTensors {
            checkGradient("critic \(t.name)", critic.head.pointer + t.offset, count: t.count,
                          analytic: trainer.headGradients.pointer + t.offset, samples: 20, step: 1e-3, tolerance: 3e-2, rng: &rng, loss: loss)
        }
        for t in critic.backbone.namedTensors {
            checkGradient("critic backbone \(t.name)", critic.backbone.buffer.pointer + t.offset, count: t.count,
                          analytic: trainer.backbone.gradients.buffer.pointer + t.offset, samples: 10, step: 1e-3, tolerance: 3e-2,
                          rng: &rng, loss: loss)
        }
    }

    /// Padding never reaches a prediction: pooling covers program tokens only.
    func testPaddingIsMaskedAndTokenProbabilitiesCoverTheProgram() throws {
        let critic = try Critic.fromActor(try actor(), layers: 3, classes: .binary, seed: 4)
        let trainer = try CriticTrainer(critic: critic)
        let a = try trainer.predict(try programs(.binary, pad: 0))
        let b = try trainer.predict(try programs(.binary, pad: 17))
        XCTAssertEqual(a, b)
        for p in a { XCTAssertEqual(p.reduce(0, +), 1, accuracy: 1e-5) }
        let batch = try programs(.binary)
        let probs = try trainer.tokenProbabilities(batch, classes: [1, 0, 1])
        XCTAssertEqual(probs.map(\.count), [6, 4, 4])
        let other = try trainer.tokenProbabilities(batch, classes: [0, 1, 0])
        for (x, y) in zip(probs.joined(), other.joined()) { XCTAssertEqual(x + y, 1, accuracy: 1e-5) }
        XCTAssertThrowsError(try trainer.tokenProbabilities(batch, classes: [2, 0, 0]))
        XCTAssertThrowsError(try CriticBatch.programs([[1, 2, 3]], promptLengths: [1], labels: [4], classes: .outcomes,
                                                      pad: 0, vocabularySize: 40)) { e in
            XCTAssertTrue("\(e)".contains("critic label [0]"), "\(e)")
        }
    }

    /// A learnable rule (class = whether token 5 appears in the program) is learned.
    func testTrainingLearnsASeparableRule() throws {
        let critic = try Critic.fromActor(try actor(), layers: 2, classes: .binary, seed: 5)
        let trainer = try CriticTrainer(critic: critic, trainedLayers: 1)
        var r = Xoshiro256(seed: 12)
        var seqs: [[Int]] = [], labels: [Int] = []
        for i in 0..<16 {
            var s = randomTokens(10, vocabulary: 40, rng: &r).map { $0 == 5 ? 6 : $0 }
            if i % 2 == 0 { s[4 + Int(r.next() % 6)] = 5 }
            seqs.append(s)
            labels.append(i % 2 == 0 ? 1 : 0)
        }
        let batch = try CriticBatch.programs(seqs, promptLengths: Array(repeating: 4, count: 16), labels: labels, classes: .binary,
                                             pad: 0, vocabularySize: 40)
        let ranges = trainer.backbone.trainedTensors.map { ParameterRange(offset: $0.offset, count: $0.count, decays: $0.decays) }
        XCTAssertFalse(trainer.backbone.trainedTensors.contains { $0.name == "model.embed_tokens.weight" },
                       "a partly trained critic backbone leaves its embedding alone")
        let backboneOpt = AdamW(ranges: ranges, settings: AdamWSettings(weightDecay: 0))
        let headOpt = AdamW(ranges: [ParameterRange(offset: 0, count: critic.head.count, decays: false)], settings: AdamWSettings(weightDecay: 0))
        var first: Float = 0, last: Float = 0
        for step in 0..<80 {
            trainer.zeroGradients()
            let result = try trainer.forwardBackward(batch)
            if step == 0 { first = result.loss }
            last = result.loss
            backboneOpt.update(parameters: critic.backbone.buffer.pointer, gradients: trainer.backbone.gradients.buffer.pointer, learningRate: 3e-3)
            headOpt.update(parameters: critic.head.pointer, gradients: trainer.headGradients.pointer, learningRate: 3e-3)
        }
        let predictions = try trainer.predict(batch)
        let correct = zip(predictions, labels).filter { ($0.0[1] > 0.5 ? 1 : 0) == $0.1 }.count
        print("critic loss \(first) -> \(last), \(correct)/16 correct")
        XCTAssertLessThan(last, first * 0.2)
        XCTAssertEqual(correct, 16)
    }
}
