import Execution
import Foundation
import Runtime
import Ledger
import Schema
import Synchronization
import Wire
import ZeroMQ

/// The worker side of the execution protocol. The executor connects a DEALER socket out to
/// the dispatcher's ROUTER (the critic-labeler in a pipeline) and then:
///
/// - sends `WorkRequest{capacity: N}` at start and `WorkRequest{capacity: 1}` after each
///   result: capacity is credit, "I can take N more jobs now";
/// - sends a `Heartbeat` every `heartbeatInterval` listing the job ids it holds (this is what
///   extends their leases on the dispatcher's side);
/// - runs each `ExecutionJob` and answers with an `ExecutionResult` (a verdict, or an
///   infrastructure error the dispatcher must retry);
/// - recognises a duplicate delivery by job id: a job it is running is not started twice, a
///   job it finished recently gets the same result again;
/// - drops a queued job whose lease ran out before a slot was free, replying
///   `ErrorReply{code: "lease-expired"}` (the dispatcher has given it to someone else);
/// - keeps test suites by content hash: a job may carry only `suite_hash`; an unknown hash
///   gets `ErrorReply{code: "unknown-suite", detail: <hex>}` and the dispatcher resends with
///   the suite. A suite whose SHA-256 differs from its stated hash is refused;
/// - logs and answers `ErrorReply{code: "bad-message"}` to anything malformed, and goes on.
public final class ExecutorWorker: @unchecked Sendable {
    public struct Settings: Sendable {
        public var endpoint: String
        public var name: String
        public var heartbeatInterval: Duration = .seconds(1)
        public var defaultLimits = Limits()
        /// CURVE: the dispatcher's public key, and our key pair (generated when nil).
        public var serverKey: String?
        public var keys: CurveKeyPair?
        public var suiteCacheSize = 4096
        public var resultCacheSize = 4096

        public init(endpoint: String, name: String) {
            self.endpoint = endpoint
            self.name = name
        }
    }

    public let settings: Settings
    private let executor: Executor
    private let context: Context
    private let queue = JobQueue()
    private let finishedJobs = Mutex<[Finished]>([])
    private let stopping = Atomic<Bool>(false)
    private let started = ContinuousClock.now
    private let log: @Sendable (String) -> Void

    // Owned by the event loop thread only.
    private var running: Set<String> = []
    private var suites: BoundedCache<[UInt8], TestSuite>
    private var finished: BoundedCache<String, ExecutionResult>
    private var counter = 0
    /// Messages dropped since the dispatcher last took one (the current unreachable spell).
    private var dropped = 0

    public init(settings: Settings, executor: Executor, log: @escaping @Sendable (String) -> Void) throws {
        self.settings = settings
        self.executor = executor
        self.log = log
        self.context = try Context()
        suites = BoundedCache(capacity: settings.suiteCacheSize)
        finished = BoundedCache(capacity: settings.resultCacheSize)
    }

    /// Asks `run` to return (from any thread); jobs in progress are abandoned.
    public func stop() { stopping.store(true, ordering: .relaxed) }

    /// Serves jobs until `stop()`.
    /// The socket to the dispatcher, and the monitor that tells a refused handshake.
    private func connectDealer(keys: CurveKeyPair?) throws -> (Socket, HandshakeMonitor) {
        let dealer = try Socket(context, .dealer)
        // Nothing unsent may hold up the exit (a dispatcher that refused our CURVE key never
        // takes the queued messages), and a send never blocks the loop for long.
        try dealer.setLinger(.zero)
        try dealer.setSendTimeout(.seconds(1))
        try dealer.setRoutingID(Array(settings.name.utf8))
        try dealer.setHeartbeat(interval: .seconds(2), timeout: .seconds(10))
        // Jobs carry whole test suites (some APPS suites are tens of MiB); nothing larger.
        try dealer.setMaxMessageSize(300 << 20)
        if let serverKey = settings.serverKey, let keys {
            try dealer.makeCurveClient(keys: keys, serverKey: serverKey)
        }
        let monitor = try HandshakeMonitor(watching: dealer)
        try dealer.connect(settings.endpoint)
        return (dealer, monitor)
    }

