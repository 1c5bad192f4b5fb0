import Execution
import Foundation
import Schema
import Synchronization
import XCTest

/// Strict refuses without isolation and says why; relaxed runs and says what is missing.
final class SandboxModeTests: XCTestCase {
    func testStrictRefusesWithoutBubblewrap() {
        var configuration = SandboxConfiguration()
        configuration.bubblewrap = "/nonexistent/bwrap"
        setenv("PATH", "/nonexistent", 1)
        defer { setenv("PATH", "/usr/local/bin:/usr/bin:/bin", 1) }
        XCTAssertThrowsError(try Executor(slots: 1, configuration: configuration)) { error in
            XCTAssertTrue("\(error)".contains("bubblewrap (bwrap) is not installed"), "\(error)")
        }
    }

    func testStrictRefusesWhenNamespacesFail() {
        // A "bwrap" that fails the way bwrap does where user namespaces are disabled.
        let fake = NSTemporaryDirectory() + "fake-bwrap-\(getpid())"
        FileManager.default.createFile(atPath: fake, contents: Data("#!/bin/sh\necho 'bwrap: No permissions to creating new namespace' >&2\nexit 1\n".utf8))
        chmod(fake, 0o755)
        defer { unlink(fake) }
        var configuration = SandboxConfiguration()
        configuration.bubblewrap = fake
        XCTAssertThrowsError(try Executor(slots: 1, configuration: configuration)) { error in
            XCTAssertTrue("\(error)".contains("No permissions to creating new namespace"), "\(error)")
        }
        configuration.mode = .relaxed
        do {
            let executor = try Executor(slots: 1, configuration: configuration)
            XCTAssertTrue(executor.isolation.hasPrefix("relaxed: namespaces unavailable"), executor.isolation)
            let report = try executor.run(program: "print(input())", suite: stdioSuite([("7", "7")]))
            XCTAssertEqual(report.verdict?.outcome, .passed)
            XCTAssertEqual(report.verdict?.isolation, executor.isolation, "every verdict carries the reduced isolation")
        } catch {
            XCTFail("relaxed mode must run: \(error)")
        }
    }

    /// An executor in relaxed mode without bubblewrap (none on the PATH while it starts).
    func relaxedExecutor(slots: Int) throws -> Executor {
        var configuration = SandboxConfiguration()
        configuration.mode = .relaxed
        configuration.bubblewrap = "/nonexistent/bwrap"
        setenv("PATH", "/nonexistent", 1)
        defer { setenv("PATH", "/usr/local/bin:/usr/bin:/bin", 1) }
        return try Executor(slots: slots, configuration: configuration)
    }

