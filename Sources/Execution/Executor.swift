import Foundation
import Datasets
import Schema
import Synchronization

/// Limits a job runs under. Zero values in an `ExecutionLimits` message take these defaults.
public struct Limits: Sendable, Equatable {
    /// Wall-clock seconds per test (CPU time is capped at the same figure).
    public var secondsPerTest: Double = 4
    /// Address space of each program process.
    public var memoryBytes: UInt64 = 2 << 30
    /// Standard output kept per test; more is an output-limit failure.
    public var outputBytes: UInt64 = 8 << 20
    /// Processes and threads the program may have at once.
    public var processes: UInt32 = 64
    /// Largest file the program may write (and the size of its private /tmp).
    public var fileSizeBytes: UInt64 = 64 << 20
    /// Stop at the first failing test (fast) instead of running them all (per-test detail).
    public var stopAtFirstFailure = false

    public init() {}

    /// These limits with every non-zero field of `message` applied.
    public func overridden(by message: ExecutionLimits) -> Limits {
        var limits = self
        if message.secondsPerTest > 0 { limits.secondsPerTest = message.secondsPerTest }
        if message.memoryBytes > 0 { limits.memoryBytes = message.memoryBytes }
        if message.outputBytes > 0 { limits.outputBytes = message.outputBytes }
        if message.processes > 0 { limits.processes = message.processes }
        if message.fileSizeBytes > 0 { limits.fileSizeBytes = message.fileSizeBytes }
        limits.stopAtFirstFailure = message.stopAtFirstFailure
        return limits
    }

    public var message: ExecutionLimits {
        ExecutionLimits.with {
            $0.secondsPerTest = secondsPerTest
            $0.memoryBytes = memoryBytes
            $0.outputBytes = outputBytes
            $0.processes = processes
            $0.fileSizeBytes = fileSizeBytes
            $0.stopAtFirstFailure = stopAtFirstFailure
        }
    }
}

/// What running a job produced: the program's verdict, or an infrastructure error (the
/// sandbox failed; never the program's fault, to be retried by whoever dispatched the job).
public enum ExecutionReport: Sendable {
    case verdict(Verdict)
    case infrastructureError(String)

    public var verdict: Verdict? { if case .verdict(let v) = self { v } else { nil } }
}

/// A job the executor refuses before running anything (it names what is wrong).
public struct InvalidJob: Error, CustomStringConvertible, Sendable {
    public let reason: String
    public var description: String { "invalid job: \(reason)" }
}

/// Runs programs against test suites in sandboxed slots. Thread-safe: call `run` from as
/// many threads as there are slots.
public final class Executor: Sendable {
    public let slots: Int
    public let isolation: String
    public let name: String
    /// How a job's memory (and, with a pids cgroup, its processes) is capped as a whole:
    /// "cgroup v1 (memory and processes)" and the like, or why it is not (then only each
    /// process's address space is limited, and processes per user).
    public let memoryCap: String
    private let idle: Mutex<[SlotBox]>
    private let available: DispatchSemaphore

    /// Starts `slots` sandboxed harness processes. In strict mode, throws
    /// `SandboxUnavailable` with the reason when isolation cannot be had; in relaxed mode,
    /// falls back to running without namespaces and says so in every verdict.
    public init(slots: Int = 2, configuration: SandboxConfiguration = SandboxConfiguration(), name: String = "executor") throws {
        precondition(slots > 0, "an executor needs at least one slot")
        // A harness can die at any moment (killed from outside, out of memory); writing the
        // next job to its stdin must then fail with EPIPE, an infrastructure error the slot
        // recovers from, not raise SIGPIPE, whose default action ends this whole process.
        // (Process-wide; harness children get default dispositions back at spawn.)
        signal(SIGPIPE, SIG_IGN)
        var plan = try SandboxPlan.make(configuration)
        var caps: [MemoryCap] = []
        var capStatus = "off (SandboxConfiguration.memoryCap is false)"
        making: for i in 0..<(configuration.memoryCap ? slots : 0) {
            switch MemoryCap.make(label: "\(name.filter { $0.isLetter || $0.isNumber })-\(i)") {
            case .success(let cap):
                caps.append(cap)
                capStatus = "cgroup v\(cap.version)" + (cap.pidsDirectory != nil ? " (memory and processes)" : " (memory; processes per user with RLIMIT_NPROC)")
            case .failure(let reason):
                caps = []                       // the ones made are removed as they go
                capStatus = "none: \(reason); each program process's address space is limited, not the job as a whole"
                break making
            }
        }
        func cap(_ i: Int) -> MemoryCap? { i < caps.count ? caps[i] : nil }
        var first: HarnessProcess
        do {
            first = try HarnessProcess(plan: plan, configuration: configuration, cap: cap(0))
        } catch let error as SandboxUnavailable where configuration.mode == .relaxed && plan.harnessMode == "namespaces" {
            plan = SandboxPlan.relaxed(configuration, missing: "namespaces unavailable (\(error.reason))")
            first = try HarnessProcess(plan: plan, configuration: configuration, cap: cap(0))
        }
        var boxes = [SlotBox(first)]
        for i in 1..<slots { boxes.append(SlotBox(try HarnessProcess(plan: plan, configuration: configuration, cap: cap(i)))) }
        self.memoryCap = capStatus
        self.slots = slots
        self.isolation = plan.isolation + (first.seccomp ? ", seccomp" : ", no seccomp filter")
        self.name = name
        self.idle = Mutex(boxes)
        self.available = DispatchSemaphore(value: slots)
    }

