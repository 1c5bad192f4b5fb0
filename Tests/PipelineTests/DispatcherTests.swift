import Pipeline
import Schema
import XCTest

final class DispatcherTests: XCTestCase {
    func job(_ id: String) -> ExecutionJob {
        ExecutionJob.with { $0.jobID = id; $0.problemID = "p"; $0.program = "pass" }
    }

    func verdict(_ outcome: Outcome) -> Verdict { Verdict.with { $0.outcome = outcome } }

    func result(_ id: String, _ outcome: Outcome) -> ExecutionResult {
        ExecutionResult.with { $0.jobID = id; $0.verdict = verdict(outcome) }
    }

    func testCreditLimitsWhatIsHandedOut() {
        var d = Dispatcher(leaseMs: 1000, heartbeatTimeoutMs: 5000, maxAttempts: 3)
        for i in 0..<5 { d.add(job("j\(i)")) }
        d.add(job("j0"))   // known id: ignored
        XCTAssertEqual(d.pendingJobs, 5)
        XCTAssertTrue(d.assign(nowMs: 0).isEmpty, "no executor has offered capacity")
        d.credit("a", 2, nowMs: 0)
        let sent = d.assign(nowMs: 0)
        XCTAssertEqual(sent.map(\.job.jobID), ["j0", "j1"])
        XCTAssertEqual(sent.map(\.worker), ["a", "a"])
        XCTAssertEqual(sent[0].job.leaseMs, 1000)
        XCTAssertTrue(d.assign(nowMs: 0).isEmpty, "credit used up")
        XCTAssertEqual(d.inFlight, 2)
    }

    func testExpiredLeaseGoesToAnotherExecutorAndTheLateVerdictIsADuplicate() {
        var d = Dispatcher(leaseMs: 1000, heartbeatTimeoutMs: 60_000, maxAttempts: 5)
        d.add(job("j"))
        d.credit("a", 1, nowMs: 0)
        XCTAssertEqual(d.assign(nowMs: 0).first?.worker, "a")
        d.credit("b", 1, nowMs: 500)
        // A heartbeat naming the job renews its lease.
        XCTAssertTrue(d.heartbeat("a", jobIDs: ["j"], nowMs: 900))
        XCTAssertTrue(d.expire(nowMs: 1500).outcomes.isEmpty)
        XCTAssertTrue(d.assign(nowMs: 1500).isEmpty, "the lease was renewed")
        _ = d.expire(nowMs: 2000)
        let again = d.assign(nowMs: 2000)
        XCTAssertEqual(again.first?.worker, "b", "re-issued to the other executor")
        XCTAssertEqual(again.first?.job.attempt, 1)
        XCTAssertEqual(d.reissued, 1)
        // b answers first; a's late answer is a duplicate.
        guard case .verdict(let id, let v)? = d.result(result("j", .passed), from: "b", nowMs: 2100) else { return XCTFail("no verdict") }
        XCTAssertEqual(id, "j")
        XCTAssertEqual(v.outcome, .passed)
        XCTAssertEqual(v.executor, "b")
        XCTAssertNil(d.result(result("j", .failedTest), from: "a", nowMs: 2200))
        XCTAssertEqual(d.duplicates, 1)
        // A verdict from an executor never given the job does not count.
        d.add(job("k"))
        d.credit("a", 1, nowMs: 2300)
        XCTAssertEqual(d.assign(nowMs: 2300).first?.worker, "a")
        XCTAssertNil(d.result(result("k", .passed), from: "mallory", nowMs: 2400))
        XCTAssertEqual(d.refused, 1)
        XCTAssertEqual(d.pendingJobs, 1)
    }

    func testInfrastructureErrorsAreRetriedThenParkedNeverScored() {
        var d = Dispatcher(leaseMs: 10_000, heartbeatTimeoutMs: 60_000, maxAttempts: 3)
        d.add(job("j"))
        var outcome: Dispatcher.Outcome? = nil
        for attempt in 0..<3 {
            d.credit("w\(attempt)", 1, nowMs: 0)
            let sent = d.assign(nowMs: 0)
            XCTAssertEqual(sent.count, 1)
            XCTAssertEqual(sent[0].job.attempt, UInt32(attempt))
            outcome = d.result(ExecutionResult.with { $0.jobID = "j"; $0.infrastructureError = "sandbox failed" }, from: sent[0].worker, nowMs: 0)
            if attempt < 2 { XCTAssertNil(outcome) }
        }
        guard case .parked(let id, let reason)? = outcome else { return XCTFail("expected the job to be parked") }
        XCTAssertEqual(id, "j")
        XCTAssertTrue(reason.contains("sandbox failed"), reason)
        XCTAssertEqual(d.infrastructureErrors, 3)
    }

    func testASilentExecutorLosesItsJobsAndMustAnnounceItselfAgain() {
        var d = Dispatcher(leaseMs: 100_000, heartbeatTimeoutMs: 5000, maxAttempts: 5)
        d.add(job("j1"))
        d.add(job("j2"))
        d.credit("a", 2, nowMs: 0)
        XCTAssertEqual(d.assign(nowMs: 0).count, 2)
        let (_, lost) = d.expire(nowMs: 6000)
        XCTAssertEqual(lost, ["a"])
        XCTAssertEqual(d.queue.sorted(), ["j1", "j2"])
        // Its heartbeat is now refused (the service asks it to offer capacity again).
        XCTAssertFalse(d.heartbeat("a", jobIDs: [], nowMs: 6100))
        d.credit("a", 2, nowMs: 6100)
        XCTAssertTrue(d.heartbeat("a", jobIDs: [], nowMs: 6200))
        XCTAssertEqual(d.assign(nowMs: 6200).count, 2, "with no one else, the avoided executor is used again")
    }

    func testAJobGivenBackUnrunIsQueuedFirstWithoutCountingAnAttempt() {
        var d = Dispatcher(leaseMs: 1000, heartbeatTimeoutMs: 5000, maxAttempts: 2)
        d.add(job("j1"))
        d.add(job("j2"))
        d.credit("a", 1, nowMs: 0)
        XCTAssertEqual(d.assign(nowMs: 0).first?.job.jobID, "j1")
        XCTAssertNil(d.returned("j1", from: "a", countAttempt: false))
        d.credit("a", 1, nowMs: 0)
        let again = d.assign(nowMs: 0)
        XCTAssertEqual(again.first?.job.jobID, "j1")
        XCTAssertEqual(again.first?.job.attempt, 0)
    }
}
