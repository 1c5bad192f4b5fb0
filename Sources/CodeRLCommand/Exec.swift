import ArgumentParser
import Datasets
import Execution
import Foundation
import SandboxOptions
import Schema
import SwiftProtobuf
import Synchronization

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
              coderl exec --program add.py --tests ../shared/data/mbpp/mbpp.jsonl \\
                  --task 11
              coderl exec --program he0.py --tests HumanEval.jsonl.gz --task 0 --json
            """)

    @Option(help: "The program (a Python file).") var program: String?
    @Flag(help: "Instead of --program, run every problem's reference solutions in the test file and report how many pass (checks the harness against the dataset).")
    var references = false
    @Option(help: "With --references: reference solutions tried per problem.") var solutionsPerProblem = 1
    @Option(help: "With --references: slots run at once.") var slots = 2
    @Option(help: "Test file (see above).") var tests: String?
    @Option(help: "APPS problem folder (with input_output.json).") var problem: String?
    @Option(help: "apps, mbpp, humaneval or codecontests.") var format: String?
    @Option(help: "Which record of a multi-problem file: MBPP task id, HumanEval number, CodeContests name or index.") var task: String?
    @Flag(help: "Use the problem's example tests instead of its hidden tests.") var exampleTests = false
    @Flag(help: "Print the verdict as JSON.") var json = false
    @OptionGroup var sandbox: SandboxOptionsGroup

    func validate() throws {
        guard (tests == nil) != (problem == nil) else { throw ValidationError("give exactly one of --tests FILE and --problem DIR") }
        guard references != (program != nil) else { throw ValidationError("give --program FILE, or --references to run the dataset's own solutions") }
        if references && tests == nil { throw ValidationError("--references needs --tests FILE") }
        if let format, !["apps", "mbpp", "humaneval", "codecontests"].contains(format) {
            throw ValidationError("--format must be apps, mbpp, humaneval or codecontests; got '\(format)'")
        }
    }

    func run() throws {
        if references { return try runReferences() }
        guard let program, let data = FileManager.default.contents(atPath: program) else {
            throw ValidationError("cannot read the program \(program ?? "")")
        }
        // Bytes that are not UTF-8 become U+FFFD: such a program then fails to compile, as it would in Python.
        let source = String(decoding: data, as: UTF8.self)
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
                FileHandle.standardOutput.write(Data(VerdictText.render(verdict).utf8))
            }
        }
    }

    func loadProblems(_ file: String) throws -> [ImportedProblem] {
        let contents = try loadContents(file)
        for error in contents.errors {
            FileHandle.standardError.write(Data("skipped: \(error)\n".utf8))
        }
        return contents.problems
    }

    func loadContents(_ file: String) throws -> DatasetContents {
        let name = URL(fileURLWithPath: file).lastPathComponent.lowercased()
        let format = self.format ?? (name.contains("input_output") ? "apps" : name.contains("mbpp") ? "mbpp"
            : name.contains("humaneval") ? "humaneval" : name.contains("contests") ? "codecontests" : "")
        switch format {
        case "apps":
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory), isDirectory.boolValue {
                return try APPS.read(directory: file)
            }
            var contents = DatasetContents()
            contents.problems = [ImportedProblem(problem: Problem(), exampleTests: nil, hiddenTests: try APPS.testSuite(file: file))]
            return contents
        case "mbpp": return try MBPP.read(file: file)
        case "humaneval": return try HumanEval.read(file: file)
        case "codecontests": return try CodeContests.read(file: file, split: "test")
        default: throw ValidationError("cannot tell the format of \(file): give --format")
        }
    }

    func loadSuite() throws -> TestSuite {
        if let problem { return try APPS.testSuite(file: problem + "/input_output.json") }
        let file = tests!
        let candidates = try loadProblems(file)
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

extension Exec {
    /// Runs reference solutions through the executor: the harness must agree with the dataset.
    func runReferences() throws {
        let problems = try loadProblems(tests!)
        let executor = try Executor(slots: slots, configuration: sandbox.configuration, name: "coderl-exec")
        var jobs: [(id: String, program: String, suite: TestSuite)] = []
        for imported in problems {
            guard let suite = exampleTests ? imported.exampleTests : imported.hiddenTests else { continue }
            for solution in imported.problem.solutions.prefix(solutionsPerProblem) {
                jobs.append((imported.problem.id, solution, suite))
            }
        }
        let work = jobs
        let results = Mutex<[(String, ExecutionReport)]>([])
        let limits = sandbox.limits
        let started = Date()
        DispatchQueue.concurrentPerform(iterations: slots) { worker in
            for index in stride(from: worker, to: work.count, by: slots) {
                let job = work[index]
                let report = (try? executor.run(program: job.program, suite: job.suite, limits: limits)) ?? .infrastructureError("invalid job")
                results.withLock { $0.append((job.id, report)) }
            }
        }
        let all = results.withLock { $0 }.sorted { $0.0 < $1.0 }
        var counts: [String: Int] = [:]
        var out = ""
        for (id, report) in all {
            switch report {
            case .verdict(let verdict):
                let outcome = verdict.outcome.name
                counts[outcome, default: 0] += 1
                if verdict.outcome != .passed {
                    out += "\(id): \(outcome) (\(verdict.passedTests)/\(verdict.totalTests)) \(verdict.errorType): \(verdict.errorMessage.prefix(160))\n"
                }
            case .infrastructureError(let reason):
                counts["infrastructure error", default: 0] += 1
                out += "\(id): infrastructure error: \(reason.prefix(200))\n"
            }
        }
        let summary = counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        out += String(format: "%d reference solutions of %d problems: %@ (%.1fs)\n", all.count, problems.count, summary, Date().timeIntervalSince(started))
        FileHandle.standardOutput.write(Data(out.utf8))
    }
}

/// The verdict as lines of text.
enum VerdictText {
    static func render(_ verdict: Verdict) -> String {
        var lines = ["isolation: \(verdict.isolation)"]
        for test in verdict.tests {
            var line = "test \(test.index)".padding(toLength: 9, withPad: " ", startingAt: 0)
                + test.status.name.padding(toLength: 16, withPad: " ", startingAt: 0)
                + String(format: "%7.3fs", test.seconds)
            if !test.errorType.isEmpty { line += "  \(test.errorType): \(test.message)" }
            lines.append(line)
        }
        lines.append(String(format: "verdict: %@ (%d/%d tests passed) in %.3fs, peak memory %.1f MiB",
                            verdict.outcome.name, verdict.passedTests, verdict.totalTests,
                            verdict.seconds, Double(verdict.peakMemoryBytes) / 1048576))
        if verdict.outcome != .passed, !verdict.errorType.isEmpty {
            lines.append("error: \(verdict.errorType): \(verdict.errorMessage)")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