    /// Runs `program` against `suite`. Blocks until a slot is free and the job is done.
    public func run(program: String, suite: TestSuite, limits: Limits = Limits(), jobID: String = UUID().uuidString) throws(InvalidJob) -> ExecutionReport {
        try prepare(program: program, suite: suite, jobID: jobID, limits: limits).run()
    }

    /// A job checked and encoded, to be run later (possibly on another thread).
    public struct Prepared: Sendable {
        let executor: Executor
        let request: JobRequest
        let suite: TestSuite
        let limits: Limits

        /// Blocks until a slot is free and the job is done.
        public func run() -> ExecutionReport { executor.execute(request, suite: suite, limits: limits) }
    }

    /// Checks a job (an `InvalidJob` names what is wrong) without running it.
    public func prepare(program: String, suite: TestSuite, jobID: String = UUID().uuidString, limits: Limits = Limits()) throws(InvalidJob) -> Prepared {
        Prepared(executor: self, request: try JobRequest.make(id: jobID, program: program, suite: suite, limits: limits),
                 suite: suite, limits: limits)
    }

    func execute(_ request: JobRequest, suite: TestSuite, limits: Limits) -> ExecutionReport {
        available.wait()
        let box = idle.withLock { $0.removeLast() }
        defer {
            idle.withLock { $0.append(box) }
            available.signal()
        }
        let started = Date()
        let deadline = started.addingTimeInterval(request.deadlineSeconds)
        do {
            let harness = try box.harness()
            let cap = harness.cap
            cap?.setLimit(MemoryCap.bytes(for: limits))
            if let cap, cap.pidsDirectory != nil, !cap.setProcessLimit(limits.processes) {
                box.discard()
                return .infrastructureError("cannot set the job's process cap in \(cap.pidsDirectory ?? "")")
            }
            let killsBefore = cap?.oomKills() ?? 0
            do {
                try harness.send(request.json, deadline: deadline)
            } catch {
                // The slot's sandbox ended after its last job and nothing of this one reached
                // it: restart it (the same process and cgroup, caps already set) and hand the
                // job over once more.
                guard error.undelivered else { throw error }
                box.discard()
                try box.harness().send(request.json, deadline: deadline)
            }
            let answer = try harness.receive(deadline: deadline)
            let capHit = (cap?.oomKills() ?? 0) > killsBefore
            if let failure = answer["infrastructure"]?.stringValue {
                box.discard()   // restarted before its next job: nothing of this job can linger
                return .infrastructureError(failure + (capHit ? " (the job's memory cap was hit)" : ""))
            }
            var results = try JobAnswer.tests(of: answer)
            if capHit { results = results.map { JobAnswer.capExceeded($0, bytes: MemoryCap.bytes(for: limits)) } }
            return try JobAnswer.verdict(from: results, suite: suite, limits: limits, isolation: isolation, executor: name)
        } catch {
            box.discard()       // restarted before the next job
            return .infrastructureError("\(error)")
        }
    }

    /// A slot's harness, restarted before its next job after it failed. Owned by one
    /// thread at a time (taken from and returned to the idle list under its lock).
    final class SlotBox: @unchecked Sendable {
        private let process: HarnessProcess
        private var broken = false

        init(_ process: HarnessProcess) { self.process = process }

        func harness() throws -> HarnessProcess {
            if broken {
                process.stop()
                try process.start()
                broken = false
            }
            return process
        }

        func discard() {
            process.stop()
            broken = true
        }
    }
}
