import Foundation
import Datasets
import Schema

/// A job as the harness reads it: program, limits and per test its input and answer (expected
/// output, or assert or check code). Only the trusted evaluator reads it; programs get their
/// source and stdin from the sandbox init, which never sees a job.
struct JobRequest: Sendable {
    let fields: [(String, JSON)]
    let tests: [JSON]
    let deadlineSeconds: Double

    var json: JSON { .object(fields + [("tests", .array(tests))]) }

    static func make(id: String, program: String, suite: TestSuite, limits: Limits) throws(InvalidJob) -> JobRequest {
        guard !suite.cases.isEmpty else { throw InvalidJob(reason: "the test suite has no tests") }
        guard limits.secondsPerTest > 0, limits.secondsPerTest <= 3600 else {
            throw InvalidJob(reason: "seconds per test must be in (0, 3600], got \(limits.secondsPerTest)")
        }
        // Below these a Python process cannot start, and every verdict would be a false failure.
        guard limits.memoryBytes >= 64 << 20 else { throw InvalidJob(reason: "memory limit \(limits.memoryBytes) bytes is below 64 MiB") }
        guard limits.processes >= 1 else { throw InvalidJob(reason: "the process limit must be at least 1") }
        guard limits.fileSizeBytes >= 1 << 20 else { throw InvalidJob(reason: "file size limit \(limits.fileSizeBytes) bytes is below 1 MiB") }
        let format: String
        var tests: [JSON] = []
        switch suite.format {
        case .stdio:
            format = "stdio"
            tests = suite.cases.map { .object([("input", .string($0.input)), ("expected", .string($0.expected))]) }
        case .call:
            format = "call"
            guard !suite.entryPoint.isEmpty else { throw InvalidJob(reason: "a call-based suite needs the function name (entry_point)") }
            for (i, test) in suite.cases.enumerated() {
                guard case .array = try? JSON.parse(test.input) else {
                    throw InvalidJob(reason: "test \(i): input must be a JSON array of arguments, found '\(test.input.prefix(60))'")
                }
                guard (try? JSON.parse(test.expected)) != nil else {
                    throw InvalidJob(reason: "test \(i): expected must be a JSON value, found '\(test.expected.prefix(60))'")
                }
                tests.append(.object([("input", .string(test.input)), ("expected", .string(test.expected))]))
            }
        case .assert, .humanevalCheck:
            format = suite.format == .assert ? "assert" : "check"
            if suite.format == .humanevalCheck, suite.entryPoint.isEmpty {
                throw InvalidJob(reason: "a HumanEval check suite needs the entry point")
            }
            for (i, test) in suite.cases.enumerated() where test.code.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                throw InvalidJob(reason: "test \(i) has no code")
            }
            tests = suite.cases.map { .object([("code", .string($0.code))]) }
        case .unspecified, .UNRECOGNIZED:
            throw InvalidJob(reason: "the test suite has no format")
        }
        let limitsJSON: JSON = .object([
            ("seconds", .number(String(limits.secondsPerTest))),
            ("cpu_seconds", .number(String(limits.secondsPerTest))),
            ("memory", .number(String(limits.memoryBytes))),
            ("output", .number(String(limits.outputBytes))),
            ("file_size", .number(String(limits.fileSizeBytes))),
            ("processes", .number(String(limits.processes))),
            ("scratch", .number(String(limits.fileSizeBytes))),
        ])
        let fields: [(String, JSON)] = [
            ("id", .string(id)),
            ("format", .string(format)),
            ("program", .string(program)),
            ("entry", .string(suite.entryPoint)),
            ("setup", .string(suite.setupCode)),
            ("prelude", .string(suite.prelude)),
            ("helpers", .string(suite.helperCode)),
            ("limits", limitsJSON),
            ("stop_at_first_failure", .bool(limits.stopAtFirstFailure)),
        ]
        // Each test may take its limit plus sandbox set-up; the slot is declared stuck after.
        let deadline = 30 + Double(suite.cases.count) * (limits.secondsPerTest + 2)
        return JobRequest(fields: fields, tests: tests, deadlineSeconds: deadline)
    }
}

