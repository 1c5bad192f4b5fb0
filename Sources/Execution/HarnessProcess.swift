import CProcess
import Datasets
import Foundation

/// One slot: a long-lived harness process (the evaluator, inside bubblewrap, with its sandbox
/// init) that runs one job at a time. Jobs and answers cross its stdin and stdout as
/// length-prefixed JSON.
final class HarnessProcess {
    private(set) var pid: pid_t = 0
    private var toHarness: Int32 = -1
    private var fromHarness: Int32 = -1
    private var errorLog: Int32 = -1
    let plan: SandboxPlan
    let settings: String
    /// The slot's memory cgroup, joined before the harness starts anything (nil: none).
    let cap: MemoryCap?
    /// Whether the harness installs its seccomp filter (it says so when it starts).
    private(set) var seccomp = false

    init(plan: SandboxPlan, configuration: SandboxConfiguration, cap: MemoryCap? = nil) throws {
        self.plan = plan
        self.cap = cap
        let settings: JSON = .object([
            ("mode", .string(plan.harnessMode)),
            ("scratch", .string(configuration.scratchDirectory)),
            ("paths", .array(configuration.modulePaths.map(JSON.string))),
            ("seccomp", .bool(configuration.seccomp)),
            ("process_cap", .bool(cap?.pidsDirectory != nil)),
        ])
        self.settings = settings.text
        try start()
    }

    deinit { stop(grace: 1) }      // then the cap, if no other slot holds it, removes its cgroup

