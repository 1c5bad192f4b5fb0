import Foundation
import Pipeline
import Schema
import Runtime
import Wire
import XCTest
import ZeroMQ

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

/// The pool's side of the wire, driven by test executors speaking the protocol on inproc.
final class ExecutorPoolTests: XCTestCase {
    struct NothingArrived: Error {}

    /// An executor that refuses a job as malformed gives it back at once: the next executor
    /// gets it without waiting for the lease (a minute by default), and a job every executor
    /// refuses is parked with the executor's reason once its attempts are used up.
    func testAJobRefusedAsMalformedGoesToAnotherExecutorAtOnce() throws {
        let context = try Context()
        defer { context.shutdown() }
        let dispatcher = Dispatcher(leaseMs: 600_000, heartbeatTimeoutMs: 600_000, maxAttempts: 2)
        let pool = try ExecutorPool(context: context, endpoint: "inproc://pool-malformed", curveKeys: nil,
                                    dispatcher: dispatcher, name: "test-pool", log: Log(role: "test", instance: "0"))
        var executors: [Socket] = []
        var sender = Sender(name: "test-executor")
        for name in ["w1", "w2"] {
            let dealer = try Socket(context, .dealer)
            try dealer.setRoutingID(Array(name.utf8))
            try dealer.setLinger(.zero)
            try dealer.connect("inproc://pool-malformed")
            executors.append(dealer)
        }
        /// The next message `dealer` receives, within 5 s.
        func next(_ dealer: Socket) throws -> WireCodec.Message {
            let deadline = Date().addingTimeInterval(5)
            while Date() < deadline {
                _ = try pool.receive()
                _ = pool.maintain(nowMs: nowMs())
                switch try dealer.receiveMessage(router: false) {
                case .message(_, let m)?: return m
                case .rejected(_, let reason)?: XCTFail("the pool sent a malformed message: \(reason)")
                case nil: break
                }
                usleep(1000)
            }
            throw NothingArrived()
        }
        pool.add(ExecutionJob.with { $0.jobID = "j1"; $0.problemID = "p"; $0.program = "pass"; $0.suiteHash = Data(repeating: 7, count: 32) })
        try sender.send(executors[0], .workRequest(WorkRequest.with { $0.worker = "w1"; $0.capacity = 1 }))
        let first = try next(executors[0])
        guard case .job(let job) = first.body else { return XCTFail("w1 got \(WireCodec.bodyName(first.body))") }
        XCTAssertEqual(job.jobID, "j1")
        try sender.send(executors[1], .workRequest(WorkRequest.with { $0.worker = "w2"; $0.capacity = 1 }))
        try sender.send(executors[0], .error(ErrorReply.with {
            $0.messageID = first.envelope.messageID; $0.code = "bad-message"; $0.detail = "job j1: the program is not UTF-8"
        }))
        let second = try next(executors[1])
        guard case .job(let again) = second.body else { return XCTFail("w2 got \(WireCodec.bodyName(second.body))") }
        XCTAssertEqual(again.jobID, "j1")
        XCTAssertEqual(again.attempt, 1)
        // w2 refuses it too: two attempts used, so it is parked, with the reason.
        try sender.send(executors[1], .error(ErrorReply.with {
            $0.messageID = second.envelope.messageID; $0.code = "bad-message"; $0.detail = "job j1: the program is not UTF-8"
        }))
        var outcomes: [Dispatcher.Outcome] = []
        let deadline = Date().addingTimeInterval(5)
        while outcomes.isEmpty && Date() < deadline {
            outcomes = try pool.receive()
            usleep(1000)
        }
        guard case .parked(let id, let reason)? = outcomes.first else { return XCTFail("not parked: \(outcomes)") }
        XCTAssertEqual(id, "j1")
        XCTAssertTrue(reason.contains("not UTF-8"), reason)
    }
}
