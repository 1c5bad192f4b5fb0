import CodeRL
import Foundation
import Ledger
import Schema
import TestSupport
import XCTest

/// `coderl compare` on two evaluations stored in a ledger.
final class EvalCompareTests: XCTestCase {
    func testCompareReportsThePairedDifference() throws {
        let dir = NSTemporaryDirectory() + "coderl-compare-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do {
            let ledger = try Ledger(path: dir)
            for (id, solved) in [("base", Set(0..<20)), ("tuned", Set(5..<40))] {
                try ledger.saveEval(EvalRun.with { $0.id = id; $0.dataset = "mine"; $0.problems = 60 })
                for i in 0..<60 {
                    try ledger.saveEvalResult(EvalProblemResult.with {
                        $0.evalID = id
                        $0.problemID = "mine/\(i)"
                        $0.pool = 1
                        $0.correct = solved.contains(i) ? 1 : 0
                    })
                }
            }
            // A problem only one evaluation scored is left out.
            try ledger.saveEvalResult(EvalProblemResult.with { $0.evalID = "tuned"; $0.problemID = "mine/extra"; $0.pool = 1; $0.correct = 1 })
        }
        let result = try runCLI("coderl", ["compare", "base", "tuned", "--ledger", dir])
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.output.contains("60 problems scored by both (0 only in A, 1 only in B: not compared)"), result.output)
        XCTAssertTrue(result.output.contains("pass@1: A 33.3%, B 58.3%, difference +25.0 points"), result.output)
        // Gained 20..39 (20 problems), lost 0..4 (5): McNemar exact p for (20, 5).
        XCTAssertTrue(result.output.contains("B only (gained) 20, A only (lost) 5"), result.output)
        XCTAssertTrue(result.output.contains(String(format: "McNemar exact p = %.4g", PairedComparison.mcNemarExact(20, 5))), result.output)
        XCTAssertTrue(result.output.contains("lost: mine/0 mine/1 mine/2 mine/3 mine/4"), result.output)
        let json = try runCLI("coderl", ["compare", "base", "tuned", "--ledger", dir, "--json"])
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any])
        XCTAssertEqual(object["problems"] as? Int, 60)
        XCTAssertEqual((object["gained"] as? [String])?.count, 20)
        // The same pair named LEDGER:ID (evaluations kept in different ledgers compare too).
        let named = try runCLI("coderl", ["compare", "\(dir):base", "\(dir):tuned"])
        XCTAssertTrue(named.output.contains("pass@1: A 33.3%, B 58.3%, difference +25.0 points"), named.output)
        let missing = try runCLI("coderl", ["compare", "base", "nope", "--ledger", dir])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.output.contains("no evaluation 'nope'"), missing.output)
    }

    /// A pipeline run's held-out evaluations (eval requests named eval-<point>-v<version>-<i>)
    /// compared across two run directories, the latest version of a point chosen.
    func testCompareRunsByTheirHeldOutEvaluations() throws {
        let root = NSTemporaryDirectory() + "coderl-compare-runs-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        // `cut`: problems whose greedy program ran into the run's limit of 20 tokens.
        func run(_ name: String, _ evaluations: [(String, Set<Int>, cut: Set<Int>)]) throws {
            let ledger = try Ledger(path: "\(root)/\(name)/ledger")
            try "sampling: {max_new_tokens: 20}\n".write(toFile: "\(root)/\(name)/pipeline.yaml", atomically: true, encoding: .utf8)
            for (tag, solved, cut) in evaluations {
                _ = try ledger.append((0..<30).map { i in
                    Rollout.with {
                        $0.requestID = "eval-\(tag)-\(i)"
                        $0.purpose = "eval"
                        $0.problemID = "p/\(i)"
                        $0.baseline = true
                        $0.state = .labeled
                        $0.verdict.outcome = solved.contains(i) ? .passed : .failedTest
                        $0.programTokens = [UInt32](repeating: 7, count: cut.contains(i) ? 20 : 5)
                    }
                })
            }
        }
        try run("a", [("before-v0", Set(0..<10), []), ("after-v5", Set(0..<12), Set(12..<18))])
        // An older "after" (v3) and the latest (v9): the latest counts.
        try run("c", [("before-v0", Set(0..<10), []), ("after-v3", [], []), ("after-v9", Set(2..<18), [0, 1])])
        let result = try runCLI("coderl", ["compare", "\(root)/a:after", "\(root)/c:after"])
        XCTAssertEqual(result.status, 0, result.output)
        // A solves 0..11, C 2..17: gained 12..17 (6), lost 0, 1 (2).
        XCTAssertTrue(result.output.contains("30 problems scored by both"), result.output)
        XCTAssertTrue(result.output.contains("pass@1: A 40.0%, B 53.3%"), result.output)
        XCTAssertTrue(result.output.contains("B only (gained) 6, A only (lost) 2"), result.output)
        // Every problem gained was one A's program ran past the limit on; both lost, C's.
        XCTAssertTrue(result.output.contains("greedy programs: median 5 tokens in A, 5 in B; cut off at the run's limit of 20 tokens: A 6, B 2; "
                                             + "gained problems whose A program was cut off 6 of 6, lost problems whose B program was cut off 2 of 2"),
                      result.output)
        let older = try runCLI("coderl", ["compare", "\(root)/c:before", "\(root)/c:after-v3"])
        XCTAssertTrue(older.output.contains("pass@1: A 33.3%, B 0.0%"), older.output)
        let missing = try runCLI("coderl", ["compare", "\(root)/a:warm", "\(root)/c:after"])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.output.contains("no held-out evaluation 'warm'") && missing.output.contains("before-v0, after-v5"), missing.output)
    }
}