    /// Spawns the harness and waits for its probe (a trivial program run the way jobs run).
    func start() throws {
        let harness = String(decoding: PackageResources.harness_py, as: UTF8.self)
        var argv = plan.command + [harness, settings]
        if let cap {
            // A shell joins the cgroups, then becomes the slot: nothing starts outside the cap.
            // ($0 is the first file, $1... the others, shifted away before the exec.)
            let files = cap.processesFiles
            let joins = files.indices.map { "echo $$ > \"$\($0)\"" }.joined(separator: " && ")
            let script = joins + (files.count > 1 ? " && shift \(files.count - 1)" : "") + " && exec \"$@\""
            argv = ["/bin/sh", "-c", script] + files + argv
        }
        var input: [Int32] = [0, 0], output: [Int32] = [0, 0], errors: [Int32] = [0, 0]
        guard pipe(&input) == 0, pipe(&output) == 0, pipe(&errors) == 0 else {
            throw SandboxUnavailable(reason: "cannot create pipes: \(String(cString: strerror(errno)))")
        }
        for fd in input + output + errors { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, input[0], 0)
        posix_spawn_file_actions_adddup2(&actions, output[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errors[1], 2)
        // The slot starts from exactly stdin, stdout and stderr: nothing else this process has
        // open (a ledger, a socket, a model file) reaches the sandbox, close-on-exec or not.
        guard coderl_spawn_close_from(&actions, 3) == 0 else {
            for fd in input + output + errors { close(fd) }
            throw SandboxUnavailable(reason: "cannot limit the sandbox's descriptors (glibc 2.34 or later is needed)")
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Its own process group, so a stuck slot is killed whole (bwrap, evaluator, sandbox init).
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        posix_spawnattr_setpgroup(&attributes, 0)
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaults = sigset_t()
        sigfillset(&defaults)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        // The executor's environment (tokens, keys) never reaches the sandbox.
        let environment = ["PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"]
        var child: pid_t = 0
        let status = withCStrings(argv) { cargv in
            withCStrings(environment) { cenv in posix_spawn(&child, argv[0], &actions, &attributes, cargv, cenv) }
        }
        close(input[0]); close(output[1]); close(errors[1])
        guard status == 0 else {
            close(input[1]); close(output[0]); close(errors[0])
            throw SandboxUnavailable(reason: "cannot start \(argv[0]): \(String(cString: strerror(status)))")
        }
        pid = child
        toHarness = input[1]
        fromHarness = output[0]
        // Written with a deadline: a harness that stopped reading must not hang us.
        _ = fcntl(toHarness, F_SETFL, fcntl(toHarness, F_GETFL) | O_NONBLOCK)
        errorLog = errors[0]
        _ = fcntl(errorLog, F_SETFL, fcntl(errorLog, F_GETFL) | O_NONBLOCK)
        let hello: JSON
        do {
            hello = try receive(deadline: Date().addingTimeInterval(60))
        } catch {
            let log = drainErrorLog()
            stop()
            throw SandboxUnavailable(reason: "the sandbox did not start (\(error))\(log.isEmpty ? "" : ": " + log)")
        }
        seccomp = hello["seccomp"] == .bool(true)
        guard hello["ready"] == .bool(true) else {
            let reason = hello["reason"]?.stringValue ?? hello.text
            let log = drainErrorLog()
            stop()
            throw SandboxUnavailable(reason: "the sandbox probe failed: \(reason)\(log.isEmpty ? "" : " (" + log + ")")")
        }
    }

    /// Kills the whole slot (process group) and reaps it. With `grace`, first ends the
    /// harness's input and waits up to that many seconds for it to finish cleanly (its sandbox
    /// init then removes what it made: relaxed mode's job directory).
    func stop(grace: Double = 0) {
        guard pid > 0 else { return closeDescriptors() }
        if grace > 0, toHarness >= 0 {
            close(toHarness)
            toHarness = -1
            let deadline = Date().addingTimeInterval(grace)
            var info = siginfo_t()
            // WNOWAIT: the ended harness stays a zombie, so its pid (the group's id) cannot be
            // reused before the group is killed below.
            while Date() < deadline {
                info = siginfo_t()
                if waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_signo != 0 { break }
                usleep(2000)
            }
        }
        kill(-pid, SIGKILL)       // the whole slot: bubblewrap, harness, whatever is left
        kill(pid, SIGKILL)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        pid = 0
        closeDescriptors()
    }

    private func closeDescriptors() {
        for fd in [toHarness, fromHarness, errorLog] where fd >= 0 { close(fd) }
        toHarness = -1; fromHarness = -1; errorLog = -1
    }

    /// Sends a job on the harness's stdin.
    func send(_ message: JSON, deadline: Date) throws(HarnessFailure) {
        try write(frame(message), to: toHarness, deadline: deadline)
    }

    private func frame(_ message: JSON) -> [UInt8] {
        let body = Array(message.text.utf8)
        let n = UInt32(body.count)
        return [UInt8(n & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n >> 16 & 0xFF), UInt8(n >> 24)] + body
    }

    private func write(_ frame: [UInt8], to fd: Int32, deadline: Date) throws(HarnessFailure) {
        var offset = 0
        while offset < frame.count {
            let n = frame[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n >= 0 {
                offset += n
                continue
            }
            guard errno == EAGAIN || errno == EINTR else {
                throw HarnessFailure("writing to the sandbox failed: \(String(cString: strerror(errno)))", undelivered: errno == EPIPE && offset == 0)
            }
            let left = deadline.timeIntervalSinceNow
            if left <= 0 { throw HarnessFailure("the sandbox did not take the job before its deadline") }
            var descriptor = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            _ = poll(&descriptor, 1, Int32(min(left * 1000 + 1, 60_000)))
        }
    }

    func receive(deadline: Date) throws(HarnessFailure) -> JSON {
        let header = try read(count: 4, deadline: deadline)
        let length = Int(UInt32(header[0]) | UInt32(header[1]) << 8 | UInt32(header[2]) << 16 | UInt32(header[3]) << 24)
        guard length <= 256 << 20 else { throw HarnessFailure("the sandbox sent a message of \(length) bytes") }
        let body = try read(count: length, deadline: deadline)
        do {
            return try JSON.parse(body)
        } catch {
            throw HarnessFailure("the sandbox sent malformed JSON: \(error)")
        }
    }

    private func read(count: Int, deadline: Date) throws(HarnessFailure) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        var offset = 0
        while offset < count {
            let left = deadline.timeIntervalSinceNow
            if left <= 0 { throw HarnessFailure("no answer from the sandbox before the job's deadline") }
            var descriptor = pollfd(fd: fromHarness, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, Int32(min(left * 1000 + 1, 60_000)))
            if ready < 0 {
                if errno == EINTR { continue }
                throw HarnessFailure("poll failed: \(String(cString: strerror(errno)))")
            }
            if ready == 0 { continue }
            let n = buffer[offset...].withUnsafeMutableBytes { Glibc.read(fromHarness, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                throw HarnessFailure("reading from the sandbox failed: \(String(cString: strerror(errno)))")
            }
            if n == 0 {
                let log = drainErrorLog()
                throw HarnessFailure("the sandbox process ended\(log.isEmpty ? "" : ": " + log)")
            }
            offset += n
        }
        return buffer
    }

    /// What the harness (or bwrap) wrote to stderr, for error reports.
    func drainErrorLog() -> String {
        guard errorLog >= 0 else { return "" }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 16384 {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(errorLog, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            bytes += chunk[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// The slot failed (not the program): an infrastructure error.
struct HarnessFailure: Error, CustomStringConvertible {
    let description: String
    /// The sandbox was gone before any byte of the job reached it (it ended after an earlier
    /// job): the job did not start, so running it on a restarted sandbox is safe.
    let undelivered: Bool
    init(_ description: String, undelivered: Bool = false) {
        self.description = description
        self.undelivered = undelivered
    }
}

func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
    var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    pointers.append(nil)
    defer { for p in pointers { free(p) } }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}
