import Foundation
import Llama
import ModelIO
import Optim
import Tensor
import Training
import XCTest

/// Published versions as deltas: a delta holds the trained tensors only, and the whole version
/// made from it and its parent (by a new file or by writing over an old version's file) is the
/// file a whole write gives, byte for byte. A frozen output head is not trained.
final class DeltaTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "coderl-delta-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    func session(seed: UInt64 = 3, trainsHead: Bool = false) throws -> ActorSession {
        let config = try LlamaConfig(vocabularySize: 48, channels: 32, layers: 3, heads: 4, kvHeads: 2, feedForward: 40, contextLength: 32)
        let state = TrainingState(kind: .actor, trainedLayers: 1, adamw: AdamWSettings(),
                                  schedule: LearningRateSchedule(peak: 1e-2, totalSteps: 20), rng: Xoshiro256(seed: 9),
                                  trainsOutputHead: trainsHead)
        return try ActorSession(weights: randomWeights(config, seed: seed), state: state)
    }

    func step(_ s: ActorSession, seed: UInt64) throws {
        var r = Xoshiro256(seed: seed)
        let b = try TrainingBatch.completions([randomTokens(10, vocabulary: 48, rng: &r), randomTokens(8, vocabulary: 48, rng: &r)],
                                              promptLengths: [3, 2], pad: 0, vocabularySize: 48)
        try s.step([b], examples: 2, rng: r)
    }

    func bytes(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

    func testADeltaMakesTheWholeVersionByteForByte() throws {
        let s = try session()
        try s.saveWeights(to: dir + "/v0")
        try step(s, seed: 1)
        try s.saveWeights(to: dir + "/v1")
        try step(s, seed: 2)
        try s.saveWeights(to: dir + "/v2")
        try s.saveWeights(to: dir + "/v2.delta", deltaOf: 1)

        let delta = try SafetensorsFile(path: dir + "/v2.delta")
        XCTAssertEqual(Set(delta.names), Set(s.trainer.trainedTensors.map(\.name)), "a delta holds the trained tensors only")
        XCTAssertEqual(Checkpoint.Delta.parent(of: dir + "/v2.delta"), 1)
        XCTAssertNil(Checkpoint.Delta.parent(of: dir + "/v2"))
        let whole = try SafetensorsFile(path: dir + "/v2")
        XCTAssertLessThan(delta.fileSize - delta.dataStart, (whole.fileSize - whole.dataStart) / 2, "data bytes")
        XCTAssertEqual(try SafetensorsFile(path: dir + "/v2").dataStart % Checkpoint.dataAlignment, 0)

        // A new file.
        XCTAssertFalse(try Checkpoint.Delta.materialize(delta: dir + "/v2.delta", parent: dir + "/v1", to: dir + "/v2.made"))
        XCTAssertEqual(try bytes(dir + "/v2.made"), try bytes(dir + "/v2"))
        // Over the file of an older version (v0), which is consumed.
        XCTAssertTrue(try Checkpoint.Delta.materialize(delta: dir + "/v2.delta", parent: dir + "/v1", recycling: dir + "/v0",
                                                       to: dir + "/v2.recycled"))
        XCTAssertEqual(try bytes(dir + "/v2.recycled"), try bytes(dir + "/v2"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/v0"))
        // It reads as the version.
        let loaded = try LoadedModel.load(dir + "/v2.recycled")
        XCTAssertEqual(loaded.weights.buffer.array, s.weights.buffer.array)
    }

    func testADeltaOverTheWrongParentIsRefused() throws {
        let s = try session()
        try step(s, seed: 1)
        try s.saveWeights(to: dir + "/v2.delta", deltaOf: 1)
        let other = try session(seed: 4)  // other frozen blocks
        try other.saveWeights(to: dir + "/other")
        XCTAssertThrowsError(try Checkpoint.Delta.materialize(delta: dir + "/v2.delta", parent: dir + "/other", to: dir + "/out")) { error in
            XCTAssertTrue("\(error)".contains("is not in the delta and differs in its parent"), "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/out"))
        // A whole checkpoint is not a delta.
        XCTAssertThrowsError(try Checkpoint.Delta.materialize(delta: dir + "/other", parent: dir + "/other", to: dir + "/out")) { error in
            XCTAssertTrue("\(error)".contains("not a delta"), "\(error)")
        }
    }

    func testAFrozenHeadStaysAndIsNotInTheTrainedTensors() throws {
        for trainsHead in [false, true] {
            let s = try session(trainsHead: trainsHead)
            let w = s.weights
            let embedding = Array(UnsafeBufferPointer(start: w.buffer.pointer + w.embeddingOffset, count: w.config.vocabularySize * w.config.channels))
            let top = Array(UnsafeBufferPointer(start: w.buffer.pointer + 2 * w.layerStride, count: w.layerStride))
            try step(s, seed: 1)
            let names = Set(s.trainer.trainedTensors.map(\.name))
            XCTAssertEqual(names.contains("model.embed_tokens.weight"), trainsHead)
            let embeddingAfter = Array(UnsafeBufferPointer(start: w.buffer.pointer + w.embeddingOffset, count: embedding.count))
            XCTAssertEqual(embeddingAfter == embedding, !trainsHead, "head trained: \(trainsHead)")
            XCTAssertNotEqual(Array(UnsafeBufferPointer(start: w.buffer.pointer + 2 * w.layerStride, count: w.layerStride)), top)
        }
    }
}
