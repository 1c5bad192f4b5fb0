import Foundation
import Schema
import TestSupport
import XCTest
import Ledger

/// The ledger is a plain LMDB environment: Debian's lmdb-utils read, dump and copy it.
final class ToolCompatibilityTests: XCTestCase {
    func tool(_ name: String) throws -> String {
        for dir in ["/usr/bin", "/usr/local/bin"] where FileManager.default.isExecutableFile(atPath: "\(dir)/\(name)") {
            return "\(dir)/\(name)"
        }
        XCTFail("\(name) is missing: install the Debian package lmdb-utils (make setup does)")
        throw XCTSkip("no \(name)")
    }

    func testStockToolsOpenDumpAndCopyTheLedger() throws {
        let path = temporaryDirectory("ledger-tools")
        let copy = temporaryDirectory("ledger-copy")
        defer { try? FileManager.default.removeItem(atPath: path); try? FileManager.default.removeItem(atPath: copy) }
        do {
            let ledger = try Ledger(path: path)
            try ledger.append((0..<25).map { sampleRollout(problem: "p\($0)", tokens: [UInt32($0)]) })
        }

        let stat = try runProcess(tool("mdb_stat"), ["-a", path])
        XCTAssertEqual(stat.status, 0, stat.output)
        XCTAssertTrue(stat.output.contains("Status of rollouts"), stat.output)
        XCTAssertTrue(stat.output.contains("Entries: 25"), stat.output)

        let dump = try runProcess(tool("mdb_dump"), ["-s", "rollouts", path])
        XCTAssertEqual(dump.status, 0, dump.output)
        // mdb_dump prints each key as hex on its own line: sequence 25 is 0000000000000019.
        XCTAssertTrue(dump.output.contains(" 0000000000000019\n"), dump.output)

        let copied = try runProcess(tool("mdb_copy"), [path, copy])
        XCTAssertEqual(copied.status, 0, copied.output)
        let reopened = try Ledger.openForReading(path: copy)
        XCTAssertEqual(try reopened.lastSequence(), 25)
        XCTAssertEqual(try reopened.rollout(sequence: 25)?.problemID, "p24")
    }
}
