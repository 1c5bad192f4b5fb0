import Foundation
import LMDB
import Schema

/// The durable state of a run, in one LMDB environment:
///
/// | table        | key                                  | value         |
/// |--------------|--------------------------------------|---------------|
/// | `problems`   | problem id (UTF-8)                   | `Problem`     |
/// | `tests`      | SHA-256 of the serialized suite      | `TestSuite`   |
/// | `rollouts`   | sequence number (8 bytes big-endian) | `Rollout`     |
/// | `verdicts`   | SHA-256(program) ++ SHA-256(suite)   | `Verdict`     |
/// | `prompts`    | SHA-256 of the prompt token ids      | `TokenList`   |
/// | `requests`   | sample request id (UTF-8)            | first sequence, count (2 x 8 bytes big-endian) |
/// | `issued`     | sample request id (UTF-8)            | who was given it and what it asks (JSON, `IssuedRequest`) |
/// | `evals`      | evaluation id (UTF-8)                | `EvalRun`     |
/// | `eval_results` | evaluation id, 0, problem id (UTF-8) | `EvalProblemResult` |
/// | `meta`       | name (UTF-8)                         | see `MetaKey` |
///
/// Values are protobuf messages from `Sources/Schema/proto/records.proto`, so any language
/// with protobuf and LMDB bindings can read a ledger.
public final class Ledger: Sendable {
    /// Version of the table layout above; bumped when keys or tables change meaning.
    public static let formatVersion: UInt32 = 1

    public let environment: Environment
    let problems: Database
    let tests: Database
    let rollouts: Database
    let verdicts: Database
    let prompts: Database
    /// Absent only in a read-only ledger written before the table existed.
    let requests: Database?
    /// Absent only in a read-only ledger written before requests were recorded as issued.
    let issuedTable: Database?
    /// Absent only in a read-only ledger written before evaluations were stored.
    let evalsTable: Database?
    let evalResultsTable: Database?
    let meta: Database

    enum MetaKey {
        static let format = Array("format".utf8)            // UInt32 big-endian
        static let nextSequence = Array("next-sequence".utf8)  // UInt64 big-endian
        static let run = Array("run".utf8)                   // RunMetadata
    }

    public var path: String { environment.path }

    public init(path: String, options: Environment.Options = Environment.Options()) throws {
        environment = try Environment(path: path, options: options)
        let create = !options.readOnly
        problems = try environment.openDatabase("problems", create: create)
        tests = try environment.openDatabase("tests", create: create)
        rollouts = try environment.openDatabase("rollouts", create: create)
        verdicts = try environment.openDatabase("verdicts", create: create)
        prompts = try environment.openDatabase("prompts", create: create)
        requests = create ? try environment.openDatabase("requests", create: true) : try? environment.openDatabase("requests", create: false)
        issuedTable = create ? try environment.openDatabase("issued", create: true) : try? environment.openDatabase("issued", create: false)
        evalsTable = create ? try environment.openDatabase("evals", create: true) : try? environment.openDatabase("evals", create: false)
        evalResultsTable = create ? try environment.openDatabase("eval_results", create: true) : try? environment.openDatabase("eval_results", create: false)
        meta = try environment.openDatabase("meta", create: create)
        try checkFormat(writable: create)
    }

    /// Opens an existing ledger for reading only (inspection commands).
    public static func openForReading(path: String) throws -> Ledger {
        guard FileManager.default.fileExists(atPath: path + "/data.mdb") else {
            throw LMDBError(code: ENOENT, operation: "open ledger", context: "\(path) (no data.mdb: not a ledger, or not created yet)")
        }
        var options = Environment.Options()
        options.readOnly = true
        return try Ledger(path: path, options: options)
    }

    private func checkFormat(writable: Bool) throws {
        let stored = try environment.read { txn in
            try txn.withValue(meta, MetaKey.format) { raw in raw.count == 4 ? raw.loadUnaligned(as: UInt32.self).bigEndian : UInt32.max }
        }
        switch stored {
        case nil where writable:
            try environment.write { txn in
                try txn.put(meta, MetaKey.format, withUnsafeBytes(of: Ledger.formatVersion.bigEndian) { Array($0) })
            }
        case nil:
            break
        case UInt32.max?:
            throw LedgerError.corruptRecord(table: "meta", key: "format", reason: "expected 4 bytes")
        case let version? where version > Ledger.formatVersion:
            throw LedgerError.newerFormat(path: path, found: version, supported: Ledger.formatVersion)
        default:
            break
        }
    }

    // MARK: Run metadata

    public func runMetadata() throws -> RunMetadata? {
        try environment.read { txn in
            try txn.withValue(meta, MetaKey.run) { try RecordCodec.decodeVersioned(RunMetadata.self, $0, table: "meta", key: "run") }
        }
    }

    public func saveRunMetadata(_ metadata: RunMetadata) throws {
        let bytes = try RecordCodec.encodeVersioned(metadata)
        try environment.write { try $0.put(meta, MetaKey.run, bytes) }
    }

    /// Entry counts of every table.
    public func counts() throws -> (problems: Int, testSuites: Int, rollouts: Int, cachedVerdicts: Int) {
        try environment.read { txn in
            (try txn.count(problems), try txn.count(tests), try txn.count(rollouts), try txn.count(verdicts))
        }
    }
}