/// Turns the harness's answer into a verdict. The outcome follows CodeRL (and APPS's
/// harness): a compile error anywhere wins, then any runtime error (timeouts, memory and
/// output limits included), then any failed test; passed means every test passed.
enum JobAnswer {
    /// The test results of an answer.
    static func tests(of answer: JSON) throws(HarnessFailure) -> [JSON] {
        guard let tests = answer["tests"]?.arrayValue else { throw HarnessFailure("the sandbox's answer has no test results: \(answer.text.prefix(200))") }
        return tests
    }

    static func verdict(from tests: [JSON], suite: TestSuite, limits: Limits, isolation: String, executor: String) throws(HarnessFailure) -> ExecutionReport {
        var verdict = Verdict()
        verdict.isolation = isolation
        verdict.executor = executor
        verdict.totalTests = UInt32(suite.cases.count)
        var results = (0..<suite.cases.count).map { i in TestResult.with { $0.index = UInt32(i); $0.status = .notRun } }
        var peakKB = 0.0
        for test in tests {
            guard let index = test["index"]?.intValue, results.indices.contains(index),
                  let status = test["status"]?.stringValue else {
                throw HarnessFailure("malformed test result: \(test.text.prefix(200))")
            }
            var result = TestResult()
            result.index = UInt32(index)
            result.status = try testStatus(status)
            // Bounded again here: the evaluator bounds them, and a verdict is stored and sent.
            result.errorType = String((test["type"]?.stringValue ?? "").prefix(120))
            result.message = String((test["message"]?.stringValue ?? "").prefix(1000))
            result.seconds = test["seconds"]?.doubleValue ?? 0
            peakKB = max(peakKB, test["maxrss_kb"]?.doubleValue ?? 0)
            results[index] = result
        }
        verdict.tests = results
        verdict.passedTests = UInt32(results.count { $0.status == .passed })
        verdict.seconds = results.reduce(0) { $0 + $1.seconds }
        verdict.peakMemoryBytes = UInt64(peakKB * 1024)
        let classes = results.map { outcome(of: $0.status) }
        verdict.outcome = [Outcome.compileError, .runtimeError, .failedTest].first(where: classes.contains) ?? .passed
        if verdict.outcome != .passed {
            // The error that decided the outcome, for repair prompts (a test not run has none).
            let deciding = results.first { outcome(of: $0.status) == verdict.outcome && $0.status != .notRun }
            verdict.errorType = deciding?.errorType ?? ""
            verdict.errorMessage = deciding?.message ?? ""
        }
        return .verdict(verdict)
    }

    /// A test whose program was killed (SIGKILL, not for CPU time) while the job's cgroup
    /// recorded an out-of-memory kill: a memory-limit failure of the job as a whole.
    static func capExceeded(_ test: JSON, bytes: UInt64) -> JSON {
        guard test["status"]?.stringValue == "error", test["type"]?.stringValue == "Signal",
              test["message"]?.stringValue?.contains("SIGKILL") == true, case .object(let fields) = test else { return test }
        let message = "the job's memory cap of \(bytes >> 20) MiB was exceeded (its processes, memory files and scratch files together)"
        return .object(fields.map { key, value in
            switch key {
            case "status": (key, .string("memory"))
            case "type": (key, .string("MemoryError"))
            case "message": (key, .string(message))
            default: (key, value)
            }
        })
    }

    /// The outcome class a test's status stands for.
    static func outcome(of status: TestStatus) -> Outcome {
        switch status {
        case .passed: .passed
        case .compileError: .compileError
        case .runtimeError, .timeout, .memoryLimit, .outputLimit: .runtimeError
        default: .failedTest     // a wrong answer, or not run after an earlier failure
        }
    }

    static func testStatus(_ name: String) throws(HarnessFailure) -> TestStatus {
        switch name {
        case "passed": .passed
        case "wrong": .wrongAnswer
        case "error": .runtimeError
        case "timeout": .timeout
        case "memory": .memoryLimit
        case "output": .outputLimit
        case "compile": .compileError
        default: throw HarnessFailure("unknown test status '\(name)'")
        }
    }
}