    public func run() throws {
        let keys = try settings.serverKey.map { _ in try settings.keys ?? CurveKeyPair.generate() }
        var (dealer, monitor) = try connectDealer(keys: keys)
        var rejoin = Rejoin(publicKey: keys?.publicKey)
        let results = try Socket(context, .pull)
        try results.setLinger(.zero)
        let resultsEndpoint = "inproc://results-\(ObjectIdentifier(self).hashValue)"
        try results.bind(resultsEndpoint)

        let threads = (0..<executor.slots).map { index in
            Thread { [self] in self.slotLoop(resultsEndpoint) }
        }
        for thread in threads { thread.start() }
        defer {
            queue.close()
            context.shutdown()
        }

        try offer(dealer, slots: executor.slots)
        var nextHeartbeat = ContinuousClock.now
        while !stopping.load(ordering: .relaxed) {
            if ContinuousClock.now >= nextHeartbeat {
                try send(dealer, .heartbeat(Heartbeat.with {
                    $0.role = "executor"
                    $0.instance = settings.name
                    $0.jobIds = running.sorted()
                    $0.uptimeMs = UInt64((ContinuousClock.now - started).components.seconds * 1000)
                }))
                nextHeartbeat = ContinuousClock.now + settings.heartbeatInterval
            }
            if rejoin.isDueNow() {
                (dealer, monitor) = try connectDealer(keys: keys)
                try offer(dealer, slots: executor.slots - running.count)
            }
            let ready = try Poller.poll([dealer, results, monitor.pollable], timeout: .milliseconds(100))
            if ready[2] {
                for event in monitor.events() {
                    if let line = rejoin.note(event) { log(line) }
                }
            }
            if ready[1] {
                while (try? results.receive(dontWait: true)) != nil {}
                for done in finishedJobs.withLock({ jobs in defer { jobs = [] }; return jobs }) {
                    try finish(done, dealer)
                }
            }
            if ready[0] {
                while true {
                    let frames: [[UInt8]]
                    do {
                        frames = try dealer.receive(dontWait: true)
                    } catch let error as ZMQError where error.kind == .wouldBlock {
                        break
                    } catch let error as FrameLimitExceeded {
                        reject(dealer, messageID: "", "\(error)")
                        continue
                    }
                    try handle(frames, dealer)
                }
            }
        }
    }

    private func handle(_ frames: [[UInt8]], _ dealer: Socket) throws {
        let message: WireCodec.Message
        do {
            message = try WireCodec.decode(frames)
        } catch {
            reject(dealer, messageID: "", "\(error)")
            return
        }
        let id = message.envelope.messageID
        switch message.body {
        case .job(let job):
            try accept(job, messageID: id, dealer)
        case .ack, .heartbeat:
            break
        case .error(let reply) where reply.code == "unknown-worker":
            // The dispatcher forgot us (it restarted, or took us for dead): offer the free slots again.
            log("the dispatcher does not know this executor; offering \(max(0, executor.slots - running.count)) free slots again")
            try offer(dealer, slots: executor.slots - running.count)
        case .error(let reply):
            log("dispatcher reported \(reply.code) for \(reply.messageID): \(reply.detail)")
        default:
            reject(dealer, messageID: id, "an executor takes ExecutionJob messages, not \(WireCodec.bodyName(message.body))")
        }
    }

    private func accept(_ job: ExecutionJob, messageID: String, _ dealer: Socket) throws {
        if try !queue(job, messageID: messageID, dealer) { try returnCredit(dealer) }
    }