    func testRelaxedModeStillEnforcesLimitsAndCleansUp() throws {
        let executor = try relaxedExecutor(slots: 1)
        XCTAssertTrue(executor.isolation.hasPrefix("relaxed: no bubblewrap"), executor.isolation)
        let limits = Shared.quick
        XCTAssertEqual(try executor.run(program: "while True: pass", suite: stdioSuite([("", "")]), limits: limits).verdict?.statuses, [.timeout])
        XCTAssertEqual(try executor.run(program: "x = bytearray(10 * 1024 ** 3)", suite: stdioSuite([("", "")]), limits: limits).verdict?.statuses, [.memoryLimit])
        let marker = "/tmp/coderl-relaxed-daemon-\(getpid())"
        let daemon = "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        time.sleep(1)\n        open('\(marker)', 'w').write('x')\n    os._exit(0)\nprint('ok')"
        let forked = try executor.run(program: daemon, suite: stdioSuite([("", "ok")]), limits: limits).verdict
        XCTAssertEqual(forked?.outcome, .passed, "\(forked?.tests ?? []) \(forked?.errorType ?? "") \(forked?.errorMessage ?? "")")
        Thread.sleep(forTimeInterval: 1.5)
        XCTAssertFalse(FileManager.default.fileExists(atPath: marker), "the subreaper kills orphaned daemons")
        unlink(marker)
        // Each run has a fresh job directory, removed before the next run.
        let cwdFile = "/tmp/coderl-relaxed-cwd-\(getpid())"
        defer { unlink(cwdFile) }
        let note = "import os\nopen('left-behind', 'w').write('x')\nopen('\(cwdFile)', 'w').write(os.getcwd())\nprint('ok')"
        XCTAssertEqual(try executor.run(program: note, suite: stdioSuite([("", "ok")]), limits: limits).verdict?.outcome, .passed)
        let first = try String(contentsOfFile: cwdFile, encoding: .utf8)
        XCTAssertTrue(FileManager.default.fileExists(atPath: first + "/left-behind"), first)
        XCTAssertEqual(try executor.run(program: note, suite: stdioSuite([("", "ok")]), limits: limits).verdict?.outcome, .passed)
        let second = try String(contentsOfFile: cwdFile, encoding: .utf8)
        XCTAssertNotEqual(first, second)
        XCTAssertFalse(FileManager.default.fileExists(atPath: first), "the first run's directory is gone")
        // The slot's last job directory goes when its executor does.
        var last = ""
        do {
            let shortLived = try relaxedExecutor(slots: 1)
            XCTAssertEqual(try shortLived.run(program: note, suite: stdioSuite([("", "ok")]), limits: limits).verdict?.outcome, .passed)
            last = try String(contentsOfFile: cwdFile, encoding: .utf8)
            XCTAssertTrue(FileManager.default.fileExists(atPath: last + "/left-behind"), last)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: last), "the last job directory is removed with its executor")
    }

    /// A job's process limit is its own: in relaxed mode every job runs as `nobody`, and a
    /// per-user limit (RLIMIT_NPROC) would count one slot's children against the other's.
    func testRelaxedJobsDoNotShareAProcessBudget() throws {
        let executor = try relaxedExecutor(slots: 2)
        guard executor.memoryCap.contains("memory and processes") else {
            throw XCTSkip("no pids cgroup on this machine (\(executor.memoryCap)): jobs share RLIMIT_NPROC per user")
        }
        let limits = { var l = Shared.roomy; l.processes = 12; return l }()
        // Job A holds ten sleeping children until the marker file goes away.
        let marker = "/tmp/coderl-relaxed-holder-\(getpid())"
        unlink(marker)
        defer { unlink(marker) }
        let holder = """
            import os, time
            for _ in range(10):
                if os.fork() == 0:
                    time.sleep(30)
                    os._exit(0)
            open('\(marker)', 'w').write('x')
            for _ in range(140):
                if not os.path.exists('\(marker)'):
                    break
                time.sleep(0.1)
            print('held')
            """
        let held = Mutex<Verdict?>(nil)
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            let v = try? executor.run(program: holder, suite: stdioSuite([("", "held")]), limits: limits).verdict
            held.withLock { $0 = v }
            done.signal()
        }
        let start = Date()
        while !FileManager.default.fileExists(atPath: marker) && Date().timeIntervalSince(start) < 30 { usleep(20_000) }
        XCTAssertTrue(FileManager.default.fileExists(atPath: marker), "job A never started its children")
        // Job B, beside it, starts processes of its own: with a per-user limit of 12 the 11 of
        // job A would leave it none.
        let forker = """
            import os
            made = 0
            try:
                for _ in range(%d):
                    pid = os.fork()
                    if pid == 0:
                        os._exit(0)
                    os.waitpid(pid, 0)
                    made += 1
            except OSError:
                pass
            print(made)
            """
        var few = limits
        few.processes = 4
        let beside = try executor.run(program: forker.replacingOccurrences(of: "%d", with: "3"), suite: stdioSuite([("", "3")]), limits: limits).verdict
        XCTAssertEqual(beside?.outcome, .passed, "\(beside?.tests ?? []) \(beside?.errorType ?? "") \(beside?.errorMessage ?? "")")
        // One at a time, so a cap of 4 allows every fork; 4 alive at once is refused.
        let bomb = "import os, time\nmade = 0\ntry:\n    for _ in range(8):\n        if os.fork() == 0:\n            time.sleep(5); os._exit(0)\n        made += 1\nexcept OSError:\n    pass\nprint(made)"
        let capped = try executor.run(program: bomb, suite: stdioSuite([("", "3")]), limits: few).verdict
        XCTAssertEqual(capped?.outcome, .passed, "the program and 3 children fill a cap of 4: \(capped?.tests ?? [])")
        unlink(marker)
        XCTAssertEqual(done.wait(timeout: .now() + 30), .success)
        XCTAssertEqual(held.withLock { $0 }?.outcome, .passed)
    }
}
