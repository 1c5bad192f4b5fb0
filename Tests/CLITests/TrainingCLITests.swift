import Foundation
import ModelIO
import XCTest

/// `coderl sft` and `coderl export` on the default model, as a user runs them.
extension CLITests {
    func writePairs(_ path: String) throws {
        let ops = [("add", "a + b"), ("subtract", "a - b"), ("multiply", "a * b"), ("larger", "max(a, b)"), ("smaller", "min(a, b)")]
        var lines: [String] = []
        for (name, expr) in ops {
            for form in ["Write a Python function \(name)(a, b) for two numbers a and b.", "Python: define \(name)(a, b)."] {
                let object: [String: String] = ["prompt": form, "completion": "def \(name)(a, b):\n    return \(expr)\n"]
                lines.append(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
            }
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    }

    func losses(_ output: String) -> [Double] {
        output.split(separator: "\n").compactMap { line in
            guard let r = line.range(of: "loss ") else { return nil }
            return Double(line[r.upperBound...].prefix { !$0.isWhitespace })
        }
    }

    /// SFT lowers the loss; a 6-step run stopped at step 3 and resumed writes the same checkpoint,
    /// byte for byte, as a run straight through; the result exports to GGUF and generates.
    func testSFTLowersTheLossResumesExactlyAndExports() throws {
        guard DefaultModel.isPresent else {
            print("SKIPPED: default model absent at \(DefaultModel.path); run `make setup` to fetch it")
            throw XCTSkip("default model absent")
        }
        let data = root + "/pairs.jsonl"
        try writePairs(data)
        let common = ["--data", data, "--batch", "4", "--trained-layers", "2", "--learning-rate", "3e-4", "--chat", "--save-every", "3", "--seed", "3"]
        let straight = try coderl(["sft", "--out", root + "/a", "--steps", "6"] + common)
        XCTAssertEqual(straight.status, 0, straight.output)
        let curve = losses(straight.output)
        XCTAssertEqual(curve.count, 6, straight.output)
        XCTAssertLessThan(curve.last!, curve.first! * 0.7, "loss should fall: \(curve)")
        XCTAssertTrue(straight.output.contains("top 2 of 30 blocks"), straight.output)

        let first = try coderl(["sft", "--out", root + "/b", "--steps", "6", "--stop-at", "3"] + common)
        XCTAssertEqual(first.status, 0, first.output)
        let resumed = try coderl(["sft", "--resume", root + "/b"])
        XCTAssertEqual(resumed.status, 0, resumed.output)
        XCTAssertTrue(resumed.output.contains("at step 3, example 12"), resumed.output)
        XCTAssertEqual(losses(resumed.output), Array(curve[3...]))
        let a = try Data(contentsOf: URL(fileURLWithPath: root + "/a/step-000006.safetensors"))
        let b = try Data(contentsOf: URL(fileURLWithPath: root + "/b/step-000006.safetensors"))
        XCTAssertTrue(a == b, "resumed run's checkpoint differs from the straight run's")
        XCTAssertEqual(try String(contentsOfFile: root + "/b/latest", encoding: .utf8), "step-000006.safetensors\n")

        let export = try coderl(["export", "--checkpoint", root + "/a/step-000006.safetensors", "--format", "gguf", "--out", root + "/a.gguf"])
        XCTAssertEqual(export.status, 0, export.output)
        let generated = try coderl(["generate", "--model", root + "/a.gguf", "--chat", "Python: define add(a, b).", "-n", "16"])
        XCTAssertEqual(generated.status, 0, generated.output)
        XCTAssertTrue(generated.output.contains("def add(a, b)"), generated.output)
        // The checkpoint itself serves as a model too (tokenizer.gguf beside it).
        let direct = try coderl(["generate", "--model", root + "/a/step-000006.safetensors", "--chat", "Python: define add(a, b).", "-n", "16"])
        XCTAssertEqual(direct.status, 0, direct.output)
        func completion(_ output: String) -> [String] {
            output.components(separatedBy: "\n").filter { !$0.hasPrefix("prompt ") }  // drop the stats line (stderr)
        }
        XCTAssertEqual(completion(direct.output), completion(generated.output))
    }

    func testSFTNamesBadDataAndRefusesAChangedResume() throws {
        let data = root + "/bad.jsonl"
        try "{\"prompt\": \"p\", \"completion\": \"c\"}\n{\"prompt\": \"p\"}\n".write(toFile: data, atomically: true, encoding: .utf8)
        let bad = try coderl(["sft", "--data", data, "--out", root + "/r", "--steps", "1"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.output.contains("bad.jsonl, line 2, field 'completion': missing"), bad.output)
        let noOut = try coderl(["sft", "--data", data])
        XCTAssertNotEqual(noOut.status, 0)
        XCTAssertTrue(noOut.output.contains("--out"), noOut.output)
        let export = try coderl(["export", "--checkpoint", root + "/missing.safetensors", "--format", "gguf", "--out", root + "/x.gguf"])
        XCTAssertNotEqual(export.status, 0)
        XCTAssertTrue(export.output.contains("missing.safetensors"), export.output)
        let format = try coderl(["export", "--checkpoint", data, "--format", "onnx", "--out", root + "/x"])
        XCTAssertTrue(format.output.contains("--format must be gguf or safetensors"), format.output)
    }
}
