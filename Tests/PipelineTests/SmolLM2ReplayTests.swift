import Foundation
import ModelIO
import TestSupport
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
        let run = dir + "/run"
        let online = try runProduct(["run", pipeline, "--set", "run.dir=\(run)"] + settings.flatMap { ["--set", $0] })
        XCTAssertEqual(online.status, 0, online.output.suffix(3000).description)
        let replay = try runProduct(["replay", "--ledger", run + "/ledger", "--config", run + "/pipeline.yaml", "--out", dir + "/replay"], threads: 3)
        XCTAssertEqual(replay.status, 0, replay.output.suffix(3000).description)
        // Version 3: warm-start, then two steps.
        XCTAssertEqual(try differingTensors(run + "/weights/actor/v000003.safetensors", dir + "/replay/learner/step-000002/replayed-actor.safetensors"),
                       [], "replayed tensors differ from the online learner's version 3")
    }
}
