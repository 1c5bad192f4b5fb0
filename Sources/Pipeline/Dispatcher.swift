import Foundation
import Schema

/// The execution queue of the critic-labeler, without sockets: which job goes to which
/// executor, leases, heartbeats, re-issue, retries and duplicate results. The service feeds
/// it events and sends what it returns; tests drive it directly with a clock.
///
/// Rules:
/// - an executor's credit (from `WorkRequest`) is how many jobs it may be handed now;
/// - a job handed out holds a lease; a heartbeat naming the job renews it; when the lease
///   ends, or the executor falls silent past `heartbeatTimeoutMs`, the job goes back to the
///   queue for another executor (an executor that lost a job this way is avoided for it);
/// - the first verdict for a job wins; any later one (the job was re-issued, then both
///   answered) is a duplicate and ignored; a result from an executor the job was never handed
///   to is refused;
/// - an infrastructure error puts the job back with the attempt counted; after `maxAttempts`
///   the job is parked: reported to the service, never scored as the program's failure.
public struct Dispatcher {
    public struct Job: Sendable {
        public let id: String
        public var attempt: UInt32 = 0
        public var payload: ExecutionJob
        /// Executors that failed this job; others are preferred.
        public var avoid: Set<String> = []
        public var holder: String? = nil
        public var leaseEndsMs: UInt64 = 0
        /// Every executor the job was handed to: only their results count.
        public var handedTo: Set<String> = []
    }

    public struct Worker: Sendable {
        public var credit = 0
        public var lastSeenMs: UInt64
        public var jobs: Set<String> = []
    }

    public enum Outcome: Sendable {
        case verdict(jobID: String, Verdict)
        case parked(jobID: String, reason: String)
    }

    public var leaseMs: UInt64
    public var heartbeatTimeoutMs: UInt64
    public var maxAttempts: UInt32
    public private(set) var jobs: [String: Job] = [:]
    public private(set) var queue: [String] = []
    public private(set) var workers: [String: Worker] = [:]
    public private(set) var duplicates = 0
    public private(set) var reissued = 0
    public private(set) var infrastructureErrors = 0
    /// Results from executors that were never given the job (forged or misrouted).
    public private(set) var refused = 0

    public init(leaseMs: UInt64, heartbeatTimeoutMs: UInt64, maxAttempts: UInt32) {
        self.leaseMs = leaseMs
        self.heartbeatTimeoutMs = heartbeatTimeoutMs
        self.maxAttempts = maxAttempts
    }

    public var pendingJobs: Int { jobs.count }
    public var inFlight: Int { jobs.values.filter { $0.holder != nil }.count }

    /// Queues a job (ignored when a job with the same id is already known).
    public mutating func add(_ job: ExecutionJob) {
        guard jobs[job.jobID] == nil else { return }
        jobs[job.jobID] = Job(id: job.jobID, payload: job)
        queue.append(job.jobID)
    }

    public mutating func credit(_ worker: String, _ n: Int, nowMs: UInt64) {
        workers[worker, default: Worker(lastSeenMs: nowMs)].credit += n
        workers[worker]!.lastSeenMs = nowMs
    }

    /// Renews the leases of the jobs a worker says it holds. Returns false for a worker not
    /// known (declared lost, or this dispatcher restarted): it must announce its free
    /// capacity again, since the credit it had was forgotten.
    @discardableResult
    public mutating func heartbeat(_ worker: String, jobIDs: [String], nowMs: UInt64) -> Bool {
        guard workers[worker] != nil else { return false }
        workers[worker]!.lastSeenMs = nowMs
        for id in jobIDs where jobs[id]?.holder == worker { jobs[id]!.leaseEndsMs = nowMs + leaseMs }
        return true
    }

    /// After the dispatcher itself was busy (not reading): nobody counts as silent for it.
    public mutating func touchAll(nowMs: UInt64) {
        for name in workers.keys { workers[name]!.lastSeenMs = max(workers[name]!.lastSeenMs, nowMs) }
        for id in jobs.keys where jobs[id]!.holder != nil { jobs[id]!.leaseEndsMs = max(jobs[id]!.leaseEndsMs, nowMs + leaseMs / 2) }
    }

