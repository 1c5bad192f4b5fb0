import Foundation
import XCTest
import LMDB

/// A fresh directory under the system temporary folder, removed by `tearDown`.
func temporaryDirectory(_ label: String) -> String {
    let path = NSTemporaryDirectory() + "coderl-\(label)-\(UUID().uuidString)"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

final class EnvironmentTests: XCTestCase {
    var path = ""

    override func setUp() { path = temporaryDirectory("lmdb") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: path) }

    func testPutGetDeleteAndCount() throws {
        let env = try Environment(path: path)
        let db = try env.openDatabase("things")
        try env.write { txn in
            try txn.put(db, Array("b".utf8), [2, 2])
            try txn.put(db, Array("a".utf8), [1])
            XCTAssertFalse(try txn.put(db, Array("a".utf8), [9], flags: .noOverwrite))
        }
        try env.read { txn in
            XCTAssertEqual(try txn.get(db, Array("a".utf8)), [1])
            XCTAssertEqual(try txn.get(db, Array("b".utf8)), [2, 2])
            XCTAssertNil(try txn.get(db, Array("c".utf8)))
            XCTAssertEqual(try txn.count(db), 2)
        }
        try env.write { txn in
            XCTAssertTrue(try txn.delete(db, Array("a".utf8)))
            XCTAssertFalse(try txn.delete(db, Array("a".utf8)))
        }
        XCTAssertEqual(try env.read { try $0.count(db) }, 1)
    }

    func testThrowingBodyAbortsTheTransaction() throws {
        struct Stop: Error {}
        let env = try Environment(path: path)
        let db = try env.openDatabase("things")
        XCTAssertThrowsError(try env.write { txn in
            try txn.put(db, [1], [1])
            throw Stop()
        }) { XCTAssertTrue($0 is Stop) }
        XCTAssertEqual(try env.read { try $0.count(db) }, 0)
    }

    func testDataSurvivesReopenAndHandlesAreCached() throws {
        do {
            let env = try Environment(path: path)
            let db = try env.openDatabase("things")
            XCTAssertEqual(try env.openDatabase("things"), db)
            try env.write { try $0.put(db, UInt64(7).sortableKey, [7]) }
        }
        let env = try Environment(path: path)
        let db = try env.openDatabase("things", create: false)
        XCTAssertEqual(try env.read { try $0.get(db, UInt64(7).sortableKey) }, [7])
        XCTAssertThrowsError(try env.openDatabase("missing", create: false)) { error in
            XCTAssertEqual(error as? LMDBUsageError, .databaseNotCreated("missing"))
        }
    }

    func testCursorWalksInKeyOrderAndSeeks() throws {
        let env = try Environment(path: path)
        let db = try env.openDatabase("seq")
        try env.write { txn in
            for i: UInt64 in [300, 5, 70_000, 1 << 40, 256] { try txn.put(db, i.sortableKey, [UInt8(i % 251)]) }
        }
        var seen: [UInt64] = []
        try env.read { txn in
            try txn.forEach(db) { key, _ in seen.append(UInt64(sortableKey: key)!); return true }
        }
        XCTAssertEqual(seen, [5, 256, 300, 70_000, 1 << 40])
        seen = []
        try env.read { txn in
            try txn.forEach(db, from: UInt64(257).sortableKey) { key, _ in
                seen.append(UInt64(sortableKey: key)!)
                return seen.count < 2
            }
        }
        XCTAssertEqual(seen, [300, 70_000])
        let last = try env.read { txn in
            try txn.withCursor(db) { cursor in try cursor.last() ? UInt64(sortableKey: cursor.currentKey) : nil }
        }
        XCTAssertEqual(last, 1 << 40)
    }

    func testAppendRejectsOutOfOrderKeys() throws {
        let env = try Environment(path: path)
        let db = try env.openDatabase("seq")
        try env.write { txn in
            try txn.put(db, UInt64(1).sortableKey, [1], flags: .append)
            try txn.put(db, UInt64(2).sortableKey, [2], flags: .append)
        }
        XCTAssertThrowsError(try env.write { try $0.put(db, UInt64(1).sortableKey, [1], flags: .append) }) { error in
            XCTAssertEqual((error as? LMDBError)?.code, LMDBError.keyExists)
        }
    }

    func testMapGrowsWhenFullAndTheWorkIsRedone() throws {
        var options = Environment.Options()
        options.mapSize = 1 << 20
        let env = try Environment(path: path, options: options)
        let db = try env.openDatabase("big")
        let value = [UInt8](repeating: 0xAB, count: 64 << 10)
        var attempts = 0
        try env.write { txn in
            attempts += 1
            for i in 0..<64 as Range<UInt64> { try txn.put(db, i.sortableKey, value) }
        }
        XCTAssertGreaterThan(attempts, 1, "a 4 MiB write into a 1 MiB map must have been redone")
        XCTAssertGreaterThanOrEqual(env.mapSize, 4 << 20)
        try env.read { txn in
            XCTAssertEqual(try txn.count(db), 64)
            XCTAssertEqual(try txn.get(db, UInt64(63).sortableKey), value)
        }
    }

    func testMapGrowthStopsAtTheLimitWithAClearError() throws {
        var options = Environment.Options()
        options.mapSize = 1 << 20
        options.maxMapSize = 2 << 20
        let env = try Environment(path: path, options: options)
        let db = try env.openDatabase("big")
        let value = [UInt8](repeating: 1, count: 64 << 10)
        XCTAssertThrowsError(try env.write { txn in
            for i in 0..<64 as Range<UInt64> { try txn.put(db, i.sortableKey, value) }
        }) { error in
            XCTAssertEqual((error as? LMDBError)?.code, LMDBError.mapFull)
            XCTAssertTrue("\(error)".contains("limit"), "\(error)")
        }
        XCTAssertEqual(try env.read { try $0.count(db) }, 0)
    }

    func testBadKeysAreRefusedBeforeLMDBSeesThem() throws {
        let env = try Environment(path: path)
        let db = try env.openDatabase("k")
        XCTAssertThrowsError(try env.write { try $0.put(db, [UInt8](), [1]) }) { error in
            XCTAssertEqual(error as? LMDBUsageError, .emptyKey(database: "k"))
        }
        XCTAssertThrowsError(try env.write { try $0.put(db, [UInt8](repeating: 1, count: 600), [1]) }) { error in
            guard case .keyTooLong(_, 600, _)? = error as? LMDBUsageError else { return XCTFail("\(error)") }
        }
    }

    func testNotAnEnvironmentIsReportedWithThePath() throws {
        try Data("this is not lmdb".utf8 + [UInt8](repeating: 0, count: 8192)).write(to: URL(fileURLWithPath: path + "/data.mdb"))
        XCTAssertThrowsError(try Environment(path: path)) { error in
            XCTAssertTrue("\(error)".contains(path), "\(error)")
            XCTAssertEqual((error as? LMDBError)?.code, MDB_INVALID_CODE)
        }
    }

    func testConcurrentReadersAndOneWriterSeeConsistentSnapshots() throws {
        let env = try Environment(path: path)
        let db = try env.openDatabase("pairs")
        // Writers keep two keys equal; readers must never see them differ.
        final class Shared: @unchecked Sendable {  // every field is read and written under `lock`
            let lock = NSLock()
            var stop = false
            var mismatches = 0
            var reads = 0
        }
        let shared = Shared()
        let group = DispatchGroup()
        for _ in 0..<2 {
            DispatchQueue.global().async(group: group) {
                while !shared.lock.withLock({ shared.stop }) {
                    let pair = try? env.read { txn in (try txn.get(db, [1]), try txn.get(db, [2])) }
                    shared.lock.withLock {
                        shared.reads += 1
                        if let pair, pair.0 != pair.1 { shared.mismatches += 1 }
                    }
                }
            }
        }
        for i in 0..<500 as Range<UInt64> {
            try env.write { txn in
                try txn.put(db, [1], i.sortableKey)
                try txn.put(db, [2], i.sortableKey)
            }
        }
        shared.lock.withLock { shared.stop = true }
        group.wait()
        let mismatches = shared.mismatches
        XCTAssertGreaterThan(shared.reads, 0)
        XCTAssertEqual(mismatches, 0)
    }
}

let MDB_INVALID_CODE: Int32 = -30793
