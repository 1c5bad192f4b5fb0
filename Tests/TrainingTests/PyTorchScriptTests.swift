import Foundation
import ModelIO
import TestSupport
import XCTest

/// The committed fixture script (`Tests/Fixtures/tiny_llama_train.py`) run under PyTorch:
/// it reproduces the committed reference files, and a new random model and batch it makes
/// (seed printed) pass the same checks as the committed one, so the training code is not
/// tuned to one fixture. PyTorch comes from `make peers-venv` (`.build-peers/venv`) or
/// `CODERL_PYTORCH_PYTHON`; without it the tests say so and are skipped.
final class PyTorchScriptTests: XCTestCase {
    static let repository = Fixtures.root.deletingLastPathComponent().deletingLastPathComponent()
    static let script = Fixtures.root.appendingPathComponent("tiny_llama_train.py").path

    func python() throws -> String {
        var candidates: [String] = [Self.repository.appendingPathComponent(".build-peers/venv/bin/python").path]
        if let chosen = ProcessInfo.processInfo.environment["CODERL_PYTORCH_PYTHON"] { candidates.insert(chosen, at: 0) }
        for path in candidates where FileManager.default.isExecutableFile(atPath: path) {
            if (try? runProcess(path, ["-c", "import torch, transformers, safetensors"]).status) == 0 { return path }
        }
        print("PyTorch is not installed (`make peers-venv`, or CODERL_PYTORCH_PYTHON=...): the PyTorch script checks did not run")
        throw XCTSkip("no Python with torch, transformers and safetensors")
    }

    func testTheScriptReproducesTheCommittedReference() throws {
        let python = try python()
        let (status, output) = try runProcess(python, [Self.script, "check", Fixtures.tinyTrain])
        print(output)
        XCTAssertEqual(status, 0, "tiny_llama_train.py check: \(output)")
        XCTAssertTrue(output.contains("ok   gradients (20 tensors"), output)
    }

    /// PyTorch's side of the SmolLM2 reference (prompt ids, 48 greedy tokens, top-5 logits), and
    /// llama.cpp's where the peers are built.
    func testTheSmolLM2ScriptReproducesThePyTorchSideOfTheReference() throws {
        let python = try python()
        guard DefaultModel.isPresent else {
            print("SKIPPED: default model absent at \(DefaultModel.path); run `make setup` to fetch it")
            throw XCTSkip("default model absent")
        }
        let script = Fixtures.root.appendingPathComponent("smollm2_reference.py").path
        let reference = Fixtures.root.appendingPathComponent("smollm2_reference.json").path
        // llama.cpp's side too when `make bench-peers` built the greedy driver and the F32 model.
        let peers = Self.repository.appendingPathComponent(".build-peers").path
        let greedy = peers + "/llama.cpp/bin/llama-greedy", f32 = peers + "/models/SmolLM2-135M-Instruct.F32.gguf"
        var arguments = [script, "check", reference, DefaultModel.path]
        let withLlama = FileManager.default.isExecutableFile(atPath: greedy) && FileManager.default.fileExists(atPath: f32)
        if withLlama {
            arguments += ["--llama-greedy", greedy, "--llama-model", f32]
        } else {
            print("llama.cpp's side not checked: \(greedy) or \(f32) missing (`make bench-peers` builds them)")
        }
        let (status, output) = try runProcess(python, arguments)
        let lines = output.split(separator: "\n").filter { $0.hasPrefix("ok") || $0.hasPrefix("FAIL") || $0.hasPrefix("PyTorch") }
        print(lines.joined(separator: "\n"))
        XCTAssertEqual(status, 0, output)
        XCTAssertEqual(lines.filter { $0.hasPrefix("ok   ") }.count, withLlama ? 6 : 3, "one line per prompt and engine: \(output)")
    }

    func testAFreshReferenceFromTheScriptMatchesOurTraining() throws {
        let python = try python()
        let seed = Int.random(in: 1...1_000_000)
        print("fresh PyTorch reference: seed \(seed) (tiny_llama_train.py init DIR --seed \(seed))")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tiny-train-\(seed)-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (status, output) = try runProcess(python, [Self.script, "init", dir, "--seed", String(seed)])
        XCTAssertEqual(status, 0, output)
        guard status == 0 else { return }
        try PyTorchReferenceTests.checkLogits(dir)
        try PyTorchReferenceTests.checkStep(dir)
    }
}
