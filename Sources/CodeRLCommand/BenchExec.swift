import ArgumentParser
import Datasets
import Execution
import Foundation
import SandboxOptions
import Schema
import Synchronization

struct BenchExec: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec",
        abstract: "Sandboxed jobs per second on N slots, against the target (500 jobs/s on 2 slots for trivial programs).",
        discussion: """
            Two workloads: a trivial stdin program (one test) and an MBPP problem (mbpp/11's \
            reference code and its three asserts, from ../shared/data or CODERL_DATA_DIR; a \
            built-in three-assert problem when the data is absent). Reference figures measured \
            on the 2-core development machine: a fresh `python3 -I -S` process about 2,400/s \
            (the floor), a bare warm fork server about 960/s.

            Examples:
              coderl bench exec
              coderl bench exec --slots 4 --duration 10
            """)

    @Option(help: "Slots (jobs at once).") var slots = 2
    // Not `--seconds`: that is the sandbox options' per-test limit (the two names clashed).
    @Option(help: "Seconds per workload.") var duration = 5.0
    @OptionGroup var sandbox: SandboxOptionsGroup

    func validate() throws {
        guard duration > 0 else { throw ValidationError("--duration must be positive, got \(duration)") }
        guard slots >= 1 else { throw ValidationError("--slots must be at least 1, got \(slots)") }
    }

    func run() throws {
        let executor = try Executor(slots: slots, configuration: sandbox.configuration, name: "bench")
        print("isolation: \(executor.isolation); \(slots) slots; \(ProcessInfo.processInfo.activeProcessorCount) cores")
        let trivial = TestSuite.with {
            $0.format = .stdio
            $0.cases = [TestCase.with { $0.input = "21\n"; $0.expected = "42\n" }]
        }
        let (mbppProgram, mbppSuite, mbppName) = try mbpp()
        var lines: [String] = []
        for (name, program, suite) in [("trivial stdin program", "print(2 * int(input()))", trivial), (mbppName, mbppProgram, mbppSuite)] {
            let (rate, outcomes, latency) = try measure(executor, program: program, suite: suite)
            let line = String(format: "%@: %.0f jobs/s (median latency %.1f ms) — %@", name, rate, latency * 1000, outcomes)
            print(line)
            lines.append(line)
        }
        let trivialRate = lines.first.flatMap { Double($0.split(separator: ":")[1].split(separator: " ")[0]) } ?? 0
        print(String(format: "target: >= 500 sandboxed jobs/s on 2 slots for trivial programs: %@ (%.0f/s)", trivialRate >= 500 ? "met" : "NOT met", trivialRate))
    }

    func measure(_ executor: Executor, program: String, suite: TestSuite) throws -> (Double, String, Double) {
        let limits = sandbox.limits
        _ = try executor.run(program: program, suite: suite, limits: limits)   // warm
        let counts = Mutex<[String: Int]>([:])
        let latencies = Mutex<[Double]>([])
        let duration = self.duration
        let slots = self.slots
        let start = DispatchTime.now().uptimeNanoseconds
        DispatchQueue.concurrentPerform(iterations: slots) { _ in
            while Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 < duration {
                let t0 = DispatchTime.now().uptimeNanoseconds
                let report = try? executor.run(program: program, suite: suite, limits: limits)
                let t1 = DispatchTime.now().uptimeNanoseconds
                let key = report?.verdict.map { $0.outcome.name } ?? "infrastructure error"
                counts.withLock { $0[key, default: 0] += 1 }
                latencies.withLock { $0.append(Double(t1 - t0) / 1e9) }
            }
        }
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let all = counts.withLock { $0 }
        let sorted = latencies.withLock { $0 }.sorted()
        let total = all.values.reduce(0, +)
        let summary = all.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        return (Double(total) / elapsed, summary, sorted.isEmpty ? 0 : sorted[sorted.count / 2])
    }

    func mbpp() throws -> (String, TestSuite, String) {
        let root = ProcessInfo.processInfo.environment["CODERL_DATA_DIR"] ?? "../shared/data"
        let file = root + "/mbpp/mbpp.jsonl"
        if FileManager.default.fileExists(atPath: file),
           let problem = try MBPP.read(file: file).problems.first(where: { $0.problem.id == "mbpp/11" }),
           let suite = problem.hiddenTests {
            return (problem.problem.solutions[0], suite, "MBPP problem mbpp/11 (3 asserts)")
        }
        print("note: \(file) not found; using a built-in three-assert problem")
        let suite = TestSuite.with {
            $0.format = .assert
            $0.entryPoint = "remove_occ"
            $0.cases = ["assert remove_occ('hello','l') == 'heo'", "assert remove_occ('abcda','a') == 'bcd'", "assert remove_occ('PHP','P') == 'H'"]
                .map { code in TestCase.with { $0.code = code } }
        }
        return ("def remove_occ(s, ch):\n    return s.replace(ch, '')\n", suite, "built-in MBPP-style problem (3 asserts)")
    }
}