    /// Queues the job for a slot, or answers it at once (returns false).
    private func queue(_ job: ExecutionJob, messageID: String, _ dealer: Socket) throws -> Bool {
        if running.contains(job.jobID) {
            log("job \(job.jobID) delivered again while running: ignored")
            return false
        }
        if let result = finished[job.jobID] {
            log("job \(job.jobID) delivered again after it finished: same result sent")
            try send(dealer, .result(result))
            return false
        }
        let stated = [UInt8](job.suiteHash)
        let suite: TestSuite
        if job.hasSuite {
            suite = job.suite
            if !stated.isEmpty {
                // The ledger's content hash (Ledger.hash(of:)), so dispatchers can send ledger keys.
                let actual = try Ledger.hash(of: suite)
                guard actual == stated else {
                    reject(dealer, messageID: messageID, "job \(job.jobID): the suite's SHA-256 is \(actual.hex), not the stated \(stated.hex)")
                    return false
                }
                suites[stated] = suite
            }
        } else if let known = suites[stated] {
            suite = known
        } else {
            try send(dealer, .error(ErrorReply.with {
                $0.messageID = messageID
                $0.code = "unknown-suite"
                $0.detail = stated.hex
            }))
            return false
        }
        let request: Executor.Prepared
        do {
            request = try executor.prepare(program: job.program, suite: suite, jobID: job.jobID,
                                           limits: settings.defaultLimits.overridden(by: job.limits))
        } catch {
            reject(dealer, messageID: messageID, "job \(job.jobID): \(error)")
            return false
        }
        running.insert(job.jobID)
        let lease = ContinuousClock.now + .milliseconds(Int64(clamping: job.leaseMs))
        queue.push(QueuedJob(job: job, request: request, messageID: messageID, leaseEnds: lease))
        return true
    }

    /// A slot thread: takes queued jobs, runs them, hands the results to the event loop
    /// (which owns the socket) and wakes it with an empty frame.
    private func slotLoop(_ endpoint: String) {
        guard let wake = try? Socket(context, .push), (try? wake.connect(endpoint)) != nil else { return }
        while let queued = queue.pop() {
            var done = Finished(jobID: queued.job.jobID, messageID: queued.messageID, result: nil)
            if ContinuousClock.now <= queued.leaseEnds {
                var result = ExecutionResult()
                result.jobID = queued.job.jobID
                result.attempt = queued.job.attempt
                result.executor = settings.name
                switch queued.request.run() {
                case .verdict(let verdict): result.verdict = verdict
                case .infrastructureError(let reason): result.infrastructureError = reason
                }
                done.result = result
            }
            finishedJobs.withLock { $0.append(done) }
            do { try wake.send([[]]) } catch { return }   // the context is shutting down
        }
    }

    private func finish(_ done: Finished, _ dealer: Socket) throws {
        running.remove(done.jobID)
        Telemetry.gauge(.executorSlotsBusy, Double(running.count))
        if let result = done.result {
            if result.infrastructureError.isEmpty {
                let outcome = result.verdict.outcome.name
                Telemetry.count(.executorJobs, [("outcome", outcome)])
                Telemetry.seconds(.executorJobSeconds, result.verdict.seconds, [("outcome", outcome)])
            } else {
                Telemetry.count(.executorInfrastructureErrors)
            }
            finished[done.jobID] = result
            try send(dealer, .result(result))
        } else {
            try send(dealer, .error(ErrorReply.with {
                $0.messageID = done.messageID
                $0.code = "lease-expired"
                $0.detail = "job \(done.jobID) waited past its lease; not run"
            }))
        }
        try returnCredit(dealer)
    }

    /// Every delivered job takes a credit; each one finished or turned away gives it back.
    private func returnCredit(_ dealer: Socket) throws { try offer(dealer, slots: 1) }

    /// Tells the dispatcher this executor takes `slots` more jobs.
    private func offer(_ dealer: Socket, slots: Int) throws {
        try send(dealer, .workRequest(WorkRequest.with { $0.worker = settings.name; $0.capacity = UInt32(max(0, slots)) }))
    }

    private func reject(_ dealer: Socket, messageID: String, _ reason: String) {
        log("bad message: \(reason)")
        try? send(dealer, .error(ErrorReply.with {
            $0.messageID = messageID
            $0.code = "bad-message"
            $0.detail = String(reason.prefix(1000))
        }))
    }

