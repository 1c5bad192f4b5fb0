import CLMDB

/// A position in one database, lent by `Transaction.withCursor` and closed when that call
/// returns. Movement methods return false at either end. `currentKey` and `currentValue`
/// point into the map and are valid until the cursor moves or the transaction ends.
public struct Cursor: ~Copyable {
    let handle: OpaquePointer
    let database: Database
    let path: String
    private let position = UnsafeMutablePointer<MDB_val>.allocate(capacity: 2)

    init(handle: OpaquePointer, database: Database, path: String) {
        self.handle = handle
        self.database = database
        self.path = path
        position.initialize(repeating: MDB_val(), count: 2)
    }

    deinit {
        mdb_cursor_close(handle)
        position.deallocate()
    }

    public var currentKey: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: position[0].mv_data, count: position[0].mv_size)
    }

    public var currentValue: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: position[1].mv_data, count: position[1].mv_size)
    }

    public func first() throws -> Bool { try move(MDB_FIRST) }
    public func last() throws -> Bool { try move(MDB_LAST) }
    public func next() throws -> Bool { try move(MDB_NEXT) }
    public func previous() throws -> Bool { try move(MDB_PREV) }

    /// Moves to the first key >= `key`.
    public func seek(atLeast key: [UInt8]) throws -> Bool {
        try key.withUnsafeBytes { raw in
            position[0] = MDB_val(mv_size: raw.count, mv_data: UnsafeMutableRawPointer(mutating: raw.baseAddress))
            return try move(MDB_SET_RANGE)
        }
    }

    private func move(_ op: MDB_cursor_op) throws -> Bool {
        let rc = mdb_cursor_get(handle, &position[0], &position[1], op)
        if rc == MDB_NOTFOUND { return false }
        try check(rc, "mdb_cursor_get", "database '\(database.name)' in \(path)")
        return true
    }
}
