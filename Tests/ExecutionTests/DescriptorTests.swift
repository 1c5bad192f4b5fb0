import Execution
import Foundation
import LMDB
import Schema
import XCTest

/// Programs start from exactly the descriptors the harness gives them, whatever the executor's
/// process holds open: a ledger (LMDB opens its files without close-on-exec) or any file
/// opened without close-on-exec by the process the executor runs in.
final class DescriptorTests: XCTestCase {
    /// The program's open descriptors, by format. stdio: stdin, stdout, stderr and the run
    /// report (3); call-serving programs: also their two call pipes (4, 5).
    static let lister = """
        import os
        def open_descriptors():
            found = []
            for fd in range(1024):
                try:
                    os.fstat(fd)
                    found.append(fd)
                except OSError:
                    pass
            return found
        """

    /// Suites of every test format that pass only when the program's descriptors are exactly
    /// those of its kind.
    static func suites() -> [(String, TestSuite, String)] {
        let stdio = lister + "\nprint(*open_descriptors())\n"
        let calls = lister + "\ndef descriptors():\n    return open_descriptors()\n"
        let check = """
            def check(candidate):
                assert candidate() == [0, 1, 2, 3, 4, 5], candidate()
            """
        return [
            ("stdio", stdioSuite([("", "0 1 2 3")]), stdio),
            ("call", callSuite("descriptors", [("[]", "[0, 1, 2, 3, 4, 5]")]), calls),
            ("assert", assertSuite("descriptors", ["assert descriptors() == [0, 1, 2, 3, 4, 5], descriptors()"]), calls),
            ("check", TestSuite.with {
                $0.format = .humanevalCheck
                $0.entryPoint = "descriptors"
                $0.cases = [TestCase.with { $0.code = check }]
            }, calls),
        ]
    }

    func testProgramsSeeNoDescriptorOfTheExecutorsProcess() throws {
        let directory = NSTemporaryDirectory() + "coderl-fds-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // What the executor's process holds while programs run: a ledger and a plain file,
        // both opened without close-on-exec before the slots start.
        let environment = try Environment(path: directory + "/ledger")
        _ = try environment.openDatabase("table")
        let leaked = open(directory + "/ledger/data.mdb", O_RDWR)
        XCTAssertGreaterThan(leaked, 2)
        defer { close(leaked) }
        let executor = try Executor(slots: 1, name: "descriptors")
        for (format, suite, program) in Self.suites() {
            guard case .verdict(let v) = try executor.run(program: program, suite: suite, limits: Shared.quick) else {
                return XCTFail("\(format): infrastructure error")
            }
            XCTAssertEqual(v.outcome, .passed, "\(format): \(v.errorType): \(v.errorMessage)")
        }
        // The test can fail: a program given one descriptor more does not pass.
        let extra = "import os\nos.open('/dev/null', os.O_RDONLY)\n" + Self.suites()[0].2
        guard case .verdict(let control) = try executor.run(program: extra, suite: Self.suites()[0].1, limits: Shared.quick) else {
            return XCTFail("infrastructure error")
        }
        XCTAssertEqual(control.outcome, .failedTest)
    }

    /// LMDB's own descriptors are close-on-exec once an environment is open.
    func testLedgerDescriptorsAreCloseOnExec() throws {
        let directory = NSTemporaryDirectory() + "coderl-fds-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let environment = try Environment(path: directory)
        _ = try environment.openDatabase("table")
        let prefix = URL(fileURLWithPath: directory).resolvingSymlinksInPath().path + "/"
        var found = 0
        for entry in try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") {
            guard let fd = Int32(entry),
                  let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(entry)"),
                  target.hasPrefix(prefix) else { continue }
            found += 1
            XCTAssertNotEqual(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0, "\(target) (fd \(fd)) is inherited by every process started")
        }
        XCTAssertGreaterThanOrEqual(found, 2, "the data file and the lock file")
    }
}
