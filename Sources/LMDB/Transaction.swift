import CLMDB
import Foundation

/// A read or write transaction, lent to the closure of `Environment.read` or
/// `Environment.write`. It is non-copyable and only ever borrowed, so it cannot escape the
/// closure; the environment commits or aborts it.
public struct Transaction: ~Copyable {
    final class State { var mapFull = false }

    let handle: OpaquePointer
    let environment: Environment
    let state = State()

    init(handle: OpaquePointer, environment: Environment) {
        self.handle = handle
        self.environment = environment
    }

    public struct PutFlags: OptionSet, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        /// Fail with `LMDBError.keyExists` instead of replacing a value.
        public static let noOverwrite = PutFlags(rawValue: UInt32(MDB_NOOVERWRITE))
        /// The key sorts after every key in the database (fast bulk load of sequence keys).
        public static let append = PutFlags(rawValue: UInt32(MDB_APPEND))
    }

    /// The value stored under `key`, copied out, or nil.
    public func get(_ database: Database, _ key: some ContiguousBytes) throws -> [UInt8]? {
        try withValue(database, key) { Array($0) }
    }

    /// Calls `body` with the stored bytes of `key` in place (valid only inside `body`), or
    /// returns nil when the key is absent.
    public func withValue<R>(_ database: Database, _ key: some ContiguousBytes,
                             _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R? {
        environment.checkOwned(database)
        var data = MDB_val()
        let rc: Int32 = try key.withUnsafeBytes { raw in
            var k = try keyValue(raw, database)
            return mdb_get(handle, database.dbi, &k, &data)
        }
        if rc == MDB_NOTFOUND { return nil }
        try check(rc, "mdb_get", "database '\(database.name)' in \(environment.path)")
        return try body(UnsafeRawBufferPointer(start: data.mv_data, count: data.mv_size))
    }

    public func contains(_ database: Database, _ key: some ContiguousBytes) throws -> Bool {
        try withValue(database, key) { _ in true } ?? false
    }

    /// Stores `value` under `key`. Returns false (and stores nothing) when `.noOverwrite` is
    /// given and the key exists.
    @discardableResult
    public func put(_ database: Database, _ key: some ContiguousBytes, _ value: some ContiguousBytes,
                    flags: PutFlags = []) throws -> Bool {
        environment.checkOwned(database)
        let rc: Int32 = try key.withUnsafeBytes { rawKey in
            var k = try keyValue(rawKey, database)
            return value.withUnsafeBytes { rawValue in
                var v = MDB_val(mv_size: rawValue.count, mv_data: UnsafeMutableRawPointer(mutating: rawValue.baseAddress))
                return mdb_put(handle, database.dbi, &k, &v, flags.rawValue)
            }
        }
        if rc == MDB_KEYEXIST && flags.contains(.noOverwrite) { return false }
        if rc == MDB_MAP_FULL { state.mapFull = true }
        try check(rc, "mdb_put", "database '\(database.name)' in \(environment.path)")
        return true
    }

    /// Removes `key`; returns whether it was there.
    @discardableResult
    public func delete(_ database: Database, _ key: some ContiguousBytes) throws -> Bool {
        environment.checkOwned(database)
        let rc: Int32 = try key.withUnsafeBytes { raw in
            var k = try keyValue(raw, database)
            return mdb_del(handle, database.dbi, &k, nil)
        }
        if rc == MDB_NOTFOUND { return false }
        if rc == MDB_MAP_FULL { state.mapFull = true }
        try check(rc, "mdb_del", "database '\(database.name)' in \(environment.path)")
        return true
    }

    /// Number of entries in `database`.
    public func count(_ database: Database) throws -> Int {
        environment.checkOwned(database)
        var stat = MDB_stat()
        try check(mdb_stat(handle, database.dbi, &stat), "mdb_stat", "database '\(database.name)' in \(environment.path)")
        return stat.ms_entries
    }

    /// Removes every entry of `database` (the handle stays open).
    public func clear(_ database: Database) throws {
        environment.checkOwned(database)
        try check(mdb_drop(handle, database.dbi, 0), "mdb_drop", "database '\(database.name)' in \(environment.path)")
    }

    /// A cursor over `database`, closed when `body` returns.
    public func withCursor<R>(_ database: Database, _ body: (borrowing Cursor) throws -> R) throws -> R {
        environment.checkOwned(database)
        var cursor: OpaquePointer?
        try check(mdb_cursor_open(handle, database.dbi, &cursor), "mdb_cursor_open", "database '\(database.name)' in \(environment.path)")
        let wrapped = Cursor(handle: cursor!, database: database, path: environment.path)
        return try body(wrapped)
    }

    /// Visits entries in key order starting at the first key >= `start` (or the first key),
    /// until `body` returns false. Key and value bytes are valid only during the call.
    public func forEach(_ database: Database, from start: [UInt8]? = nil,
                        _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Bool) throws {
        try withCursor(database) { cursor in
            var entry = try start.map { try cursor.seek(atLeast: $0) } ?? cursor.first()
            while entry {
                guard try body(cursor.currentKey, cursor.currentValue) else { return }
                entry = try cursor.next()
            }
        }
    }

    private func keyValue(_ raw: UnsafeRawBufferPointer, _ database: Database) throws -> MDB_val {
        if raw.isEmpty { throw LMDBUsageError.emptyKey(database: database.name) }
        let limit = Int(mdb_env_get_maxkeysize(environment.handle))
        if raw.count > limit { throw LMDBUsageError.keyTooLong(database: database.name, length: raw.count, limit: limit) }
        return MDB_val(mv_size: raw.count, mv_data: UnsafeMutableRawPointer(mutating: raw.baseAddress))
    }
}
