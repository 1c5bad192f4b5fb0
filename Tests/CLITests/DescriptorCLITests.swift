import Foundation
import Ledger
import Schema
import Wire
import TestSupport
import XCTest
import ZeroMQ

/// A program sees only its own descriptors (stdin, stdout, stderr, the run report, and for
/// call-serving programs the two call pipes) under every command that runs programs: `coderl
/// eval` (which holds a ledger open read-write while programs run), `coderl exec`, and a
/// pipeline's `coderl-executor`; in every test format. A descriptor more fails the tests below,
/// because each program's answer is the list of its open descriptors.
final class DescriptorCLITests: XCTestCase {
    var root = ""

    override func setUp() {
        root = NSTemporaryDirectory() + "coderl-fds-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    func coderl(_ arguments: [String]) throws -> (status: Int32, output: String) { try runCLI("coderl", arguments) }

    static let lister = "import os\ndef open_descriptors():\n    found = []\n    for fd in range(1024):\n        try:\n            os.fstat(fd)\n            found.append(fd)\n        except OSError:\n            pass\n    return found\n"
    static let stdio = lister + "print(*open_descriptors())\n"
    static let calls = lister + "def descriptors():\n    return open_descriptors()\n"
    static let check = "def check(candidate):\n    assert candidate() == [0, 1, 2, 3, 4, 5], candidate()\n"

    func json(_ object: Any) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }

