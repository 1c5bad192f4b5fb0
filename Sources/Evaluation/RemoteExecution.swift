import Execution
import Foundation
import Ledger
import Pipeline
import Schema
import Wire
import ZeroMQ
import Runtime

/// Programs judged by executor processes (`coderl-executor --connect ENDPOINT`, on this machine or
/// others) through the same dispatcher the pipeline's critic-labeler uses: credit-based
/// hand-out, leases renewed by heartbeats, re-issue when an executor falls silent, retries of
/// infrastructure errors. Executors may join and leave at any time.
public final class RemoteExecution: ExecutionBackend {
    let context: Context
    var pool: ExecutorPool!
    let limits: ExecutionLimits
    let authenticator: ZAPAuthenticator?
    let log: Log
    var counter = 0
    var warnedMs: UInt64 = 0

    /// Binds `endpoint`; with `curveKeys`, executors must know our public key, and with
    /// `allowListFile` (watched, see `ZAPAuthenticator`) only the keys it lists are accepted.
    public init(endpoint: String, limits: Limits, curveKeys: CurveKeyPair? = nil,
                allowListFile: String? = nil, leaseMs: UInt64 = 60_000, heartbeatTimeoutMs: UInt64 = 5000, maxAttempts: UInt32 = 8, log: Log) throws {
        context = try Context()
        if curveKeys != nil, let allowListFile {
            authenticator = try ZAPAuthenticator(context: context, allowedClientKeys: [], allowListFile: allowListFile) { line in log(line) }
        } else {
            authenticator = nil
        }
        pool = try ExecutorPool(context: context, endpoint: endpoint, curveKeys: curveKeys,
                                dispatcher: Dispatcher(leaseMs: leaseMs, heartbeatTimeoutMs: heartbeatTimeoutMs, maxAttempts: maxAttempts),
                                name: "coderl-eval", log: log)
        self.limits = limits.message
        self.log = log
    }

    deinit {
        authenticator?.stop()
        pool = nil   // the socket closes before its context ends
        context.shutdown()
    }

    public var description: String { "executors connecting to \(pool.endpoint)" }

    public func run(_ jobs: [ProgramJob]) -> [ExecutionReport] {
        guard !jobs.isEmpty else { return [] }
        var reports = [ExecutionReport?](repeating: nil, count: jobs.count)
        var index: [String: Int] = [:]
        do {
            // Executors kept beating while we generated: read that first, then count them alive.
            for o in try pool.receive() { settle(o, &reports, index) }
            pool.touchAll(nowMs: nowMs())
            for (i, job) in jobs.enumerated() {
                counter += 1
                let id = "e\(counter)"
                index[id] = i
                let hash = Data(try Ledger.hash(of: job.suite))
                pool.add(ExecutionJob.with {
                    $0.jobID = id
                    $0.problemID = job.problemID
                    $0.program = job.program
                    $0.suite = job.suite
                    $0.suiteHash = hash
                    $0.limits = limits
                })
            }
            let started = nowMs()
            while reports.contains(where: { $0 == nil }) {
                let ready = try Poller.poll([pool.socket], timeout: .milliseconds(100))
                if ready[0] { for o in try pool.receive() { settle(o, &reports, index) } }
                for o in pool.maintain(nowMs: nowMs()) { settle(o, &reports, index) }
                let now = nowMs()
                if pool.dispatcher.workers.isEmpty, now - started > 10_000, now - warnedMs > 60_000 {
                    log("waiting for executors: none is connected to \(pool.endpoint) (start one with `coderl-executor --connect \(pool.endpoint)`)")
                    warnedMs = now
                }
            }
        } catch {
            for i in reports.indices where reports[i] == nil { reports[i] = .infrastructureError("remote execution failed: \(error)") }
        }
        return reports.map { $0! }
    }

    private func settle(_ outcome: Dispatcher.Outcome, _ reports: inout [ExecutionReport?], _ index: [String: Int]) {
        switch outcome {
        case .verdict(let id, let verdict):
            if let i = index[id] { reports[i] = .verdict(verdict) }
        case .parked(let id, let reason):
            if let i = index[id] { reports[i] = .infrastructureError(reason) }
        }
    }
}