    /// Sends, or drops the message when the dispatcher cannot take it within the send timeout
    /// (heartbeats repeat; a dispatcher that lost our credit asks for it again).
    private func send(_ socket: Socket, _ body: Envelope.OneOf_Body) throws {
        counter += 1
        do {
            try socket.send(try WireCodec.encode(body, id: "\(settings.name)-\(counter)", sender: settings.name))
            if dropped > 0 {
                log("dispatcher reachable again (\(dropped) message(s) dropped meanwhile)")
                dropped = 0
            }
        } catch let error as ZMQError where error.kind == .wouldBlock {
            // Said once per spell, not at every heartbeat.
            if dropped == 0 { log("dispatcher unreachable; dropping messages until it takes them (first: a \(WireCodec.bodyName(body)))") }
            dropped += 1
        }
    }
}

/// When to connect again after a refused or failed handshake: libzmq gives up on such a
/// connection for good (our key not on the dispatcher's allow-list yet, or the wrong server
/// key), so the worker makes a new socket after a pause that grows from 2 s to 30 s.
struct Rejoin {
    let publicKey: String?
    private var retryAt: ContinuousClock.Instant? = nil
    private var backoff: Duration = .seconds(2)
    private var refusals = 0

    init(publicKey: String?) { self.publicKey = publicKey }

    /// Whether the pause is over (then the caller reconnects; the next refusal starts another).
    mutating func isDueNow(_ now: ContinuousClock.Instant = .now) -> Bool {
        guard let due = retryAt, now >= due else { return false }
        retryAt = nil
        return true
    }

    /// Takes a handshake event; returns what to log, if anything: the first refusal and then
    /// ones at growing intervals, not every retry.
    mutating func note(_ event: HandshakeMonitor.Event, now: ContinuousClock.Instant = .now) -> String? {
        guard event != .succeeded else {
            defer { refusals = 0; backoff = .seconds(2) }
            return refusals > 0 ? "the dispatcher accepted this executor after \(refusals) refused handshake(s)" : nil
        }
        refusals += 1
        defer {
            if retryAt == nil { retryAt = now + backoff }
            backoff = min(backoff * 2, .seconds(30))
        }
        guard refusals.nonzeroBitCount == 1 else { return nil }
        let why = if case .refused(let status) = event {
            "refused this executor (ZAP status \(status): is its public key \(publicKey ?? "") on the allow-list?)"
        } else {
            "did not complete the handshake (\(event)); is --server-key the dispatcher's public key?"
        }
        return "the dispatcher \(why); trying again in \(backoff.components.seconds) s (\(refusals) so far)"
    }
}

struct QueuedJob: Sendable {
    let job: ExecutionJob
    let request: Executor.Prepared
    let messageID: String
    let leaseEnds: ContinuousClock.Instant
}

/// What a slot thread hands back: the result, or nil when the lease ran out first.
struct Finished: Sendable {
    let jobID: String
    let messageID: String
    var result: ExecutionResult?
}

/// A blocking FIFO of jobs for the slot threads.
final class JobQueue: @unchecked Sendable {
    private let condition = NSCondition()
    private var items: [QueuedJob] = []
    private var closed = false

    func push(_ job: QueuedJob) {
        condition.lock()
        items.append(job)
        condition.signal()
        condition.unlock()
    }

    func pop() -> QueuedJob? {
        condition.lock()
        defer { condition.unlock() }
        while items.isEmpty && !closed { condition.wait() }
        return closed ? nil : items.removeFirst()
    }

    func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }
}

/// A map that forgets its oldest entries beyond `capacity`.
struct BoundedCache<Key: Hashable, Value> {
    private var values: [Key: Value] = [:]
    private var order: [Key] = []
    private var start = 0
    let capacity: Int

    init(capacity: Int) { self.capacity = max(1, capacity) }

    subscript(key: Key) -> Value? {
        get { values[key] }
        set {
            guard let newValue else { values[key] = nil; return }
            if values.updateValue(newValue, forKey: key) == nil {
                order.append(key)
                if order.count - start > capacity {
                    values[order[start]] = nil
                    start += 1
                    if start > capacity { order.removeFirst(start); start = 0 }
                }
            }
        }
    }
}
