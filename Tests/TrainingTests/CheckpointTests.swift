import Foundation
import Llama
import ModelIO
import Optim
import Tensor
import Training
import XCTest

final class CheckpointTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "coderl-ckpt-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    func config() throws -> LlamaConfig {
        try LlamaConfig(vocabularySize: 48, channels: 32, layers: 3, heads: 4, kvHeads: 2, feedForward: 40, contextLength: 32)
    }

    func batches(seed: UInt64) throws -> [TrainingBatch] {
        var r = Xoshiro256(seed: seed)
        return try (0..<2).map { _ in
            try TrainingBatch.completions([randomTokens(10, vocabulary: 48, rng: &r), randomTokens(8, vocabulary: 48, rng: &r)],
                                          promptLengths: [3, 2], pad: 0, vocabularySize: 48)
        }
    }

    func session(trainedLayers: Int = 2) throws -> ActorSession {
        let state = TrainingState(kind: .actor, trainedLayers: trainedLayers, adamw: AdamWSettings(),
                                  schedule: LearningRateSchedule(peak: 1e-3, warmupSteps: 2, decay: .cosine, totalSteps: 20),
                                  rng: Xoshiro256(seed: 99), settings: ["batch": "2"])
        return try ActorSession(weights: randomWeights(try config(), seed: 3), state: state)
    }

    /// Save after two steps, load, and both continue identically (weights, moments, step,
    /// generator and data position all restored).
    func testResumeContinuesExactly() throws {
        let a = try session()
        var rng = Xoshiro256(seed: 5)
        for s in 0..<2 { _ = rng.next(); try a.step(try batches(seed: UInt64(s)), examples: 4, rng: rng) }
        let path = dir + "/step-2.safetensors"
        try a.save(to: path)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["step-2.safetensors"], "no temporary file left")
        let b = try ActorSession.load(from: path)
        XCTAssertEqual(b.state, a.state)
        XCTAssertEqual(b.state.step, 2)
        XCTAssertEqual(b.state.position, 8)
        XCTAssertEqual(b.optimizer.step, 2)
        XCTAssertEqual(b.weights.buffer.array, a.weights.buffer.array)
        XCTAssertEqual(b.optimizer.m.array, a.optimizer.m.array)
        XCTAssertEqual(b.optimizer.v.array, a.optimizer.v.array)
        for s in 2..<5 {
            let ra = try a.step(try batches(seed: UInt64(s)), examples: 4, rng: rng)
            let rb = try b.step(try batches(seed: UInt64(s)), examples: 4, rng: rng)
            XCTAssertEqual(ra.losses, rb.losses)
        }
        XCTAssertEqual(b.weights.buffer.array, a.weights.buffer.array)
        // Any safetensors reader can list it.
        let file = try SafetensorsFile(path: path)
        XCTAssertTrue(file.names.contains("optimizer.m.model.norm.weight"))
        XCTAssertFalse(file.names.contains("optimizer.m.model.layers.0.mlp.up_proj.weight"), "frozen block 0 has no moments")
    }

    /// A snapshot written after training went on holds the state of the moment it was taken,
    /// byte for byte what a checkpoint written then holds (the learner writes checkpoints on a
    /// thread of its own while the next step trains).
    func testSnapshotWrittenLaterHoldsTheStateWhenTaken() throws {
        let a = try session()
        var rng = Xoshiro256(seed: 5)
        for s in 0..<2 { _ = rng.next(); try a.step(try batches(seed: UInt64(s)), examples: 4, rng: rng) }
        try a.save(to: dir + "/now.safetensors")
        let snapshot = a.snapshot()
        // Only the trained tensors are copied, with their two moments (block 0 is frozen).
        let trained = a.trainer.trainedTensors.reduce(0) { $0 + $1.count }
        XCTAssertLessThan(trained, a.weights.buffer.count)
        XCTAssertEqual(snapshot.copiedBytes, 3 * trained * 4)
        for s in 2..<4 { try a.step(try batches(seed: UInt64(s)), examples: 4, rng: rng) }
        try snapshot.write(to: dir + "/later.safetensors")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: dir + "/later.safetensors")),
                       try Data(contentsOf: URL(fileURLWithPath: dir + "/now.safetensors")))
        XCTAssertEqual(try ActorSession.load(from: dir + "/later.safetensors").state.step, 2)

        let critic = try Critic.fromActor(randomWeights(try config(), seed: 4), layers: 2, classes: .binary, seed: 6)
        let c = try CriticSession(critic: critic, state: TrainingState(kind: .critic, trainedLayers: 1, adamw: AdamWSettings(),
                                                                         schedule: LearningRateSchedule(peak: 1e-3), rng: Xoshiro256(seed: 1),
                                                                         criticClasses: .binary), classWeights: [1, 3])
        var r = Xoshiro256(seed: 2)
        let batch = try CriticBatch.programs([randomTokens(9, vocabulary: 48, rng: &r), randomTokens(7, vocabulary: 48, rng: &r)],
                                             promptLengths: [3, 3], labels: [1, 0], classes: .binary, pad: 0, vocabularySize: 48)
        _ = try c.step([batch], examples: 2, rng: r)
        try c.save(to: dir + "/critic-now.safetensors")
        let criticSnapshot = c.snapshot()
        _ = try c.step([batch], examples: 2, rng: r)
        try criticSnapshot.write(to: dir + "/critic-later.safetensors")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: dir + "/critic-later.safetensors")),
                       try Data(contentsOf: URL(fileURLWithPath: dir + "/critic-now.safetensors")))
        XCTAssertEqual(try CriticSession.load(from: dir + "/critic-later.safetensors").classWeights, [1, 3])
    }

    func testDamagedCheckpointsAreRefusedWithTheReason() throws {
        let a = try session()
        let path = dir + "/ckpt.safetensors"
        try a.save(to: path)
        let good = try Data(contentsOf: URL(fileURLWithPath: path))
        func expect(_ data: Data, _ fragment: String, line: UInt = #line) {
            let p = dir + "/damaged.safetensors"
            try! data.write(to: URL(fileURLWithPath: p))
            XCTAssertThrowsError(try ActorSession.load(from: p), line: line) { e in
                XCTAssertTrue("\(e)".contains(fragment), "\(e)", line: line)
                XCTAssertTrue("\(e)".contains(p), "names the file: \(e)", line: line)
            }
        }
        // A flipped bit in the last tensor's data.
        var flipped = good
        flipped[flipped.count - 3] ^= 0x10
        expect(flipped, "fails its checksum")
        // Torn: the tail is missing.
        expect(good.prefix(good.count - 100), "truncated")
        expect(good.prefix(5), "too short")
        // A digit of the state changed in the header ("step":0 -> "step":1).
        let text = String(decoding: good.prefix(65536), as: UTF8.self)
        let range = try XCTUnwrap(text.range(of: "\\\"step\\\":0"))
        var edited = good
        let at = text.utf8.distance(from: text.utf8.startIndex, to: range.upperBound.samePosition(in: text.utf8)!) - 1
        edited[at] = UInt8(ascii: "1")
        expect(edited, "header metadata checksum mismatch")
        // A plain safetensors file is not a checkpoint.
        try a.weights.writeSafetensors(to: dir + "/plain.safetensors")
        XCTAssertThrowsError(try ActorSession.load(from: dir + "/plain.safetensors")) { e in
            XCTAssertTrue("\(e)".contains("coderl.checkpoint"), "\(e)")
        }
    }

    func testCriticCheckpointRoundTrip() throws {
        let critic = try Critic.fromActor(randomWeights(try config(), seed: 4), layers: 2, classes: .outcomes, seed: 6)
        let state = TrainingState(kind: .critic, trainedLayers: 1, adamw: AdamWSettings(), schedule: LearningRateSchedule(peak: 1e-3),
                                  rng: Xoshiro256(seed: 1), criticClasses: .outcomes)
        let s = try CriticSession(critic: critic, state: state, classWeights: [1, 1, 0.5, 2])
        var r = Xoshiro256(seed: 2)
        let batch = try CriticBatch.programs([randomTokens(9, vocabulary: 48, rng: &r), randomTokens(7, vocabulary: 48, rng: &r)],
                                             promptLengths: [3, 3], labels: [3, 0], classes: .outcomes, pad: 0, vocabularySize: 48)
        _ = try s.step([batch], examples: 2, rng: r)
        let path = dir + "/critic.safetensors"
        try s.save(to: path)
        let t = try CriticSession.load(from: path)
        XCTAssertEqual(t.classWeights, [1, 1, 0.5, 2])
        XCTAssertEqual(t.critic.head.array, s.critic.head.array)
        XCTAssertEqual(t.critic.backbone.buffer.array, s.critic.backbone.buffer.array)
        XCTAssertEqual(try t.step([batch], examples: 2, rng: r).loss, try s.step([batch], examples: 2, rng: r).loss)
        XCTAssertThrowsError(try ActorSession.load(from: path)) { e in XCTAssertTrue("\(e)".contains("not an actor"), "\(e)") }
    }
}

