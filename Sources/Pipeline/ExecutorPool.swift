import Foundation
import Schema
import Wire
import ZeroMQ
import Runtime

/// The head's side of the executors: the ROUTER socket they connect to (CURVE optional), the
/// `Dispatcher` deciding who runs what, and which test suites each executor already holds (a
/// suite is sent once per executor, then jobs name it by hash). The critic-labeler and
/// `coderl eval --executors` both drive executors through it.
public final class ExecutorPool {
    public private(set) var dispatcher: Dispatcher
    public let socket: Socket
    public let endpoint: String
    private var suitesSent: [String: Set<[UInt8]>] = [:]
    private var sender: Sender
    private let log: Log
    private var lastExpire: UInt64 = 0

    /// `domain`: the ZAP domain whose allow-list decides which executors get in.
    public init(context: Context, endpoint: String, curveKeys: CurveKeyPair?, domain: String = "coderl",
                dispatcher: Dispatcher, name: String, log: Log) throws {
        socket = try Socket(context, .router)
        try socket.setLinger(.zero)
        try socket.setRouterMandatory(true)
        try socket.setMaxMessageSize(MessageSizeLimit.requests)
        if let curveKeys { try socket.makeCurveServer(keys: curveKeys, domain: domain) }
        try socket.bind(endpoint)
        self.endpoint = endpoint
        self.dispatcher = dispatcher
        self.log = log
        sender = Sender(name: name)
    }

    public func add(_ job: ExecutionJob) { dispatcher.add(job) }

    /// Counts every executor as just heard from (after this process was busy elsewhere).
    public func touchAll(nowMs: UInt64) { dispatcher.touchAll(nowMs: nowMs) }

    /// Handles every message waiting on the socket; returns what became final.
    public func receive() throws -> [Dispatcher.Outcome] {
        var outcomes: [Dispatcher.Outcome] = []
        while let incoming = try socket.receiveMessage(router: true) { outcomes += try handle(incoming) }
        Self.record(outcomes, dispatcher)
        return outcomes
    }

    /// Verdicts by outcome with their execution time, parked jobs, and the queue's gauges.
    static func record(_ outcomes: [Dispatcher.Outcome], _ dispatcher: Dispatcher) {
        for o in outcomes {
            switch o {
            case .verdict(_, let verdict):
                let outcome = verdict.outcome.name
                Telemetry.count(.executions, [("outcome", outcome)])
                Telemetry.seconds(.executionSeconds, verdict.seconds, [("outcome", outcome)])
            case .parked:
                Telemetry.count(.executionParked)
            }
        }
        Telemetry.gauge(.executionQueueDepth, Double(dispatcher.queue.count))
        Telemetry.gauge(.executionJobsInFlight, Double(dispatcher.inFlight))
        Telemetry.gauge(.executorsConnected, Double(dispatcher.workers.count))
    }

    /// Expires the leases of silent executors (at most every 250 ms) and hands queued jobs to
    /// executors with free slots.
    public func maintain(nowMs now: UInt64) -> [Dispatcher.Outcome] {
        var outcomes: [Dispatcher.Outcome] = []
        defer { Self.record(outcomes, dispatcher) }
        if now - lastExpire > 250 {
            let reissuedBefore = dispatcher.reissued
            defer { Telemetry.count(.executionLeasesExpired, by: dispatcher.reissued - reissuedBefore) }
            let (expired, lost) = dispatcher.expire(nowMs: now)
            for name in lost {
                log("executor \(name) fell silent; its jobs go to others")
                suitesSent[name] = nil
            }
            outcomes += expired
            lastExpire = now
        }
        for (worker, job) in dispatcher.assign(nowMs: now) {
            var j = job
            let hash = [UInt8](job.suiteHash)
            if suitesSent[worker, default: []].contains(hash) { j.clearSuite() } else { suitesSent[worker, default: []].insert(hash) }
            do {
                // The job's id is the message's: the executor's replies about it name it.
                try sender.send(socket, .job(j), to: Array(worker.utf8), id: job.jobID)
            } catch {
                log("cannot reach executor \(worker): \(error)")
                if let o = dispatcher.returned(job.jobID, from: worker, countAttempt: false) { outcomes.append(o) }
            }
        }
        return outcomes
    }

    private func handle(_ incoming: Incoming) throws -> [Dispatcher.Outcome] {
        let now = nowMs()
        switch incoming {
        case .rejected(_, let reason):
            log("bad message from an executor: \(reason)")
        case .message(let peer, let message):
            let worker = String(decoding: peer ?? [], as: UTF8.self)
            switch message.body {
            case .workRequest(let request):
                dispatcher.credit(worker, Int(request.capacity), nowMs: now)
            case .heartbeat(let beat):
                if !dispatcher.heartbeat(worker, jobIDs: beat.jobIds, nowMs: now) {
                    try sender.send(socket, .error(ErrorReply.with {
                        $0.messageID = message.envelope.messageID
                        $0.code = "unknown-worker"
                        $0.detail = "announce your free capacity with a WorkRequest"
                    }), to: peer)
                }
            case .result(let result):
                if !result.infrastructureError.isEmpty { Telemetry.count(.executionInfrastructureErrors) }
                if let outcome = dispatcher.result(result, from: worker, nowMs: now) {
                    return [outcome]
                } else if !result.infrastructureError.isEmpty {
                    log("job \(result.jobID): infrastructure error on \(worker), retrying: \(result.infrastructureError)")
                }
            case .error(let reply):
                // The executor refused or gave back a job: the reply names the job's message,
                // whose id is the job's.
                let jobID = reply.messageID
                switch reply.code {
                case "unknown-suite":
                    suitesSent[worker] = nil
                    for (id, job) in dispatcher.jobs where job.holder == worker && [UInt8](job.payload.suiteHash).hex == reply.detail {
                        _ = dispatcher.returned(id, from: worker, countAttempt: false)
                    }
                case "lease-expired":
                    if let o = dispatcher.returned(jobID, from: worker, countAttempt: true) { return [o] }
                case "bad-message" where dispatcher.jobs[jobID]?.holder == worker:
                    // Refused as malformed: another executor gets it now (not after its lease),
                    // and after max attempts it is parked with the reason.
                    log("executor \(worker) refused job \(jobID): \(reply.detail)")
                    if let o = dispatcher.returned(jobID, from: worker, countAttempt: true, reason: reply.detail) { return [o] }
                default:
                    log("executor \(worker) reported \(reply.code): \(reply.detail)")
                }
            default:
                log("executor \(worker) sent \(WireCodec.bodyName(message.body)); ignored")
            }
        }
        return []
    }
}
