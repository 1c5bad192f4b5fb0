import Execution
import Foundation
import Schema
import XCTest

/// Every test format, the outcome classes, and the output comparison rules.
final class FormatTests: XCTestCase {
    func testStdinProgramsAreJudgedPerTest() throws {
        let v = try verdict("n = int(input())\nprint(n * 2)\n", stdioSuite([("21\n", "42\n"), ("1\n", "3\n"), ("5", "10")]))
        XCTAssertEqual(v.statuses, [.passed, .wrongAnswer, .passed])
        XCTAssertEqual(v.outcome, .failedTest)
        XCTAssertEqual(v.passedTests, 2)
        XCTAssertEqual(v.totalTests, 3)
        XCTAssertGreaterThan(v.peakMemoryBytes, 1 << 20)
        XCTAssertTrue(v.errorMessage.contains("expected '3', got '2'"), v.errorMessage)
    }

    func testOutputComparisonFollowsTheDocumentedTolerances() throws {
        let echo = "import sys\nsys.stdout.write(sys.stdin.read())\n"
        let cases: [(String, String, TestStatus)] = [
            ("1 2 3\n", "1 2 3", .passed),                  // trailing newline
            ("  1   2 3  \r\n\n\n", "1 2 3\n", .passed),    // spaces around and between tokens, CRLF, blank lines
            ("a\n\nb\n", "a\nb\n", .passed),                // blank lines dropped
            ("0.3333333\n", "0.33333333333", .passed),      // floats within 1e-5 relative
            ("0.334\n", "0.3333333", .wrongAnswer),         // ... and not beyond
            ("YES\n", "yes\n", .wrongAnswer),               // case matters
            ("1 2\n", "1\n2\n", .wrongAnswer),              // line structure matters
            ("2 1\n", "1 2\n", .wrongAnswer),               // token order matters (APPS's set comparison is not used)
            ("nan\n", "nan\n", .passed),                    // textually equal
            ("inf\n", "1e308\n", .wrongAnswer),
        ]
        let v = try verdict(echo, stdioSuite(cases.map { ($0.0, $0.1) }))
        XCTAssertEqual(v.statuses, cases.map(\.2))
    }

    func testCallBasedProblemsCompareReturnValuesAsAPPSDoes() throws {
        let program = "def f(a, b):\n    return (a + b, a * b)\n"
        let v = try verdict(program, callSuite("f", [("[2, 3]", "[5, 6]"), ("[2, 3]", "[[5, 6]]"), ("[1, 1]", "[2, 2]"), ("[1, 1]", "[2, 1]")]))
        XCTAssertEqual(v.statuses, [.passed, .passed, .wrongAnswer, .passed])
        let solution = "class Solution:\n    def twoSum(self, nums, target):\n        seen = {}\n        for i, x in enumerate(nums):\n            if target - x in seen:\n                return [seen[target - x], i]\n            seen[x] = i\n"
        let w = try verdict(solution, callSuite("twoSum", [("[[2, 7, 11, 15], 9]", "[0, 1]"), ("[[3, 3], 6]", "[0, 1]"), ("[[1, 2], 4]", "[0, 1]")]))
        XCTAssertEqual(w.statuses, [.passed, .passed, .wrongAnswer])
    }

    func testAPPSPreludeIsAvailable() throws {
        var suite = callSuite("f", [("[[3, 1, 2]]", "[1, 2, 3]")])
        suite.prelude = "from typing import List\n"
        let v = try verdict("def f(xs: List[int]) -> List[int]:\n    return sorted(xs)\n", suite)
        XCTAssertEqual(v.outcome, .passed)
    }

    func testMBPPAssertsWithSetupCodeAndProgramClasses() throws {
        let program = """
            class Node:
                def __init__(self, v):
                    self.v = v
                    self.left = None
            def depth(n):
                return 0 if n is None else 1 + depth(n.left)
            """
        let suite = assertSuite("depth", ["assert depth(root) == 2", "assert depth(None) == 0", "assert depth(root) == 3"],
                                setup: "root = Node(1)\nroot.left = Node(2)\n")
        let v = try verdict(program, suite)
        XCTAssertEqual(v.statuses, [.passed, .passed, .wrongAnswer])
        XCTAssertEqual(v.errorType, "AssertionError")
    }

    func testAssertsMayPassBuiltinsAndUseStandardModules() throws {
        let program = "import math\ndef keep(xs, t):\n    return [x for x in xs if not isinstance(x, t)]\ndef area(r):\n    return math.pi * r * r\n"
        let v = try verdict(program, assertSuite("keep", [
            "assert keep((4, 5, 7.7, 'a'), int) == [7.7, 'a']",
            "assert math.isclose(area(2), 12.566, rel_tol=0.001)",
        ]))
        XCTAssertEqual(v.outcome, .passed, "\(v.tests)")
    }

