import Foundation
import Ledger
import Schema
import TestSupport
import XCTest

/// A damaged ledger is an error message, never a crash: a truncated data file is refused by
/// every command when it opens it, and `coderl ledger verify` walks every table in a child
/// process, so damaged pages are reported with the table they are in.
final class LedgerVerifyTests: XCTestCase {
    var root = ""

    override func setUp() {
        root = NSTemporaryDirectory() + "coderl-verify-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    func coderl(_ arguments: [String]) throws -> (status: Int32, output: String, signaled: Bool) {
        let pipe = Pipe()
        let process = try startCLI("coderl", arguments, output: pipe)
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self), process.terminationReason == .uncaughtSignal)
    }

    /// A ledger of 3,000 rollouts (several megabytes: many pages).
    func makeLedger() throws -> String {
        let path = root + "/ledger"
        let ledger = try Ledger(path: path)
        try ledger.store(problem: Problem.with { $0.id = "mine/add"; $0.prompt = "Write add." }, exampleTests: nil,
                         hiddenTests: TestSuite.with { $0.format = .assert; $0.cases = [TestCase.with { $0.code = "assert add(1, 2) == 3" }] })
        for batch in 0..<30 {
            try ledger.append((0..<100).map { i in
                var r = Rollout()
                r.problemID = "mine/add"
                r.programTokens = (0..<200).map { UInt32($0 + i + batch) }
                r.logprobs = r.programTokens.map { -Float($0) / 1000 }
                r.program = String(repeating: "x = \(i)\n", count: 40)
                return r
            })
        }
        return path
    }

    func copy(_ ledger: String, to name: String) throws -> String {
        let target = root + "/" + name
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: ledger + "/data.mdb", toPath: target + "/data.mdb")
        return target
    }

    func testVerifyReportsAGoodLedgerAsWhole() throws {
        let ledger = try makeLedger()
        let result = try coderl(["ledger", "verify", ledger])
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.output.contains("3000 entries  ok"), result.output)
        XCTAssertTrue(result.output.contains("every entry reads"), result.output)
    }

    func testATruncatedLedgerIsAClearErrorForEveryReader() throws {
        let ledger = try makeLedger()
        let size = try FileManager.default.attributesOfItem(atPath: ledger + "/data.mdb")[.size] as! Int
        let truncated = try copy(ledger, to: "truncated")
        XCTAssertEqual(truncate(truncated + "/data.mdb", off_t(size / 2)), 0)
        // In this process: an error at open, before anything is mapped and read.
        XCTAssertThrowsError(try Ledger.openForReading(path: truncated)) { error in
            XCTAssertTrue("\(error)".contains("is truncated"), "\(error)")
        }
        XCTAssertThrowsError(try Ledger(path: truncated)) { error in
            XCTAssertTrue("\(error)".contains("is truncated"), "\(error)")
        }
        // The commands that read ledgers: an error, not SIGBUS.
        for arguments in [["rollouts", "list", "--ledger", truncated], ["evals", "--ledger", truncated],
                          ["report", "--ledger", truncated, "--out", root + "/r.html"], ["ledger", "verify", truncated]] {
            let result = try coderl(arguments)
            XCTAssertFalse(result.signaled, "\(arguments): \(result.output)")
            XCTAssertNotEqual(result.status, 0, "\(arguments)")
            XCTAssertTrue(result.output.contains("truncated"), "\(arguments): \(result.output)")
        }
        // The original is untouched and still reads.
        XCTAssertEqual(try coderl(["ledger", "verify", ledger]).status, 0)
    }

    func testDamagedPagesAreReportedWithoutCrashingTheCaller() throws {
        let ledger = try makeLedger()
        let size = try FileManager.default.attributesOfItem(atPath: ledger + "/data.mdb")[.size] as! Int
        var seen: Set<String> = []
        // Garbage over four pages in the middle of the file, at a few places.
        for (index, fraction) in [0.25, 0.5, 0.75].enumerated() {
            let damaged = try copy(ledger, to: "damaged-\(index)")
            let handle = try XCTUnwrap(FileHandle(forUpdatingAtPath: damaged + "/data.mdb"))
            var generator = SystemRandomNumberGenerator()
            let page = (Int(Double(size) * fraction) / 4096) * 4096
            try handle.seek(toOffset: UInt64(page))
            handle.write(Data((0..<4 * 4096).map { _ in UInt8.random(in: 0...255, using: &generator) }))
            try handle.close()
            let result = try coderl(["ledger", "verify", damaged])
            XCTAssertFalse(result.signaled, "verify itself must not crash: \(result.output)")
            XCTAssertEqual(result.status, 1, result.output)
            let what = result.output.contains("crashed the reader") ? "crash" : result.output.contains("damaged") ? "damaged" : result.output.contains("MDB_") || result.output.contains("corrupt") ? "lmdb" : "other"
            XCTAssertNotEqual(what, "other", result.output)
            seen.insert(what)
        }
        print("LedgerVerifyTests: damage found as \(seen.sorted())")
    }
}
