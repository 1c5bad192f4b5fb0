import Foundation
import Schema
import XCTest
import Datasets

/// Readers on small datasets written here, in each format's published layout.
final class ReaderTests: XCTestCase {
    var root = ""

    override func setUp() {
        root = NSTemporaryDirectory() + "coderl-datasets-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    func write(_ path: String, _ text: String) throws {
        let url = URL(fileURLWithPath: root + "/" + path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
    }

    func testAPPSFoldersStdinAndCallBasedWithExampleTests() throws {
        try write("apps/train/0001/question.txt", "Add two numbers.")
        try write("apps/train/0001/input_output.json", #"{"inputs": ["1 2\n", ["3 4", "5"]], "outputs": ["3\n", ["7", ""]]}"#)
        try write("apps/train/0001/metadata.json", #"{"difficulty": "interview", "url": "https://codeforces.com/x"}"#)
        try write("apps/train/0001/solutions.json", #"["a, b = map(int, input().split())\nprint(a + b)\n"]"#)
        try write("apps/train/0001/example_input_output.json", #"{"inputs": ["1 2\n"], "outputs": ["3\n"]}"#)
        try write("apps/train/2404/question.txt", "Find the kth missing positive.")
        try write("apps/train/2404/input_output.json", #"{"fn_name": "findKthPositive", "inputs": [[[2, 3, 4, 7, 11], 5]], "outputs": [9]}"#)
        try write("apps/train/2404/starter_code.py", "class Solution:\n    def findKthPositive(self, arr, k):\n")
        try write("apps/train/2404/metadata.json", #"{"difficulty": "introductory"}"#)
        try write("apps/train/2404/example_input_output.json", #"{"inputs": ["arr = [2,3,4,7,11], k = 5"], "outputs": ["9"]}"#)
        try write("apps/test/0203/question.txt", "Echo.")
        try write("apps/test/0203/input_output.json", #"{"inputs": ["a\n"], "outputs": ["a\n"]}"#)
        try write("apps/coderl_test_example_tests.json", #"{"0203": {"inputs": ["b\n"], "outputs": ["b\n"]}, "0204": null}"#)

        let contents = try APPS.read(directory: root + "/apps")
        XCTAssertEqual(contents.errors, [])
        XCTAssertEqual(contents.problems.map(\.problem.id), ["apps/train/0001", "apps/train/2404", "apps/test/0203"])
        let stdin = contents.problems[0]
        XCTAssertEqual(stdin.problem.difficulty, "interview")
        XCTAssertEqual(stdin.problem.url, "https://codeforces.com/x")
        XCTAssertEqual(stdin.problem.solutions.count, 1)
        XCTAssertEqual(stdin.hiddenTests?.format, .stdio)
        XCTAssertEqual(stdin.hiddenTests?.cases.map(\.input), ["1 2\n", "3 4\n5"], "a list of lines is joined like APPS's harness does")
        XCTAssertEqual(stdin.exampleTests?.cases.map(\.expected), ["3\n"])

        let call = contents.problems[1]
        XCTAssertEqual(call.hiddenTests?.format, .call)
        XCTAssertEqual(call.hiddenTests?.entryPoint, "findKthPositive")
        XCTAssertEqual(call.hiddenTests?.cases.first?.input, "[[2, 3, 4, 7, 11], 5]")
        XCTAssertEqual(call.hiddenTests?.cases.first?.expected, "9")
        XCTAssertTrue(call.problem.starterCode.hasPrefix("class Solution"))
        XCTAssertNil(call.exampleTests, "statement-text examples of call problems cannot be run")
        XCTAssertEqual(contents.notes.count, 1)

        XCTAssertEqual(contents.problems[2].exampleTests?.cases.first?.input, "b\n", "CodeRL's merged file supplies test-split examples")

        // A split folder on its own, and one whose name does not say the split.
        XCTAssertEqual(try APPS.read(directory: root + "/apps/test").problems.count, 1)
        try FileManager.default.moveItem(atPath: root + "/apps/train", toPath: root + "/mine")
        XCTAssertThrowsError(try APPS.read(directory: root + "/mine")) { XCTAssertTrue("\($0)".contains("--split"), "\($0)") }
        XCTAssertEqual(try APPS.read(directory: root + "/mine", split: "train").problems.count, 2)
    }

    func testAPPSErrorsNameFileRecordAndField() throws {
        try write("train/0005/question.txt", "Q")
        try write("train/0005/input_output.json", #"{"inputs": ["1"], "outputs": ["1", "2"]}"#)
        try write("train/0006/input_output.json", #"{"inputs": ["1"], "outputs": ["1"]}"#)
        try write("train/0007/question.txt", "Q")
        try write("train/0007/input_output.json", #"{"inputs": ["1"], "outputs": ["1""#)
        let contents = try APPS.read(directory: root + "/train")
        XCTAssertEqual(contents.problems.count, 0)
        let messages = contents.errors.map(\.description)
        XCTAssertEqual(messages.count, 3)
        XCTAssertTrue(messages[0].contains("0005/input_output.json, problem train/0005, field 'outputs': 2 outputs for 1 inputs"), messages[0])
        XCTAssertTrue(messages[1].contains("0006/question.txt, problem train/0006: is missing"), messages[1])
        XCTAssertTrue(messages[2].contains("0007/input_output.json, problem train/0007: invalid JSON"), messages[2])
    }

    func testMBPPFullAndSanitized() throws {
        try write("mbpp.jsonl", """
            {"text": "Remove first and last occurrence.", "code": "def remove_Occ(s,ch): \\r\\n    return s\\r\\n", "task_id": 11, "test_setup_code": "", "test_list": ["assert remove_Occ(\\"hello\\",\\"l\\") == \\"heo\\""], "challenge_test_list": []}
            {"text": "Prompt task.", "code": "def helper(x):\\n    return x\\ndef f(x):\\n    return helper(x)", "task_id": 2, "test_setup_code": "import math", "test_list": ["assert f(1) == 1"], "challenge_test_list": []}
            {"text": "Train task.", "code": "def g(): pass", "task_id": 700, "test_setup_code": "", "test_list": ["print(g())"], "challenge_test_list": []}

            """)
        let full = try MBPP.read(file: root + "/mbpp.jsonl")
        XCTAssertEqual(full.problems.map(\.problem.id), ["mbpp/11", "mbpp/2"])
        XCTAssertEqual(full.problems.map(\.problem.split), ["test", "prompt"])
        XCTAssertEqual(full.problems[0].problem.entryPoint, "remove_Occ")
        XCTAssertEqual(full.problems[0].problem.solutions, ["def remove_Occ(s,ch): \n    return s\n"], "CRLF normalised")
        XCTAssertEqual(full.problems[1].problem.entryPoint, "f", "the function the asserts call, not the first defined")
        XCTAssertEqual(full.problems[1].hiddenTests?.setupCode, "import math")
        XCTAssertEqual(full.problems[0].exampleTests, full.problems[0].hiddenTests, "the prompt's asserts are the tests, as in the paper")
        XCTAssertEqual(full.errors.count, 1)
        XCTAssertTrue(full.errors[0].description.contains("line 3, field 'test_list[0]': is not an assert statement"), "\(full.errors[0])")
        XCTAssertEqual(try MBPP.read(file: root + "/mbpp.jsonl", split: "prompt").problems.map(\.problem.id), ["mbpp/2"])

        try write("sanitized.json", #"[{"source_file": "x", "task_id": 82, "prompt": "Volume of a sphere.", "code": "import math\ndef volume_sphere(r):\n  return 4/3*math.pi*r**3", "test_imports": ["import math"], "test_list": ["assert math.isclose(volume_sphere(10), 4188.79, rel_tol=0.001)"]}]"#)
        let sanitized = try MBPP.read(file: root + "/sanitized.json")
        XCTAssertEqual(sanitized.problems.first?.problem.id, "mbpp-sanitized/82")
        XCTAssertEqual(sanitized.problems.first?.problem.entryPoint, "volume_sphere")
        XCTAssertEqual(sanitized.problems.first?.hiddenTests?.setupCode, "import math")
    }

    func testHumanEvalFromGzipWithDocstringExamples() throws {
        let record = #"{"task_id": "HumanEval/7", "prompt": "from typing import List\n\n\ndef inc(x):\n    \"\"\" Add one.\n    >>> inc(1)\n    2\n    >>> inc(-1)\n    0\n    >>> pair(1)\n    [\"a)\",\n     2]\n    Prose after it.\n    \"\"\"\n", "entry_point": "inc", "canonical_solution": "    return x + 1\n", "test": "def check(candidate):\n    assert candidate(1) == 2\n"}"#
        try write("he.jsonl", record + "\n")
        let gzip = Process()
        gzip.executableURL = URL(fileURLWithPath: "/bin/gzip")
        gzip.arguments = ["-k", root + "/he.jsonl"]
        try gzip.run()
        gzip.waitUntilExit()
        let contents = try HumanEval.read(file: root + "/he.jsonl.gz")
        XCTAssertEqual(contents.errors, [])
        let item = try XCTUnwrap(contents.problems.first)
        XCTAssertEqual(item.problem.id, "humaneval/7")
        XCTAssertEqual(item.problem.solutions.first?.hasSuffix("    return x + 1\n"), true)
        XCTAssertEqual(item.hiddenTests?.format, .humanevalCheck)
        // A value over two lines is joined while its brackets are open (a bracket in a string does not count).
        XCTAssertEqual(item.exampleTests?.cases.map(\.code), ["assert inc(1) == 2", "assert inc(-1) == 0", "assert pair(1) == [\"a)\",\n2]"])
        // The prompt's imports run before the program, as HumanEval's harness runs prompt + completion.
        XCTAssertEqual(item.hiddenTests?.prelude, "from typing import List")
        XCTAssertEqual(item.exampleTests?.prelude, "from typing import List")

        try Data([0x1f, 0x8b, 0x08, 0, 1, 2, 3]).write(to: URL(fileURLWithPath: root + "/broken.jsonl.gz"))
        XCTAssertThrowsError(try HumanEval.read(file: root + "/broken.jsonl.gz")) { error in
            XCTAssertTrue("\(error)".contains("not a valid gzip file"), "\(error)")
        }
    }

    func testCodeContestsStatementExamples() throws {
        let statement = "Sort them.\n\nInput\n\nThe first line...\n\nOutput\n\nPrint...\n\nExamples\n\nInput\n\n\n3\n3 1 2\n\n\nOutput\n\n\n1 2 3\n\n\nInput\n\n\n1\n5\n\n\nOutput\n\n\n5\n\nNote\n\nEasy."
        XCTAssertEqual(CodeContests.statementExamples(statement).map { [$0.0, $0.1] }, [["3\n3 1 2\n", "1 2 3\n"], ["1\n5\n", "5\n"]])
        let line = #"{"index": 4, "name": "1_A. Sort", "difficulty": 7, "time_limit_seconds": 2.0, "description": "Examples\n\nInput\n\n1\n\nOutput\n\n1\n", "tests": {"inputs": ["1\n", "2\n"], "outputs": ["1\n", "2\n"]}}"#
        try write("cc.jsonl", line + "\n")
        let contents = try CodeContests.read(file: root + "/cc.jsonl")
        XCTAssertEqual(contents.problems.first?.problem.id, "codecontests/test/4")
        XCTAssertEqual(contents.problems.first?.problem.difficulty, "7")
        XCTAssertEqual(contents.problems.first?.hiddenTests?.cases.count, 2)
        XCTAssertEqual(contents.problems.first?.exampleTests?.cases.first?.input, "1\n")
    }

    func testGenericJSONLEveryFormat() throws {
        try write("mine.jsonl", """
            {"id": "mine/add", "prompt": "Write add.", "entry_point": "add", "solutions": ["def add(a, b): return a + b"], "tests": {"format": "call", "cases": [{"input": [1, 2], "output": 3}, {"input": [0.5, 0.25], "output": 0.75}]}, "example_tests": {"format": "assert", "cases": [{"code": "assert add(1, 2) == 3"}]}}
            {"id": "mine/echo", "prompt": "Echo.", "split": "test", "tests": {"format": "stdio", "cases": [{"input": "x\\n", "output": "x\\n"}]}}
            {"id": "mine/check", "prompt": "def f(): ...", "tests": {"format": "humaneval", "cases": [{"code": "def check(candidate): assert candidate() is None"}]}}
            {"id": "mine/bad", "prompt": "x", "tests": {"format": "stdio", "cases": [{"input": 1, "output": "1"}]}}
            """)
        let contents = try GenericJSONL.read(file: root + "/mine.jsonl")
        XCTAssertEqual(contents.problems.map(\.problem.id), ["mine/add", "mine/echo", "mine/check"])
        XCTAssertEqual(contents.problems[0].hiddenTests?.cases.map(\.expected), ["3", "0.75"])
        XCTAssertEqual(contents.problems[0].problem.split, "train")
        XCTAssertEqual(contents.problems[1].problem.split, "test")
        XCTAssertEqual(contents.problems[2].hiddenTests?.format, .humanevalCheck)
        XCTAssertEqual(contents.errors.map(\.description), ["\(root)/mine.jsonl, line 4, field 'tests.cases[0].input': expected a string"])
    }

    func testMissingFilesAreNamed() {
        XCTAssertThrowsError(try MBPP.read(file: root + "/nope.jsonl")) { XCTAssertTrue("\($0)".contains("nope.jsonl: no such file"), "\($0)") }
        XCTAssertThrowsError(try APPS.read(directory: root + "/nope")) { XCTAssertTrue("\($0)".contains("is not a directory"), "\($0)") }
    }
}