    func testEvalHoldingALedgerGivesProgramsNoneOfItsDescriptors() throws {
        let rows: [[String: Any]] = [
            ["id": "fds/stdio", "prompt": "p", "solutions": [Self.stdio],
             "tests": ["format": "stdio", "cases": [["input": "", "output": "0 1 2 3"]]]],
            ["id": "fds/call", "prompt": "p", "entry_point": "descriptors", "solutions": [Self.calls],
             "tests": ["format": "call", "cases": [["input": [] as [Int], "output": [0, 1, 2, 3, 4, 5]]]]],
            ["id": "fds/assert", "prompt": "p", "entry_point": "descriptors", "solutions": [Self.calls],
             "tests": ["format": "assert", "cases": [["code": "assert descriptors() == [0, 1, 2, 3, 4, 5]"]]]],
            ["id": "fds/check", "prompt": "p", "entry_point": "descriptors", "solutions": [Self.calls],
             "tests": ["format": "humaneval", "cases": [["code": Self.check]]]],
        ]
        let file = root + "/fds.jsonl"
        try rows.map(json).joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let (status, output) = try coderl(["eval", "--dataset", file, "--references", "--samples", "1", "--ledger", root + "/ledger"])
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.contains(", 4 problems"), output)
        let all = output.split(separator: "\n").first { $0.hasPrefix("all ") }.map(String.init) ?? ""
        XCTAssertTrue(all.contains("100.0%"), "every format's program sees exactly its own descriptors:\n\(output)")
    }

    func testExecGivesProgramsOnlyTheirOwnDescriptors() throws {
        // APPS stdin/stdout and call-based problems, an MBPP record, a HumanEval record.
        for (name, io) in [("stdin", ["inputs": [""], "outputs": ["0 1 2 3\n"]] as [String: Any]),
                           ("call", ["inputs": [[] as [Int]], "outputs": [[[0, 1, 2, 3, 4, 5]]], "fn_name": "descriptors"])] {
            let problem = root + "/apps-\(name)"
            try FileManager.default.createDirectory(atPath: problem, withIntermediateDirectories: true)
            try json(io).write(toFile: problem + "/input_output.json", atomically: true, encoding: .utf8)
            let program = root + "/\(name).py"
            try (name == "stdin" ? Self.stdio : Self.calls).write(toFile: program, atomically: true, encoding: .utf8)
            let (status, output) = try coderl(["exec", "--program", program, "--problem", problem, "--json"])
            XCTAssertEqual(status, 0, output)
            XCTAssertTrue(output.contains("OUTCOME_PASSED"), "APPS \(name): \(output)")
        }
        let mbpp = root + "/mbpp.jsonl"
        try json(["task_id": 1, "text": "List descriptors.", "code": Self.calls, "test_setup_code": "",
                  "test_list": ["assert descriptors() == [0, 1, 2, 3, 4, 5]"]]).write(toFile: mbpp, atomically: true, encoding: .utf8)
        let humaneval = root + "/HumanEval.jsonl"
        try json(["task_id": "HumanEval/0", "prompt": "def descriptors():\n    \"\"\"The open descriptors.\"\"\"\n", "canonical_solution": "    pass\n",
                  "entry_point": "descriptors", "test": Self.check]).write(toFile: humaneval, atomically: true, encoding: .utf8)
        let program = root + "/calls.py"
        try Self.calls.write(toFile: program, atomically: true, encoding: .utf8)
        for (file, task) in [(mbpp, "1"), (humaneval, "0")] {
            let (status, output) = try coderl(["exec", "--program", program, "--tests", file, "--task", task, "--json"])
            XCTAssertEqual(status, 0, output)
            XCTAssertTrue(output.contains("OUTCOME_PASSED"), "\(file): \(output)")
        }
        // The same check fails for a program holding one descriptor more.
        let extra = root + "/extra.py"
        try ("import os\nos.open('/dev/null', os.O_RDONLY)\n" + Self.calls).write(toFile: extra, atomically: true, encoding: .utf8)
        let (_, output) = try coderl(["exec", "--program", extra, "--tests", mbpp, "--task", "1", "--json"])
        XCTAssertTrue(output.contains("OUTCOME_FAILED_TEST"), output)
    }

    func testAPipelineExecutorGivesProgramsOnlyTheirOwnDescriptors() throws {
        let context = try Context()
        defer { context.shutdown() }
        let router = try Socket(context, .router)
        try router.bind("tcp://127.0.0.1:*")
        let executor = try startCLI("coderl-executor", ["--connect", router.lastEndpoint!, "--slots", "1", "--name", "fds", "--seconds", "4"])
        defer { executor.terminate(); executor.waitUntilExit() }
        var identity: [UInt8] = []
        func next(_ wanted: (Envelope.OneOf_Body) -> Bool) throws -> Envelope.OneOf_Body {
            let deadline = Date().addingTimeInterval(60)
            while Date() < deadline {
                guard try router.waitForMessage(timeout: .milliseconds(200)) else { continue }
                let frames = try router.receive()
                identity = frames[0]
                let message = try WireCodec.decode(Array(frames.dropFirst()))
                if wanted(message.body) { return message.body }
            }
            throw CLITestFailure("no message from the executor within 60 s")
        }
        _ = try next { if case .workRequest = $0 { true } else { false } }
        let suites: [(String, TestSuite, String)] = [
            ("stdio", TestSuite.with { $0.format = .stdio; $0.cases = [TestCase.with { $0.expected = "0 1 2 3" }] }, Self.stdio),
            ("call", TestSuite.with { $0.format = .call; $0.entryPoint = "descriptors"; $0.cases = [TestCase.with { $0.input = "[]"; $0.expected = "[0, 1, 2, 3, 4, 5]" }] }, Self.calls),
            ("assert", TestSuite.with { $0.format = .assert; $0.entryPoint = "descriptors"; $0.cases = [TestCase.with { $0.code = "assert descriptors() == [0, 1, 2, 3, 4, 5]" }] }, Self.calls),
            ("check", TestSuite.with { $0.format = .humanevalCheck; $0.entryPoint = "descriptors"; $0.cases = [TestCase.with { $0.code = Self.check }] }, Self.calls),
        ]
        for (format, suite, program) in suites {
            let job = ExecutionJob.with {
                $0.jobID = "fds-\(format)"
                $0.problemID = "fds/\(format)"
                $0.program = program
                $0.suite = suite
                $0.suiteHash = Data(try! Ledger.hash(of: suite))
                $0.leaseMs = 60_000
            }
            try router.send([identity] + WireCodec.encode(.job(job), id: job.jobID, sender: "test-dispatcher"))
            let body = try next { if case .result(let r) = $0 { r.jobID == job.jobID } else { false } }
            guard case .result(let result) = body else { return XCTFail("expected a result") }
            XCTAssertEqual(result.infrastructureError, "", format)
            XCTAssertEqual(result.verdict.outcome, .passed, "\(format): \(result.verdict.errorType) \(result.verdict.errorMessage)")
        }
    }
}

/// A wait that ran out: the test fails, naming what it waited for.
private struct CLITestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
