import Foundation
import Llama
import ModelIO
import Training
import XCTest

/// Replay on the real model: a short `coderl run` of SmolLM2-135M-Instruct (processes, deltas,
/// checkpoints written off the training thread, the learner on its own thread count), then
/// `coderl replay` of its ledger in another process on another thread count. The replayed
/// actor must equal the online learner's last published version bit for bit.
final class SmolLM2ReplayTests: XCTestCase {
    func testReplayOfASmolLM2RunIsBitExact() throws {
        guard DefaultModel.isPresent else {
            throw XCTSkip("SKIPPED: default model absent (\(DefaultModel.path); make model)")
        }
        let dir = "/tmp/coderl-smol-replay-\(UUID().uuidString.prefix(6))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pipeline = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Pipelines/demo.yaml")
            .standardizedFileURL.path
        // One warm-start step and two RL steps of 2 problems x (2 samples + greedy), short programs.
        let settings = ["run.steps=2", "training.warm_start_steps=1", "training.problems_per_step=2", "sampling.samples_per_problem=2",
                        "sampling.max_new_tokens=24", "data.heldout_problems=0", "metrics.port=0",
                        "endpoints.params=ipc://\(dir)/params", "endpoints.announcements=ipc://\(dir)/announce",
                        "endpoints.samples=ipc://\(dir)/samples", "endpoints.rollouts=ipc://\(dir)/rollouts",
                        "endpoints.executors=ipc://\(dir)/executors"]
        func coderl(_ arguments: [String], threads: Int? = nil) throws -> (status: Int32, output: String) {
            let p = Process()
            p.executableURL = productsDirectory.appendingPathComponent("coderl")
            p.arguments = arguments
            if let threads {
                p.environment = ProcessInfo.processInfo.environment.merging(["CODERL_THREADS": "\(threads)", "OPENBLAS_NUM_THREADS": "\(threads)"]) { $1 }
            }
            let out = dir + "/out-\(UUID().uuidString.prefix(4))"
            FileManager.default.createFile(atPath: out, contents: nil)
            p.standardOutput = FileHandle(forWritingAtPath: out)
            p.standardError = p.standardOutput
            try p.run()
            p.waitUntilExit()
            return (p.terminationStatus, (try? String(contentsOfFile: out, encoding: .utf8)) ?? "")
        }
        let run = dir + "/run"
        let online = try coderl(["run", pipeline, "--set", "run.dir=\(run)"] + settings.flatMap { ["--set", $0] })
        XCTAssertEqual(online.status, 0, online.output.suffix(3000).description)
        let replay = try coderl(["replay", "--ledger", run + "/ledger", "--config", run + "/pipeline.yaml", "--out", dir + "/replay"], threads: 3)
        XCTAssertEqual(replay.status, 0, replay.output.suffix(3000).description)

        // Version 3: warm-start, then two steps.
        let published = try Checkpoint.Reader(path: run + "/weights/actor/v000003.safetensors")
        let replayed = try Checkpoint.Reader(path: dir + "/replay/learner/step-000002/replayed-actor.safetensors")
        let weights = LlamaWeights(config: published.config)
        var differing: [String] = []
        for t in weights.namedTensors {
            var a = [Float](repeating: 0, count: t.count), b = a
            try published.read(t.name, shape: t.shape, into: &a)
            try replayed.read(t.name, shape: t.shape, into: &b)
            if a != b { differing.append(t.name) }
        }
        XCTAssertEqual(differing, [], "replayed tensors differ from the online learner's version 3")
    }
}
