import ArgumentParser
import Datasets
import Execution
import Foundation
import Schema
import SwiftProtobuf

/// Sandbox and limit options shared by `coderl exec`, `coderl bench exec` and `executor`.
struct SandboxOptions: ParsableArguments {
    @Option(help: "strict: refuse to run without bubblewrap and user namespaces. relaxed: run with what the machine offers and say so in every verdict.")
    var sandbox: String = "strict"

    @Option(help: "Python interpreter for programs (run as `python3 -I -S`).")
    var python: String = "/usr/bin/python3"

    @Option(help: "Wall-clock (and CPU) seconds per test.")
    var seconds: Double = 4

    @Option(help: "Memory limit per program process, in MiB.")
    var memoryMB: UInt64 = 2048

    @Option(help: "Output limit per test, in MiB.")
    var outputMB: UInt64 = 8

    @Flag(help: "Stop at the first failing test (faster; later tests are reported as not run).")
    var stopAtFirstFailure = false

    func validate() throws {
        guard SandboxMode(rawValue: sandbox) != nil else { throw ValidationError("--sandbox must be strict or relaxed, got '\(sandbox)'") }
        guard seconds > 0, seconds <= 3600 else { throw ValidationError("--seconds must be in (0, 3600]") }
        guard memoryMB >= 64 else { throw ValidationError("--memory-mb must be at least 64") }
    }

    var configuration: SandboxConfiguration {
        var configuration = SandboxConfiguration()
        configuration.mode = SandboxMode(rawValue: sandbox) ?? .strict
        configuration.python = python
        return configuration
    }

    var limits: Limits {
        var limits = Limits()
        limits.secondsPerTest = seconds
        limits.memoryBytes = memoryMB << 20
        limits.outputBytes = outputMB << 20
        limits.stopAtFirstFailure = stopAtFirstFailure
        return limits
    }
}

