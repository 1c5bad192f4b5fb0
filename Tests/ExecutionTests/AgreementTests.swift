import Datasets
import Execution
import Foundation
import Schema
import XCTest

/// The harness against the datasets' own harnesses: reference solutions pass, obviously
/// wrong programs fail. Reads ../shared/data (skipped, with a message, when absent).
final class AgreementTests: XCTestCase {
    var data: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../../shared/data").standardizedFileURL.path
    }

    func requireData() throws {
        guard FileManager.default.fileExists(atPath: data) else {
            print("AgreementTests: \(data) is absent; the agreement checks are skipped")
            throw XCTSkip("shared datasets absent at \(data)")
        }
    }

    /// Runs every job on both slots; returns the verdicts by problem id.
    func run(_ jobs: [(String, String, TestSuite)], seconds: Double = 10) -> [(String, ExecutionReport)] {
        var settings = Limits()
        settings.secondsPerTest = seconds
        let limits = settings
        let box = ReportsBox()
        DispatchQueue.concurrentPerform(iterations: 2) { worker in
            for index in stride(from: worker, to: jobs.count, by: 2) {
                let (id, program, suite) = jobs[index]
                let report = (try? Shared.executor.run(program: program, suite: suite, limits: limits)) ?? .infrastructureError("refused")
                box.add(id, report)
            }
        }
        return box.values
    }

    func outcomes(_ reports: [(String, ExecutionReport)]) -> [String: [String]] {
        var byOutcome: [String: [String]] = [:]
        for (id, report) in reports {
            let key = report.verdict.map { "\($0.outcome)" } ?? "infrastructure"
            byOutcome[key, default: []].append(id)
        }
        return byOutcome.mapValues { $0.sorted() }
    }

    func testHumanEvalCanonicalSolutionsAllPassAndEmptyBodiesFail() throws {
        try requireData()
        let problems = try HumanEval.read(file: data + "/humaneval/HumanEval.jsonl.gz").problems
        XCTAssertEqual(problems.count, 164)
        let canonical = outcomes(run(problems.map { ($0.problem.id, $0.problem.solutions[0], $0.hiddenTests!) }))
        XCTAssertEqual(canonical["passed"]?.count, 164, "\(canonical.filter { $0.key != "passed" })")
        // The prompt alone (a docstring body returning None) must fail every problem.
        let empty = outcomes(run(problems.map { ($0.problem.id, $0.problem.prompt + "    pass\n", $0.hiddenTests!) }))
        XCTAssertNil(empty["passed"], "\(empty["passed"] ?? [])")
        XCTAssertNil(empty["infrastructure"])
    }

    func testMBPPReferenceCodePassesAndWrongCodeFails() throws {
        try requireData()
        let problems = try MBPP.read(file: data + "/mbpp/mbpp.jsonl").problems
        XCTAssertEqual(problems.count, 974)
        // 20 s per test: mbpp/123's reference takes 4-6 s on a quiet 2-core machine.
        let reference = outcomes(run(problems.map { ($0.problem.id, $0.problem.solutions[0], $0.hiddenTests!) }, seconds: 20))
        XCTAssertEqual(reference["passed"]?.count, 974, "\(reference.filter { $0.key != "passed" })")
        let wrong = outcomes(run(problems.prefix(200).map { p in
            (p.problem.id, "def \(p.problem.entryPoint)(*args, **kwargs):\n    return None\n", p.hiddenTests!)
        }))
        XCTAssertNil(wrong["passed"], "\(wrong["passed"] ?? [])")
    }

    func testAPPSSolutionsAgreeWithTheOriginalHarness() throws {
        try requireData()
        let problems = try APPS.read(directory: data + "/apps").problems
        let jobs = problems.compactMap { p in p.problem.solutions.first.map { (p.problem.id, $0, p.hiddenTests!) } }
        let reference = outcomes(run(jobs, seconds: 4))
        // apps/train/2386 accepts any valid answer (a special judge); its reference prints
        // another valid one, which exact comparison (ours and APPS's) rejects.
        XCTAssertEqual(reference.filter { $0.key != "passed" }, ["failedTest": ["apps/train/2386"]])
        XCTAssertEqual(reference["passed"]?.count, jobs.count - 1)
        let wrong = outcomes(run(problems.map { p in
            (p.problem.id, p.hiddenTests!.format == .call ? "def \(p.problem.entryPoint)(*a):\n    return None\nclass Solution:\n    def \(p.problem.entryPoint)(self, *a):\n        return None\n" : "print('wrong')", p.hiddenTests!)
        }, seconds: 4))
        XCTAssertNil(wrong["passed"], "\(wrong["passed"] ?? [])")
    }

    func testCodeContestsWrongProgramsFail() throws {
        try requireData()
        let problems = try CodeContests.read(file: data + "/codecontests/codecontests_test.jsonl", split: "test").problems
        XCTAssertEqual(problems.count, 165)
        // The subset carries no solutions: an echo and a silent program must fail everywhere.
        let echo = outcomes(run(problems.map { ($0.problem.id, "import sys\nsys.stdout.write(sys.stdin.read())", $0.hiddenTests!) }, seconds: 4))
        XCTAssertNil(echo["passed"], "\(echo["passed"] ?? [])")
        XCTAssertNil(echo["infrastructure"])
    }
}

final class ReportsBox: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [(String, ExecutionReport)] = []
    func add(_ id: String, _ report: ExecutionReport) { lock.lock(); items.append((id, report)); lock.unlock() }
    var values: [(String, ExecutionReport)] { lock.lock(); defer { lock.unlock() }; return items }
}
