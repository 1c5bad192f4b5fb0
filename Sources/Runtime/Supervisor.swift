import Foundation

/// Starts processes, restarts the ones that crash (with doubling back-off), and stops them all.
/// Used by `coderl run` for the pipeline roles on this machine.
public final class Supervisor: @unchecked Sendable {  // driven by one thread; `stop` may come from a signal handler
    public struct Role: Sendable {
        public var name: String
        public var executable: String
        public var arguments: [String]
        public var logFile: String
        /// Standard output lines go to `onOutput` instead of the log (the learner's progress).
        public var capturesOutput = false
        /// Exit status 0 ends the run (the learner finishing); other roles are restarted on any exit.
        public var finishesRun = false
        /// Added to the supervisor's own environment.
        public var environment: [String: String] = [:]
        /// Seconds between SIGTERM and SIGKILL when the run stops (the learner finishes the step
        /// it is in and checkpoints, which takes longer than the others need).
        public var stopGrace: TimeInterval = 10

        public init(name: String, executable: String, arguments: [String], logFile: String) {
            self.name = name
            self.executable = executable
            self.arguments = arguments
            self.logFile = logFile
        }
    }

    final class Running {
        var role: Role
        var process: Process?
        var restarts = 0
        var consecutiveCrashes = 0
        var startedAt = Date()
        var restartAt: Date?
        init(role: Role) { self.role = role }
    }

    public let restartLimit: Int
    public let backoff: TimeInterval
    public let pidDirectory: String
    private var roles: [Running] = []
    private let stopping = NSLock()
    private var stopRequested = false
    private let note: (String) -> Void
    private let onOutput: (String) -> Void

    public init(roles: [Role], restartLimit: Int, backoffMs: Int, pidDirectory: String,
                note: @escaping (String) -> Void, onOutput: @escaping (String) -> Void) {
        self.roles = roles.map(Running.init)
        self.restartLimit = restartLimit
        backoff = Double(backoffMs) / 1000
        self.pidDirectory = pidDirectory
        self.note = note
        self.onOutput = onOutput
    }

    public func requestStop() { stopping.withLock { stopRequested = true } }
    var shouldStop: Bool { stopping.withLock { stopRequested } }

    private func start(_ r: Running) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: r.role.executable)
        p.arguments = r.role.arguments
        if !r.role.environment.isEmpty {
            p.environment = ProcessInfo.processInfo.environment.merging(r.role.environment) { $1 }
        }
        // Appended to: a restarted role's log keeps what its predecessor said before it died.
        if !FileManager.default.fileExists(atPath: r.role.logFile) { FileManager.default.createFile(atPath: r.role.logFile, contents: nil) }
        let log = FileHandle(forWritingAtPath: r.role.logFile)!
        log.seekToEndOfFile()
        p.standardError = log
        p.standardInput = FileHandle.nullDevice
        if r.role.capturesOutput {
            let pipe = Pipe()
            p.standardOutput = pipe
            let sink = onOutput
            let reader = LineReader(pipe.fileHandleForReading) { sink($0) }
            reader.start()
        } else {
            p.standardOutput = log
        }
        try p.run()
        r.process = p
        r.startedAt = Date()
        r.restartAt = nil
        try? "\(p.processIdentifier)\n".write(toFile: pidDirectory + "/" + r.role.name + ".pid", atomically: true, encoding: .utf8)
    }

    /// Runs until the role that finishes the run exits with 0 (returns true), a role exceeds
    /// its restart limit (false), or `requestStop()` (false). All processes are stopped on return.
    public func run() throws -> Bool {
        try FileManager.default.createDirectory(atPath: pidDirectory, withIntermediateDirectories: true)
        for r in roles { try start(r) }
        note("started " + roles.map { "\($0.role.name) (pid \($0.process!.processIdentifier))" }.joined(separator: ", "))
        defer { stopAll() }
        while !shouldStop {
            Thread.sleep(forTimeInterval: 0.1)
            for r in roles {
                if let at = r.restartAt {
                    if Date() >= at {
                        try start(r)
                        note("restarted \(r.role.name) (restart \(r.restarts), pid \(r.process!.processIdentifier))")
                    }
                    continue
                }
                guard let p = r.process else { continue }
                if p.isRunning {
                    if Date().timeIntervalSince(r.startedAt) > 60 { r.consecutiveCrashes = 0 }
                    continue
                }
                let status = p.terminationStatus
                let signaled = p.terminationReason == .uncaughtSignal
                if r.role.finishesRun && !signaled && status == 0 { return true }
                if shouldStop { break }
                r.restarts += 1
                r.consecutiveCrashes += 1
                let how = signaled ? "killed by signal \(status)" : "exited with status \(status)"
                if r.restarts > restartLimit {
                    note("\(r.role.name) \(how); it has been restarted \(restartLimit) times, giving up (see \(r.role.logFile))")
                    return false
                }
                let delay = min(30, backoff * pow(2, Double(max(0, r.consecutiveCrashes - 1))))
                note(String(format: "%@ %@; restarting in %.1f s (see %@)", r.role.name, how, delay, r.role.logFile))
                r.restartAt = Date().addingTimeInterval(delay)
                r.process = nil
            }
        }
        return false
    }

    /// SIGTERM to every process, then SIGKILL to those still running after their role's
    /// `stopGrace` seconds (or `grace`, when given, for all).
    public func stopAll(grace: TimeInterval? = nil) {
        let live = roles.compactMap { r in r.process.map { (r.role, $0) } }.filter { $0.1.isRunning }
        for (_, p) in live { kill(p.processIdentifier, SIGTERM) }
        let started = Date()
        for (role, p) in live {
            let limit = grace ?? role.stopGrace
            while p.isRunning && Date().timeIntervalSince(started) < limit { Thread.sleep(forTimeInterval: 0.05) }
            if p.isRunning {
                note("\(role.name) (pid \(p.processIdentifier)) did not stop within \(Int(limit)) s; killing it")
                kill(p.processIdentifier, SIGKILL)
            }
        }
        for (_, p) in live { p.waitUntilExit() }
        for r in roles { try? FileManager.default.removeItem(atPath: pidDirectory + "/" + r.role.name + ".pid") }
    }
}

/// Reads lines from a pipe on its own thread.
final class LineReader: @unchecked Sendable {
    let handle: FileHandle
    let body: (String) -> Void
    init(_ handle: FileHandle, _ body: @escaping (String) -> Void) {
        self.handle = handle
        self.body = body
    }
    func start() {
        Thread.detachNewThread { [self] in
            var buffer = Data()
            while true {
                let data = handle.availableData
                if data.isEmpty { break }
                buffer.append(data)
                while let nl = buffer.firstIndex(of: 10) {
                    body(String(decoding: buffer[buffer.startIndex..<nl], as: UTF8.self))
                    buffer.removeSubrange(buffer.startIndex...nl)
                }
            }
            if !buffer.isEmpty { body(String(decoding: buffer, as: UTF8.self)) }
        }
    }
}