    func testHumanEvalCheckUsesTrustedHelpersFromThePrompt() throws {
        // HumanEval/38-style: the check calls encode_cyclic from the prompt. The program's
        // own encode_cyclic is an identity (which would let an identity decoder pass): the
        // trusted helper must be the one used.
        let prompt = "def encode_cyclic(s):\n    return s[1:] + s[:1]\n\ndef decode_cyclic(s):\n    \"\"\"decode\"\"\"\n"
        let test = "def check(candidate):\n    for s in ['abc', 'hello', 'x']:\n        assert candidate(encode_cyclic(s)) == s\n"
        var suite = TestSuite.with {
            $0.format = .humanevalCheck
            $0.entryPoint = "decode_cyclic"
            $0.helperCode = prompt
            $0.cases = [TestCase.with { $0.code = test }]
        }
        let honest = "def encode_cyclic(s):\n    return s[1:] + s[:1]\n\ndef decode_cyclic(s):\n    return s[-1:] + s[:-1]\n"
        XCTAssertEqual(try verdict(honest, suite).outcome, .passed)
        let gaming = "def encode_cyclic(s):\n    return s\n\ndef decode_cyclic(s):\n    return s\n"
        XCTAssertEqual(try verdict(gaming, suite).outcome, .failedTest)
        // Without trusted helpers, names the check uses fall back to the program's own.
        suite.helperCode = ""
        XCTAssertEqual(try verdict(honest, suite).outcome, .passed)
    }

    func testOutcomeClassesFollowCodeRL() throws {
        let suite = assertSuite("f", ["assert f(1) == 2", "assert f(2) == 4"])
        XCTAssertEqual(try verdict("def f(x) return x", suite).outcome, .compileError)
        let compile = try verdict("def f(x) return x", suite)
        XCTAssertEqual(compile.statuses, [.compileError, .compileError])
        XCTAssertEqual(compile.errorType, "SyntaxError")
        XCTAssertEqual(try verdict("def f(x):\n    return 2 * x\n", suite).outcome, .passed)
        XCTAssertEqual(try verdict("def f(x):\n    return x + 1\n", suite).outcome, .failedTest)
        let runtime = try verdict("def f(x):\n    return 2 * x if x == 1 else 1 / 0\n", suite)
        XCTAssertEqual(runtime.outcome, .runtimeError)
        XCTAssertEqual(runtime.statuses, [.passed, .runtimeError])
        XCTAssertEqual(runtime.errorType, "ZeroDivisionError")
        XCTAssertEqual(runtime.errorMessage, "division by zero")
        // A runtime error outranks a wrong answer, whatever the order.
        let mixed = try verdict("def f(x):\n    return 3 if x == 1 else 1 / 0\n", suite)
        XCTAssertEqual(mixed.outcome, .runtimeError)
        XCTAssertEqual(mixed.statuses, [.wrongAnswer, .runtimeError])
    }

    func testStopAtFirstFailureSkipsTheRest() throws {
        var limits = Shared.quick
        limits.stopAtFirstFailure = true
        let v = try verdict("print(input())", stdioSuite([("1", "1"), ("2", "3"), ("4", "4")]), limits: limits)
        XCTAssertEqual(v.statuses, [.passed, .wrongAnswer, .notRun])
        XCTAssertEqual(v.outcome, .failedTest)
        let all = try verdict("print(input())", stdioSuite([("1", "1"), ("2", "3"), ("4", "4")]))
        XCTAssertEqual(all.statuses, [.passed, .wrongAnswer, .passed])
    }

    func testTestsAfterACrashOrTimeoutStillRun() throws {
        // Each timeout or crash ends a sandbox; the remaining tests run in a fresh one.
        let program = "n = int(input())\nif n == 2:\n    while True: pass\nif n == 3:\n    import os; os.abort()\nprint(n)"
        let v = try verdict(program, stdioSuite([("1", "1"), ("2", "2"), ("3", "3"), ("4", "4"), ("5", "6")]))
        XCTAssertEqual(v.statuses, [.passed, .timeout, .runtimeError, .passed, .wrongAnswer])
        let calls = "import time\ndef f(n):\n    if n == 2:\n        time.sleep(100)\n    if n == 3:\n        import os; os._exit(1)\n    return n\n"
        let w = try verdict(calls, assertSuite("f", ["assert f(1) == 1", "assert f(2) == 2", "assert f(3) == 3", "assert f(4) == 4"]))
        XCTAssertEqual(w.statuses, [.passed, .timeout, .runtimeError, .passed])
    }

    func testInvalidJobsAreRefusedWithTheReason() {
        XCTAssertThrowsError(try Shared.executor.run(program: "pass", suite: TestSuite())) { error in
            XCTAssertTrue("\(error)".contains("no tests"), "\(error)")
        }
        XCTAssertThrowsError(try Shared.executor.run(program: "pass", suite: callSuite("f", [("not json", "1")]))) { error in
            XCTAssertTrue("\(error)".contains("test 0: input must be a JSON array"), "\(error)")
        }
        XCTAssertThrowsError(try Shared.executor.run(program: "pass", suite: callSuite("", [("[]", "1")]))) { error in
            XCTAssertTrue("\(error)".contains("entry_point"), "\(error)")
        }
        var tiny = Limits()
        tiny.memoryBytes = 1000
        XCTAssertThrowsError(try Shared.executor.run(program: "pass", suite: stdioSuite([("", "")]), limits: tiny)) { error in
            XCTAssertTrue("\(error)".contains("below 64 MiB"), "\(error)")
        }
    }

    func testSlotsRunJobsConcurrently() throws {
        let results = ResultsBox()
        DispatchQueue.concurrentPerform(iterations: 8) { i in
            let report = try? Shared.executor.run(program: "print(int(input()) + 1)", suite: stdioSuite([("\(i)", "\(i + 1)")]))
            results.add(report?.verdict?.outcome)
        }
        XCTAssertEqual(results.values, Array(repeating: .passed, count: 8))
    }
}

final class ResultsBox: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [Outcome?] = []
    func add(_ item: Outcome?) { lock.lock(); items.append(item); lock.unlock() }
    var values: [Outcome?] { lock.lock(); defer { lock.unlock() }; return items }
}