struct Exec: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run one program against a problem's tests in the sandbox and print the verdict.",
        discussion: """
            Test files by format:
              apps        an APPS input_output.json (stdin/stdout, or call-based with fn_name);
                          --problem DIR reads DIR/input_output.json
              mbpp        mbpp.jsonl or sanitized-mbpp.json; --task picks the record
              humaneval   HumanEval.jsonl(.gz); --task picks the record
              codecontests  a CodeContests jsonl; --task picks the record by name or index
            The format is guessed from the file name when --format is not given.

            Examples:
              coderl exec --program sol.py --problem ../shared/data/apps/test/0001
              coderl exec --program add.py --tests ../shared/data/mbpp/mbpp.jsonl --task 11
              coderl exec --program he0.py --tests HumanEval.jsonl.gz --task 0 --json
            """)

    @Option(help: "The program (a Python file).") var program: String
    @Option(help: "Test file (see above).") var tests: String?
    @Option(help: "APPS problem folder (with input_output.json).") var problem: String?
    @Option(help: "apps, mbpp, humaneval or codecontests.") var format: String?
    @Option(help: "Which record of a multi-problem file: MBPP task id, HumanEval number, CodeContests name or index.") var task: String?
    @Flag(help: "Use the problem's example tests instead of its hidden tests.") var exampleTests = false
    @Flag(help: "Print the verdict as JSON.") var json = false
    @OptionGroup var sandbox: SandboxOptions

    func validate() throws {
        guard (tests == nil) != (problem == nil) else { throw ValidationError("give exactly one of --tests FILE and --problem DIR") }
        if let format, !["apps", "mbpp", "humaneval", "codecontests"].contains(format) {
            throw ValidationError("--format must be apps, mbpp, humaneval or codecontests; got '\(format)'")
        }
    }

    func run() throws {
        let source: String
        do {
            source = try String(contentsOfFile: program, encoding: .utf8)
        } catch {
            // Not UTF-8: hand the bytes over as Latin-1 so the program still runs (and fails to compile, typically).
            guard let data = FileManager.default.contents(atPath: program) else { throw ValidationError("cannot read \(program)") }
            source = String(decoding: data, as: UTF8.self)
        }
        let suite = try loadSuite()
        let executor = try Executor(slots: 1, configuration: sandbox.configuration, name: "coderl-exec")
        let report = try executor.run(program: source, suite: suite, limits: sandbox.limits)
        switch report {
        case .infrastructureError(let reason):
            FileHandle.standardError.write(Data("infrastructure error (not the program's fault): \(reason)\n".utf8))
            throw ExitCode(3)
        case .verdict(let verdict):
            if json {
                var options = JSONEncodingOptions()
                options.alwaysPrintEnumsAsInts = false
                FileHandle.standardOutput.write(Data((try verdict.jsonString(options: options) + "\n").utf8))
            } else {
                FileHandle.standardOutput.write(Data(VerdictText.render(verdict, suite: suite).utf8))
            }
        }
    }

    func loadSuite() throws -> TestSuite {
        if let problem { return try APPS.testSuite(file: problem + "/input_output.json") }
        let file = tests!
        let name = URL(fileURLWithPath: file).lastPathComponent.lowercased()
        let format = self.format ?? (name.contains("input_output") ? "apps" : name.contains("mbpp") ? "mbpp"
            : name.contains("humaneval") ? "humaneval" : name.contains("contests") ? "codecontests" : "")
        let contents: DatasetContents
        switch format {
        case "apps": return try APPS.testSuite(file: file)
        case "mbpp": contents = try MBPP.read(file: file)
        case "humaneval": contents = try HumanEval.read(file: file)
        case "codecontests": contents = try CodeContests.read(file: file, split: "test")
        default: throw ValidationError("cannot tell the format of \(file): give --format")
        }
        let candidates = contents.problems
        let chosen: ImportedProblem?
        if let task {
            chosen = candidates.first { $0.problem.id.hasSuffix("/" + task) || $0.problem.id == task }
                ?? Int(task).flatMap { candidates.indices.contains($0) ? candidates[$0] : nil }
        } else {
            chosen = candidates.count == 1 ? candidates[0] : nil
        }
        guard let chosen else {
            throw ValidationError(task == nil ? "\(file) holds \(candidates.count) problems: pick one with --task" : "no problem '\(task!)' in \(file)")
        }
        guard let suite = exampleTests ? chosen.exampleTests : chosen.hiddenTests else {
            throw ValidationError("\(chosen.problem.id) has no \(exampleTests ? "example" : "hidden") tests")
        }
        return suite
    }
}

/// The verdict as lines of text.
enum VerdictText {
    static func render(_ verdict: Verdict, suite: TestSuite) -> String {
        var lines = ["isolation: \(verdict.isolation)"]
        for test in verdict.tests {
            var line = "test \(test.index)".padding(toLength: 9, withPad: " ", startingAt: 0)
                + statusName(test.status).padding(toLength: 16, withPad: " ", startingAt: 0)
                + String(format: "%7.3fs", test.seconds)
            if !test.errorType.isEmpty { line += "  \(test.errorType): \(test.message)" }
            lines.append(line)
        }
        lines.append(String(format: "verdict: %@ (%d/%d tests passed) in %.3fs, peak memory %.1f MiB",
                            outcomeName(verdict.outcome), verdict.passedTests, verdict.totalTests,
                            verdict.seconds, Double(verdict.peakMemoryBytes) / 1048576))
        if verdict.outcome != .passed, !verdict.errorType.isEmpty {
            lines.append("error: \(verdict.errorType): \(verdict.errorMessage)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func statusName(_ status: TestStatus) -> String {
        switch status {
        case .passed: "passed"
        case .wrongAnswer: "wrong answer"
        case .runtimeError: "runtime error"
        case .timeout: "timeout"
        case .memoryLimit: "memory limit"
        case .outputLimit: "output limit"
        case .notRun: "not run"
        case .compileError: "compile error"
        default: "unknown"
        }
    }

    static func outcomeName(_ outcome: Outcome) -> String {
        switch outcome {
        case .compileError: "compile error"
        case .runtimeError: "runtime error"
        case .failedTest: "failed test"
        case .passed: "passed"
        default: "unknown"
        }
    }
}
