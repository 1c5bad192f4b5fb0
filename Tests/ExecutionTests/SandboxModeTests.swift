import Execution
import Foundation
import Schema
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

    func testRelaxedModeStillEnforcesLimitsAndCleansUp() throws {
        var configuration = SandboxConfiguration()
        configuration.mode = .relaxed
        configuration.bubblewrap = "/nonexistent/bwrap"
        setenv("PATH", "/nonexistent", 1)
        let executor = try Executor(slots: 1, configuration: configuration)
        setenv("PATH", "/usr/local/bin:/usr/bin:/bin", 1)
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
            setenv("PATH", "/nonexistent", 1)
            let shortLived = try Executor(slots: 1, configuration: configuration)
            setenv("PATH", "/usr/local/bin:/usr/bin:/bin", 1)
            XCTAssertEqual(try shortLived.run(program: note, suite: stdioSuite([("", "ok")]), limits: limits).verdict?.outcome, .passed)
            last = try String(contentsOfFile: cwdFile, encoding: .utf8)
            XCTAssertTrue(FileManager.default.fileExists(atPath: last + "/left-behind"), last)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: last), "the last job directory is removed with its executor")
    }
}
