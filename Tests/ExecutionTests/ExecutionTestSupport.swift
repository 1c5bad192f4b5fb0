import Execution
import Foundation
import Schema
import XCTest

/// One executor for the whole test target (starting slots costs ~0.2 s each).
enum Shared {
    static let executor: Executor = {
        setenv("CODERL_TEST_SECRET", "hunter2-secret-token", 1)   // must never reach a program
        do {
            return try Executor(slots: 2, name: "tests")
        } catch {
            fatalError("the sandbox is not available on this machine (make setup installs bubblewrap): \(error)")
        }
    }()

    static var quick: Limits {
        var limits = Limits()
        limits.secondsPerTest = 2
        limits.memoryBytes = 512 << 20
        limits.outputBytes = 1 << 20
        return limits
    }

    /// `quick` with 15 s per test, for programs whose judged behaviour is not their time but
    /// whose work (walking a tree, building a huge reply) can take over 2 s on a loaded machine.
    static var roomy: Limits {
        var limits = quick
        limits.secondsPerTest = 15
        return limits
    }
}

func stdioSuite(_ cases: [(String, String)]) -> TestSuite {
    TestSuite.with {
        $0.format = .stdio
        $0.cases = cases.map { input, expected in TestCase.with { $0.input = input; $0.expected = expected } }
    }
}

func assertSuite(_ entry: String, _ asserts: [String], setup: String = "") -> TestSuite {
    TestSuite.with {
        $0.format = .assert
        $0.entryPoint = entry
        $0.setupCode = setup
        $0.cases = asserts.map { code in TestCase.with { $0.code = code } }
    }
}

func callSuite(_ entry: String, _ cases: [(String, String)]) -> TestSuite {
    TestSuite.with {
        $0.format = .call
        $0.entryPoint = entry
        $0.cases = cases.map { input, expected in TestCase.with { $0.input = input; $0.expected = expected } }
    }
}

/// Runs a job and returns its verdict; an infrastructure error fails the test (thrown).
func verdict(_ program: String, _ suite: TestSuite, limits: Limits = Shared.quick,
             file: StaticString = #filePath, line: UInt = #line) throws -> Verdict {
    switch try Shared.executor.run(program: program, suite: suite, limits: limits) {
    case .verdict(let verdict):
        XCTAssertEqual(verdict.isolation, "namespaces, seccomp", file: file, line: line)
        return verdict
    case .infrastructureError(let reason):
        throw TestFailure("infrastructure error: \(reason)")
    }
}

extension Verdict {
    var statuses: [TestStatus] { tests.map(\.status) }
}

/// Thrown where a test cannot go on (an infrastructure error): the test fails with the description.
struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
