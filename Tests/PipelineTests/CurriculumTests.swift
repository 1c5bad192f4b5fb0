import Pipeline
import Schema
import Foundation
import XCTest

final class CurriculumTests: XCTestCase {
    /// Problem ids of a stream over `n` problems: position p names problem p mod n.
    private func id(_ n: Int) -> (Int) -> String { { "p\($0 % n)" } }

    func testRecordGroupsRolloutsByRequestAndProblemInLedgerOrder() {
        func rollout(_ request: String, _ problem: String, _ outcome: Outcome) -> Rollout {
            Rollout.with { $0.requestID = request; $0.problemID = problem; $0.verdict.outcome = outcome }
        }
        var c = Curriculum()
        c.record([rollout("r1", "p0", .passed), rollout("r1", "p0", .failedTest), rollout("r1", "p0", .passed),
                  rollout("r2", "p1", .compileError), rollout("r2", "p1", .failedTest),
                  rollout("r3", "p0", .passed), rollout("r3", "p0", .passed)])
        XCTAssertEqual(c.seen["p0"].map { [$0.samples, $0.passed] }, [2, 2], "the later group of p0 wins")
        XCTAssertEqual(c.seen["p1"].map { [$0.samples, $0.passed] }, [2, 0])
        XCTAssertEqual(c.frontierCount, 0)
        c.record([rollout("r4", "p1", .passed), rollout("r4", "p1", .runtimeError)])
        XCTAssertEqual(c.frontierCount, 1)
        XCTAssertTrue(c.eligible("p1"))
        XCTAssertFalse(c.eligible("p0"))
        XCTAssertTrue(c.eligible("never-seen"))
    }

    func testFrontierPassesOverProblemsWhoseLastGroupCarriedNoSignal() {
        var c = Curriculum()
        // The first pass takes every problem: nothing is known yet.
        XCTAssertEqual((0..<5).map { _ in c.next(count: 5, id: id(5)) }, [0, 1, 2, 3, 4])
        c.record(problem: "p0", samples: 8, passed: 0)   // all failed
        c.record(problem: "p1", samples: 8, passed: 3)   // mixed
        c.record(problem: "p2", samples: 8, passed: 8)   // all passed
        c.record(problem: "p3", samples: 8, passed: 1)   // mixed
        // p4 not recorded yet (its rollouts not trained on): still taken.
        XCTAssertEqual(c.frontierCount, 2)
        XCTAssertEqual((0..<4).map { _ in c.next(count: 5, id: id(5)) }, [6, 8, 9, 11])
        XCTAssertEqual(c.skipped, 3)
        // A later group replaces the earlier one: p1 now all passed, p0 mixed.
        c.record(problem: "p1", samples: 4, passed: 4)
        c.record(problem: "p0", samples: 4, passed: 2)
        c.record(problem: "p4", samples: 8, passed: 0)
        XCTAssertEqual((0..<3).map { _ in c.next(count: 5, id: id(5)) }, [13, 15, 18])
        XCTAssertEqual(c.frontierCount, 2)
    }

    func testAnEmptyFrontierStillYieldsProblems() {
        var c = Curriculum()
        for k in 0..<3 { c.record(problem: "p\(k)", samples: 4, passed: 0) }
        // Every problem is off the frontier: after a whole epoch of positions passed over, the
        // next one is taken rather than looping for ever.
        XCTAssertEqual(c.next(count: 3, id: id(3)), 3)
        XCTAssertEqual(c.next(count: 3, id: id(3)), 7)
    }

    func testAProblemOffTheFrontierIsRetriedAfterItWasPassedOverRetryAfterTimes() {
        var c = Curriculum()
        _ = (0..<4).map { _ in c.next(count: 4, retryAfter: 2, id: id(4)) }
        c.record(problem: "p0", samples: 8, passed: 0)
        c.record(problem: "p1", samples: 8, passed: 4)
        c.record(problem: "p2", samples: 8, passed: 8)
        c.record(problem: "p3", samples: 8, passed: 2)
        // The second and third epochs pass over p0 and p2 once each; the fourth takes them again.
        XCTAssertEqual((0..<4).map { _ in c.next(count: 4, retryAfter: 2, id: id(4)) }, [5, 7, 9, 11])
        XCTAssertEqual(c.passes["p0"], 2)
        XCTAssertEqual((0..<4).map { _ in c.next(count: 4, retryAfter: 2, id: id(4)) }, [12, 13, 14, 15])
        XCTAssertEqual(c.retried, 2)
        // Its new group decides again: p0 now mixed stays; p2 still all passed waits two passes more.
        c.record(problem: "p0", samples: 8, passed: 1)
        c.record(problem: "p2", samples: 8, passed: 8)
        XCTAssertNil(c.passes["p0"])
        XCTAssertEqual((0..<3).map { _ in c.next(count: 4, retryAfter: 2, id: id(4)) }, [16, 17, 19])
        // Without retries the same outcomes never take p2 again.
        var never = c
        XCTAssertFalse((0..<12).map { _ in never.next(count: 4, id: id(4)) }.contains { $0 % 4 == 2 })
    }

    func testACheckpointWrittenBeforeRetriesLoads() throws {
        let old = Data(#"{"cursor":5,"skipped":1,"seen":{"p0":{"samples":8,"passed":0}}}"#.utf8)
        let c = try JSONDecoder().decode(Curriculum.self, from: old)
        XCTAssertEqual(c.cursor, 5)
        XCTAssertEqual(c.passes, [:])
        XCTAssertEqual(c.retried, 0)
        XCTAssertFalse(c.eligible("p0"))
    }

    func testCheckpointRoundTripKeepsThePosition() throws {
        var c = Curriculum()
        _ = c.next(count: 3, id: id(3))
        c.record(problem: "p1", samples: 8, passed: 0)
        _ = (0..<3).map { _ in c.next(count: 3, retryAfter: 1, id: id(3)) }
        let back = try JSONDecoder().decode(Curriculum.self, from: try JSONEncoder().encode(c))
        XCTAssertEqual(back, c)
        var a = c, b = back
        XCTAssertEqual(back.passes, c.passes)
        for _ in 0..<5 { XCTAssertEqual(a.next(count: 3, retryAfter: 1, id: id(3)), b.next(count: 3, retryAfter: 1, id: id(3))) }
    }
}