    /// Jobs to send now, as (executor, job with its attempt and lease set).
    public mutating func assign(nowMs: UInt64) -> [(worker: String, job: ExecutionJob)] {
        var out: [(String, ExecutionJob)] = []
        var remaining: [String] = []
        var takers = workers.filter { $0.value.credit > 0 }.map(\.key).sorted()
        for id in queue {
            guard var job = jobs[id], job.holder == nil else { continue }
            guard !takers.isEmpty else { remaining.append(id); continue }
            let pick = takers.firstIndex { !job.avoid.contains($0) } ?? (job.avoid.count >= workers.count ? 0 : nil)
            guard let index = pick else { remaining.append(id); continue }
            let worker = takers[index]
            job.holder = worker
            job.handedTo.insert(worker)
            job.leaseEndsMs = nowMs + leaseMs
            job.payload.attempt = job.attempt
            job.payload.leaseMs = leaseMs
            jobs[id] = job
            workers[worker]!.credit -= 1
            workers[worker]!.jobs.insert(id)
            if workers[worker]!.credit == 0 { takers.remove(at: index) }
            out.append((worker, job.payload))
        }
        queue = remaining
        return out
    }

    /// A result from `worker`. Returns what the service must record, or nil (duplicate,
    /// retried, unknown job).
    public mutating func result(_ result: ExecutionResult, from worker: String, nowMs: UInt64) -> Outcome? {
        workers[worker]?.lastSeenMs = nowMs
        workers[worker]?.jobs.remove(result.jobID)
        guard var job = jobs[result.jobID] else { duplicates += 1; return nil }
        // A result from an executor the job was never handed to is not a verdict on it.
        guard job.handedTo.contains(worker) else { refused += 1; return nil }
        if result.hasVerdict {
            if let holder = job.holder { workers[holder]?.jobs.remove(job.id) }
            jobs[job.id] = nil
            queue.removeAll { $0 == job.id }
            var verdict = result.verdict
            if verdict.executor.isEmpty { verdict.executor = worker }
            return .verdict(jobID: job.id, verdict)
        }
        // An infrastructure error: only the current holder's report counts.
        guard job.holder == worker else { duplicates += 1; return nil }
        infrastructureErrors += 1
        return requeue(&job, avoiding: worker, reason: "infrastructure error on \(worker): \(result.infrastructureError)")
    }

    /// The executor gave a job back unrun (lease expired in its queue, unknown suite, refused
    /// as malformed: `reason`).
    public mutating func returned(_ jobID: String, from worker: String, countAttempt: Bool, reason: String? = nil) -> Outcome? {
        workers[worker]?.jobs.remove(jobID)
        guard var job = jobs[jobID], job.holder == worker else { return nil }
        if !countAttempt {
            job.holder = nil
            jobs[jobID] = job
            queue.insert(jobID, at: 0)
            return nil
        }
        return requeue(&job, avoiding: worker, reason: "given back by \(worker)" + (reason.map { ": " + $0 } ?? ""))
    }

    private mutating func requeue(_ job: inout Job, avoiding worker: String, reason: String) -> Outcome? {
        job.holder = nil
        job.attempt += 1
        job.avoid.insert(worker)
        if job.attempt >= maxAttempts {
            jobs[job.id] = nil
            return .parked(jobID: job.id, reason: "\(job.attempt) attempts failed; last: \(reason)")
        }
        jobs[job.id] = job
        queue.append(job.id)
        reissued += 1
        return nil
    }

    /// Expired leases and silent executors: their jobs go back to the queue.
    public mutating func expire(nowMs: UInt64) -> (outcomes: [Outcome], lostWorkers: [String]) {
        var outcomes: [Outcome] = []
        var lost: [String] = []
        for (name, w) in workers where nowMs > w.lastSeenMs + heartbeatTimeoutMs {
            lost.append(name)
            for id in w.jobs.sorted() {
                if var job = jobs[id], job.holder == name,
                   let o = requeue(&job, avoiding: name, reason: "executor \(name) fell silent") { outcomes.append(o) }
            }
            workers[name] = nil
        }
        for (id, job) in jobs where job.holder != nil && nowMs > job.leaseEndsMs {
            var j = job
            let holder = j.holder!
            workers[holder]?.jobs.remove(id)
            if let o = requeue(&j, avoiding: holder, reason: "lease expired on \(holder)") { outcomes.append(o) }
        }
        return (outcomes, lost.sorted())
    }
}
