// Smoke tests proving the three C libraries link and work. Only these tests and the wrapper
// modules import the C modules directly.
import CBLAS
import CLMDB
import CZeroMQ
import Foundation
import XCTest

final class SystemLibraryTests: XCTestCase {
    func testOpenBLASMultipliesMatrices() {
        // [1 2; 3 4] · [5 6; 7 8] = [19 22; 43 50]
        let a: [Float] = [1, 2, 3, 4], b: [Float] = [5, 6, 7, 8]
        var c = [Float](repeating: 0, count: 4)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 2, 2, 2, 1, a, 2, b, 2, 0, &c, 2)
        XCTAssertEqual(c, [19, 22, 43, 50])
        XCTAssertFalse(String(cString: openblas_get_corename()).isEmpty)
    }

    func testZeroMQSendsAndReceivesOverInproc() throws {
        var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        XCTAssertGreaterThanOrEqual(major, 4)
        let ctx = zmq_ctx_new()!
        let server = zmq_socket(ctx, ZMQ_PAIR)!, client = zmq_socket(ctx, ZMQ_PAIR)!
        XCTAssertEqual(zmq_bind(server, "inproc://smoke"), 0)
        XCTAssertEqual(zmq_connect(client, "inproc://smoke"), 0)
        let message = Array("hello".utf8)
        XCTAssertEqual(zmq_send(client, message, message.count, 0), 5)
        var buffer = [UInt8](repeating: 0, count: 16)
        XCTAssertEqual(zmq_recv(server, &buffer, buffer.count, 0), 5)
        XCTAssertEqual(Array(buffer.prefix(5)), message)
        var linger: Int32 = 0
        zmq_setsockopt(server, ZMQ_LINGER, &linger, 4)
        zmq_setsockopt(client, ZMQ_LINGER, &linger, 4)
        zmq_close(server)
        zmq_close(client)
        XCTAssertEqual(zmq_ctx_term(ctx), 0)
    }

    func testLMDBStoresAndReadsBackAValue() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lmdb-smoke-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var env: OpaquePointer?
        XCTAssertEqual(mdb_env_create(&env), 0)
        defer { mdb_env_close(env) }
        XCTAssertEqual(mdb_env_open(env, dir.path, 0, 0o644), 0)
        var txn: OpaquePointer?
        XCTAssertEqual(mdb_txn_begin(env, nil, 0, &txn), 0)
        var dbi: MDB_dbi = 0
        XCTAssertEqual(mdb_dbi_open(txn, nil, 0, &dbi), 0)
        var keyBytes = Array("key".utf8), valueBytes = Array("value".utf8)
        keyBytes.withUnsafeMutableBytes { k in
            valueBytes.withUnsafeMutableBytes { v in
                var key = MDB_val(mv_size: k.count, mv_data: k.baseAddress)
                var val = MDB_val(mv_size: v.count, mv_data: v.baseAddress)
                XCTAssertEqual(mdb_put(txn, dbi, &key, &val, 0), 0)
                XCTAssertEqual(mdb_txn_commit(txn), 0)
                var rtxn: OpaquePointer?
                XCTAssertEqual(mdb_txn_begin(env, nil, UInt32(MDB_RDONLY), &rtxn), 0)
                var out = MDB_val()
                XCTAssertEqual(mdb_get(rtxn, dbi, &key, &out), 0)
                let got = Array(UnsafeRawBufferPointer(start: out.mv_data, count: out.mv_size))
                XCTAssertEqual(got, Array("value".utf8))
                mdb_txn_abort(rtxn)
            }
        }
    }
}