final class ExportTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "coderl-export-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    func logits(_ w: LlamaWeights, tokens: [Int]) throws -> [Float] {
        let b = try TrainingBatch(tokens: [tokens], keyMask: [tokens.map { _ in true }], lossMask: [Array(repeating: 1, count: tokens.count - 1)],
                                  vocabularySize: w.config.vocabularySize)
        return try LlamaTrainer(weights: w).logits(b)
    }

    /// The PyTorch fixture model exported as GGUF reloads through the GGUF loader (which undoes
    /// llama.cpp's q/k permutation) with identical weights and logits; F16 within half precision.
    func testGGUFExportReloadsWithIdenticalLogits() throws {
        let model = try LoadedModel.load(Fixtures.tinyTrain)
        let tokens = [5, 17, 300, 2, 44, 128, 9]
        let reference = try logits(model.weights, tokens: tokens)
        try ModelExport.gguf(model.weights, tokenizer: [], to: dir + "/m.gguf")
        let back = try LoadedModel.load(dir + "/m.gguf")
        XCTAssertEqual(back.weights.config, model.weights.config)
        XCTAssertEqual(back.weights.buffer.array, model.weights.buffer.array)
        XCTAssertEqual(try logits(back.weights, tokens: tokens), reference)
        try ModelExport.gguf(model.weights, tokenizer: [], to: dir + "/h.gguf", type: .f16)
        let half = try LoadedModel.load(dir + "/h.gguf")
        XCTAssertLessThan(relativeError(try logits(half.weights, tokens: tokens), reference), 2e-3)
        XCTAssertEqual(try GGUFFile(path: dir + "/h.gguf").tensorInfo("blk.0.attn_norm.weight")?.typeID, GGMLType.f32.rawValue)
    }

    /// SmolLM2 exported as F32 GGUF (tokenizer carried over) reloads with the same tokenizer and
    /// bit-identical logits.
    func testDefaultModelExportReloadsWithIdenticalLogits() throws {
        guard DefaultModel.isPresent else {
            print("SKIPPED: default model absent at \(DefaultModel.path); run `make setup` to fetch it")
            throw XCTSkip("default model absent")
        }
        let (model, tokenizer, template) = try LlamaModel.load(gguf: DefaultModel.path)
        let source = try LoadedModel.load(DefaultModel.path)
        XCTAssertEqual(source.tokenizerPath, DefaultModel.path)
        try ModelExport.gguf(source.weights, tokenizer: LoadedModel.tokenizerMetadata(of: try GGUFFile(path: DefaultModel.path)),
                             to: dir + "/smol.gguf")
        let (back, backTokenizer, backTemplate) = try LlamaModel.load(gguf: dir + "/smol.gguf")
        XCTAssertNotNil(backTemplate)
        XCTAssertEqual(backTemplate?.defaultSystemPrompt, template?.defaultSystemPrompt)
        let text = "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)  # 12 ✓"
        let ids = tokenizer.encode(text)
        XCTAssertEqual(backTokenizer.encode(text), ids)
        func logits(_ m: LlamaModel) throws -> [Float] {
            let cache = PrefixCache(config: m.config, capacity: ids.count)
            let out = FloatBuffer(count: m.config.vocabularySize)
            try m.prefill(ids, cache: cache, logits: out.pointer)
            return out.array
        }
        XCTAssertEqual(try logits(back), try logits(model))
    }

    func testHuggingFaceExportAndBothConfigForms() throws {
        let model = try LoadedModel.load(Fixtures.tinyTrain)
        try ModelExport.huggingFace(model.weights, to: dir + "/hf")
        let back = try LoadedModel.load(dir + "/hf")
        XCTAssertEqual(back.weights.buffer.array, model.weights.buffer.array)
        // The older form: top-level rope_theta, an untied head.
        var config = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/hf/config.json"))) as? [String: Any])
        config.removeValue(forKey: "rope_parameters")
        config["rope_theta"] = 50_000.0
        config["tie_word_embeddings"] = false
        try FileManager.default.createDirectory(atPath: dir + "/old", withIntermediateDirectories: true)
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: dir + "/old/config.json"))
        let untied = try LlamaWeights(config: try LlamaConfig(huggingFaceConfig: dir + "/old/config.json"))
        XCTAssertEqual(untied.config.ropeTheta, 50_000)
        XCTAssertFalse(untied.config.tiedEmbeddings)
        let w = randomWeights(untied.config, seed: 8)
        try w.writeSafetensors(to: dir + "/old/model.safetensors", dtype: .bf16)
        let loaded = try LoadedModel.load(dir + "/old")
        XCTAssertTrue(loaded.weights.namedTensors.contains { $0.name == "lm_head.weight" })
        XCTAssertLessThan(relativeError(loaded.weights.buffer.array, w.buffer.array), 1e-2)
        // Missing lm_head in an untied checkpoint is named.
        var writer = SafetensorsWriter()
        for t in w.namedTensors where t.name != "lm_head.weight" { writer.add(t.name, shape: t.shape, values: w.buffer.pointer + t.offset) }
        try writer.write(to: dir + "/old/model.safetensors")
        XCTAssertThrowsError(try LoadedModel.load(dir + "/old")) { e in XCTAssertTrue("\(e)".contains("'lm_head.weight' is missing"), "\(e)") }
    }

    func testBadConfigsAndSafetensorsAreNamed() throws {
        func config(_ edit: (inout [String: Any]) -> Void) throws -> String {
            var c = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Fixtures.tinyTrain + "/config.json"))) as? [String: Any])
            edit(&c)
            let p = dir + "/config-\(UInt32.random(in: 0...UInt32.max)).json"
            try JSONSerialization.data(withJSONObject: c).write(to: URL(fileURLWithPath: p))
            return p
        }
        let cases: [(String, (inout [String: Any]) -> Void)] = [
            ("num_attention_heads", { $0["num_attention_heads"] = 5 }),
            ("hidden_size", { $0["hidden_size"] = "64" }),
            ("rope_parameters.rope_type", { $0["rope_parameters"] = ["rope_type": "llama3", "rope_theta": 1.0] }),
            ("attention_bias", { $0["attention_bias"] = true }),
            ("head_dim", { $0["head_dim"] = 32 }),
            ("model_type", { $0["model_type"] = "gpt2" }),
            ("vocab_size", { $0.removeValue(forKey: "vocab_size") }),
        ]
        for (key, edit) in cases {
            XCTAssertThrowsError(try LlamaConfig(huggingFaceConfig: try config(edit)), key) { e in
                XCTAssertTrue("\(e)".contains(key), "\(key): \(e)")
            }
        }
        let good = try Data(contentsOf: URL(fileURLWithPath: Fixtures.tinyTrain + "/model.safetensors"))
        let p = dir + "/bad.safetensors"
        try good.prefix(good.count - 10).write(to: URL(fileURLWithPath: p))
        XCTAssertThrowsError(try SafetensorsFile(path: p)) { e in XCTAssertTrue("\(e)".contains("truncated"), "\(e)") }
        var huge = good
        huge.replaceSubrange(0..<8, with: withUnsafeBytes(of: UInt64(1 << 40).littleEndian) { Data($0) })
        try huge.write(to: URL(fileURLWithPath: p))
        XCTAssertThrowsError(try SafetensorsFile(path: p)) { e in XCTAssertTrue("\(e)".contains("header length"), "\(e)") }
        var i64 = good
        let header = String(decoding: good[8..<(8 + 400)], as: UTF8.self)
        let r = try XCTUnwrap(header.range(of: "\"F32\""))
        let at = 8 + header.utf8.distance(from: header.utf8.startIndex, to: r.lowerBound.samePosition(in: header.utf8)!)
        i64.replaceSubrange((at + 1)..<(at + 4), with: Data("I64".utf8))
        try i64.write(to: URL(fileURLWithPath: p))
        XCTAssertThrowsError(try SafetensorsFile(path: p)) { e in XCTAssertTrue("\(e)".contains("dtype I64"), "\(e)") }
        let file = try SafetensorsFile(path: Fixtures.tinyTrain + "/model.safetensors")
        let buffer = FloatBuffer(count: 64 * 64)
        XCTAssertThrowsError(try file.read("model.norm.weight", shape: [32], into: buffer.pointer)) { e in
            XCTAssertTrue("\(e)".contains("shape [64], expected [32]"), "\(e)")
        }
    }
}
