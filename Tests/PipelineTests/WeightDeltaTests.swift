import Foundation
import Llama
import ModelIO
import Optim
import Pipeline
import Runtime
import Tensor
import Training
import XCTest

/// Versions as deltas between the learner, the param-store and its clients: the store makes a
/// whole version from a delta (over the file of the version it would drop next), refuses a
/// delta of a version it does not hold, and a client fetches a version as the chunks that
/// differ from the version it has cached, unless that file no longer matches its manifest.
final class WeightDeltaTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "coderl-wdelta-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir + "/incoming", withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    func session() throws -> ActorSession {
        let config = try LlamaConfig(vocabularySize: 2000, channels: 32, layers: 3, heads: 4, kvHeads: 2, feedForward: 40, contextLength: 32)
        let w = LlamaWeights(config: config)
        var rng = Xoshiro256(seed: 11)
        for t in w.namedTensors { for i in 0..<t.count { w.buffer[t.offset + i] = t.decays ? (rng.nextUnit() * 2 - 1) * 0.1 : 1 } }
        return try ActorSession(weights: w, state: TrainingState(kind: .actor, trainedLayers: 1, adamw: AdamWSettings(),
                                                                 schedule: LearningRateSchedule(peak: 1e-2, totalSteps: 10),
                                                                 rng: Xoshiro256(seed: 1), trainsOutputHead: false))
    }

    func step(_ s: ActorSession, _ seed: UInt64) throws {
        let tokens = (0..<12).map { Int(($0 * 37 + Int(seed) * 11) % 2000) }
        let b = try TrainingBatch.completions([tokens], promptLengths: [4], pad: 0, vocabularySize: 2000)
        try s.step([b], examples: 1, rng: Xoshiro256(seed: seed))
    }

    func bytes(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

    func testDeltasThroughTheStoreAndTheClientCache() throws {
        var settings = ParamStore.Settings(directory: dir + "/store", endpoint: "ipc://\(dir)/params", announceEndpoint: "ipc://\(dir)/announce")
        settings.chunkBytes = 16 << 10
        settings.keepVersions = 3
        let store = try ParamStore(settings: settings, log: Log(role: "param-store", instance: "t", sink: { _ in }))
        let s = try session()
        // v1 whole, v2..v4 as deltas of the version before; each also written whole for reference.
        for v in 1...4 {
            try step(s, UInt64(v))
            try s.saveWeights(to: dir + "/whole-v\(v)")
            let incoming = dir + "/incoming/v\(v).safetensors"
            try s.saveWeights(to: incoming, deltaOf: v == 1 ? nil : UInt64(v - 1))
            let m = try store.register(model: "actor", version: UInt64(v), file: incoming)
            XCTAssertEqual(try bytes(dir + "/store/actor/" + String(format: "v%06d.safetensors", v)), try bytes(dir + "/whole-v\(v)"), "v\(v)")
            XCTAssertEqual(m.totalBytes, UInt64(try bytes(dir + "/whole-v\(v)").count))
        }
        XCTAssertNil(store.manifest(model: "actor", version: 1), "the oldest version went (its file became v4)")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir + "/store/actor").filter { $0.hasSuffix(".safetensors") }.sorted(),
                       ["v000002.safetensors", "v000003.safetensors", "v000004.safetensors"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir + "/incoming"), [], "no delta or temporary file left")

        // A delta of a version the store does not hold is refused (the learner then sends it whole).
        try s.saveWeights(to: dir + "/incoming/v5.safetensors", deltaOf: 1)
        XCTAssertThrowsError(try store.register(model: "actor", version: 5, file: dir + "/incoming/v5.safetensors")) { error in
            XCTAssertTrue("\(error)".contains("does not hold"), "\(error)")
        }

        let box = UncheckedBox(store)
        let thread = Thread { try? box.value.run() }
        thread.start()
        defer {
            store.stop()
            while thread.isExecuting { Thread.sleep(forTimeInterval: 0.01) }
        }
        func client() throws -> WeightClient {
            try WeightClient(settings: .init(endpoint: settings.endpoint, cacheDirectory: dir + "/cache", name: "t"),
                             log: Log(role: "client", instance: "t", sink: { _ in }))
        }
        let c = try client()
        let total = try bytes(dir + "/whole-v2").count
        let v2 = try c.fetch(model: "actor", version: 2)
        XCTAssertEqual(c.lastFetch.downloaded, total)
        XCTAssertEqual(c.lastFetch.reused, 0)
        XCTAssertEqual(try bytes(v2.path), try bytes(dir + "/whole-v2"))
        let v3 = try c.fetch(model: "actor", version: 3)
        XCTAssertEqual(try bytes(v3.path), try bytes(dir + "/whole-v3"))
        XCTAssertGreaterThan(c.lastFetch.reused, total / 2, "the frozen embedding and blocks are kept from v2")
        XCTAssertEqual(c.lastFetch.downloaded + c.lastFetch.reused, total)
        XCTAssertFalse(FileManager.default.fileExists(atPath: v2.path), "v2's file became v3's")
        _ = try c.fetch(model: "actor", version: 3)
        XCTAssertEqual(c.lastFetch.downloaded + c.lastFetch.reused, 0, "a cached version is not fetched again")

        // A cached file damaged (say by a crash of the machine: the cache is not flushed) is
        // not trusted by the next process: v4 is fetched whole and comes out right.
        let handle = try XCTUnwrap(FileHandle(forUpdatingAtPath: v3.path))
        try handle.seek(toOffset: UInt64(total / 2))
        handle.write(Data([0xFF, 0xFE]))
        try handle.close()
        let restarted = try client()
        let v4 = try restarted.fetch(model: "actor", version: 4)
        XCTAssertEqual(restarted.lastFetch.reused, 0)
        XCTAssertEqual(try bytes(v4.path), try bytes(dir + "/whole-v4"))
    }
}
