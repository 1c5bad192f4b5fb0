import CLMDB
import Foundation

/// One LMDB environment (a directory holding `data.mdb` and `lock.mdb`).
///
/// Transactions are scoped to a synchronous closure: `read { txn in ... }` and
/// `write { txn in ... }`. The transaction is a borrowed non-copyable value, so it cannot be
/// stored, returned, sent to another thread or used after its commit, and because the
/// closure is not `async` it never spans an `await` (LMDB ties a write transaction to its thread). `write` commits when
/// the closure returns and aborts when it throws.
///
/// When the map is full, `write` aborts, grows the map (doubling, up to
/// `Options.maxMapSize`) while no transaction of this process is open, and runs the closure
/// again: write closures must therefore only change the database, not outside state.
///
/// Safe to share between threads (`@unchecked Sendable`): the handle is used only through
/// liblmdb calls that are thread-safe for an environment opened with `MDB_NOTLS`, the database
/// table is guarded by `lock`, and map resizing excludes every open transaction through `gate`.
public final class Environment: @unchecked Sendable {
    public struct Options: Sendable {
        /// Initial map size in bytes; the file only grows as data is written.
        public var mapSize: Int = 256 << 20
        /// Upper limit for automatic growth on `MDB_MAP_FULL`.
        public var maxMapSize: Int = 1 << 40
        public var maxDatabases: Int = 32
        public var maxReaders: Int = 256
        /// `false` trades durability of the last commits for speed (`MDB_NOSYNC`): a crash of
        /// the machine (not of the process) can lose them. The data stays consistent.
        public var durable: Bool = true
        public var readOnly: Bool = false

        public init() {}
    }

    public let path: String
    public let options: Options
    /// Reader slots of dead processes released at start-up (`mdb_reader_check`).
    public let staleReadersCleared: Int

    let handle: OpaquePointer
    private let lock = NSLock()  // guards currentMapSize
    private let databaseLock = NSLock()  // guards databases; held while a handle is opened
    private var databases: [String: Database] = [:]
    private var currentMapSize: Int
    private let gate = UnsafeMutablePointer<pthread_rwlock_t>.allocate(capacity: 1)

    public init(path: String, options: Options = Options()) throws {
        self.path = path
        self.options = options
        if !options.readOnly {
            do {
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            } catch {
                throw LMDBError(code: EACCES, operation: "mkdir", context: "\(path) (\(error.localizedDescription))")
            }
        }
        try Environment.checkDataFile(path + "/data.mdb")
        var env: OpaquePointer?
        try check(mdb_env_create(&env), "mdb_env_create", path)
        guard let env else { throw LMDBError(code: ENOMEM, operation: "mdb_env_create", context: path) }
        var flags = UInt32(MDB_NOTLS)
        if !options.durable { flags |= UInt32(MDB_NOSYNC) }
        if options.readOnly { flags |= UInt32(MDB_RDONLY) }
        do {
            try check(mdb_env_set_maxdbs(env, MDB_dbi(options.maxDatabases)), "mdb_env_set_maxdbs", path)
            try check(mdb_env_set_maxreaders(env, UInt32(options.maxReaders)), "mdb_env_set_maxreaders", path)
            try check(mdb_env_set_mapsize(env, options.mapSize), "mdb_env_set_mapsize", path)
            try check(mdb_env_open(env, path, flags, 0o644), "mdb_env_open", path)
            var dead: Int32 = 0
            try check(mdb_reader_check(env, &dead), "mdb_reader_check", path)
            staleReadersCleared = Int(dead)
        } catch {
            mdb_env_close(env)
            throw error
        }
        handle = env
        Environment.closeOnExec(filesIn: path)
        // Another process may have grown the map beyond our request; the file decides.
        var info = MDB_envinfo()
        mdb_env_info(env, &info)
        currentMapSize = info.me_mapsize
        pthread_rwlock_init(gate, nil)
    }

    /// A data file shorter than its newest committed transaction needs (a truncated copy) is
    /// refused here: LMDB maps the file and would die of SIGBUS on the first read past its end.
    /// Reads the two meta pages (64-bit layout): the page size is in the free-list database's
    /// pad field, the last page number and the transaction id follow the two database records.
    /// Damage inside the pages cannot be seen this way; `coderl ledger verify` walks them.
    static func checkDataFile(_ file: String) throws {
        let fd = open(file, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return }           // a new ledger, or not readable: mdb_env_open says why
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return }
        let size = Int(info.st_size)
        func fail(_ why: String) -> LMDBError {
            LMDBError(code: EINVAL, operation: "open", context: "\(file) \(why); restore the ledger from a copy (mdb_copy makes consistent ones)")
        }
        if size == 0 { return }                 // created but never written: LMDB initialises it
        var page = [UInt8](repeating: 0, count: 160)
        func meta(at offset: Int) -> (magic: UInt32, pageSize: Int, lastPage: UInt64, txn: UInt64)? {
            guard offset + 160 <= size, pread(fd, &page, 160, off_t(offset)) == 160 else { return nil }
            func u32(_ at: Int) -> UInt32 { page[at..<at + 4].reversed().reduce(0) { $0 << 8 | UInt32($1) } }
            func u64(_ at: Int) -> UInt64 { page[at..<at + 8].reversed().reduce(0) { $0 << 8 | UInt64($1) } }
            return (u32(16), Int(u32(40)), u64(136), u64(144))
        }
        guard let first = meta(at: 0) else { throw fail("is truncated: \(size) bytes, not even its first page") }
        guard first.magic == 0xBEEF_C0DE else { return }      // not LMDB's: mdb_env_open says MDB_INVALID
        guard first.pageSize >= 512, first.pageSize <= 1 << 16, first.pageSize & (first.pageSize - 1) == 0 else {
            throw fail("has a damaged first page (page size \(first.pageSize))")
        }
        guard let second = meta(at: first.pageSize), second.magic == 0xBEEF_C0DE else {
            throw fail("is truncated or damaged: \(size) bytes, its second meta page is missing")
        }
        let newest = second.txn > first.txn ? second : first
        let needed = (Int(clamping: newest.lastPage) + 1) * first.pageSize
        guard needed <= size else {
            throw fail("is truncated: \(size) bytes, but its last committed transaction (\(newest.txn)) uses \(needed)")
        }
    }

    /// LMDB opens its data and lock files without close-on-exec, so every process this one
    /// starts would inherit them read-write. Marks every descriptor open on a file in
    /// `directory` close-on-exec.
    static func closeOnExec(filesIn directory: String) {
        let prefix = URL(fileURLWithPath: directory).resolvingSymlinksInPath().path + "/"
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") else { return }
        for entry in entries {
            guard let fd = Int32(entry), fd > 2,
                  let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(entry)"),
                  target.hasPrefix(prefix) else { continue }
            _ = fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC)
        }
    }

    deinit {
        // Database handles are never closed (closing one another thread uses is unsafe): mdb_env_close releases them.
        mdb_env_close(handle)
        pthread_rwlock_destroy(gate)
        gate.deallocate()
    }

    /// Current map size in bytes.
    public var mapSize: Int { lock.withLock { currentMapSize } }

    /// Opens (and with `create`, creates) a named database. Call this for every database at
    /// start-up; the handle is cached and lives as long as the environment.
    public func openDatabase(_ name: String, create: Bool = true) throws -> Database {
        if let known = databaseLock.withLock({ databases[name] }) { return known }
        let flags = UInt32(create && !options.readOnly ? MDB_CREATE : 0)
        let body: (borrowing Transaction) throws -> MDB_dbi = { txn in
            var dbi: MDB_dbi = 0
            let rc = mdb_dbi_open(txn.handle, name, flags, &dbi)
            if rc == MDB_NOTFOUND { throw LMDBUsageError.databaseNotCreated(name) }
            try check(rc, "mdb_dbi_open", "database '\(name)' in \(self.path)")
            return dbi
        }
        // mdb_dbi_open must not race with itself: hold the lock across the transaction.
        return try databaseLock.withLock {
            if let known = databases[name] { return known }
            // A handle opened in a transaction lives on only if that transaction commits, and
            // a read-only environment can only begin read transactions.
            let dbi = try options.readOnly ? readUnlocked(commit: true, body) : writeUnlocked(body)
            let database = Database(dbi: dbi, name: name, environment: ObjectIdentifier(self))
            databases[name] = database
            return database
        }
    }

    /// Runs `body` in a read-only snapshot. Keep it short: an open reader pins old pages and
    /// makes the file grow.
    public func read<T>(_ body: (borrowing Transaction) throws -> T) throws -> T {
        try readUnlocked(commit: false, body)
    }

    /// Runs `body` in a write transaction and commits it; aborts if `body` throws. Redoes
    /// `body` after growing the map when it fills up.
    @discardableResult
    public func write<T>(_ body: (borrowing Transaction) throws -> T) throws -> T {
        try writeUnlocked(body)
    }

    private func readUnlocked<T>(commit: Bool, _ body: (borrowing Transaction) throws -> T) throws -> T {
        while true {
            pthread_rwlock_rdlock(gate)
            var txn: OpaquePointer?
            let rc = mdb_txn_begin(handle, nil, UInt32(MDB_RDONLY), &txn)
            if rc == MDB_MAP_RESIZED {
                pthread_rwlock_unlock(gate)
                try adoptResizedMap()
                continue
            }
            defer { pthread_rwlock_unlock(gate) }
            try check(rc, "mdb_txn_begin (read)", path)
            let transaction = Transaction(handle: txn!, environment: self)
            let result: T
            do {
                result = try body(transaction)
            } catch {
                mdb_txn_abort(txn)
                throw error
            }
            if commit {
                try check(mdb_txn_commit(txn), "mdb_txn_commit (read)", path)
            } else {
                mdb_txn_abort(txn)
            }
            return result
        }
    }

    private func writeUnlocked<T>(_ body: (borrowing Transaction) throws -> T) throws -> T {
        precondition(!options.readOnly, "write transaction on the read-only environment \(path)")
        while true {
            pthread_rwlock_rdlock(gate)
            var txn: OpaquePointer?
            let begin = mdb_txn_begin(handle, nil, 0, &txn)
            if begin == MDB_MAP_RESIZED {
                pthread_rwlock_unlock(gate)
                try adoptResizedMap()
                continue
            }
            if begin != MDB_SUCCESS {
                pthread_rwlock_unlock(gate)
                throw LMDBError(code: begin, operation: "mdb_txn_begin (write)", context: path)
            }
            let transaction = Transaction(handle: txn!, environment: self)
            let result: T
            do {
                result = try body(transaction)
            } catch {
                mdb_txn_abort(txn)
                pthread_rwlock_unlock(gate)
                // The body may have caught MDB_MAP_FULL and thrown something else; the
                // transaction's own record of it decides.
                if transaction.state.mapFull { try grow(); continue }
                throw error
            }
            if transaction.state.mapFull {
                // The body swallowed MDB_MAP_FULL; LMDB would refuse the commit anyway.
                mdb_txn_abort(txn)
                pthread_rwlock_unlock(gate)
                try grow()
                continue
            }
            // After a failed commit the transaction is already freed: never abort it.
            let commit = mdb_txn_commit(txn)
            pthread_rwlock_unlock(gate)
            if commit == MDB_MAP_FULL { try grow(); continue }
            try check(commit, "mdb_txn_commit", path)
            return result
        }
    }

    /// Doubles the map with no transaction of this process open.
    private func grow() throws {
        pthread_rwlock_wrlock(gate)
        defer { pthread_rwlock_unlock(gate) }
        let size = lock.withLock { currentMapSize }
        guard size < options.maxMapSize else {
            throw LMDBError(code: MDB_MAP_FULL, operation: "map growth", context: "\(path) at its limit of \(options.maxMapSize) bytes")
        }
        let target = min(size * 2, options.maxMapSize)
        try check(mdb_env_set_mapsize(handle, target), "mdb_env_set_mapsize", path)
        lock.withLock { currentMapSize = target }
    }

    /// Another process grew the map: take over its size.
    private func adoptResizedMap() throws {
        pthread_rwlock_wrlock(gate)
        defer { pthread_rwlock_unlock(gate) }
        try check(mdb_env_set_mapsize(handle, 0), "mdb_env_set_mapsize", path)
        var info = MDB_envinfo()
        mdb_env_info(handle, &info)
        lock.withLock { currentMapSize = info.me_mapsize }
    }

    /// Writes a consistent copy of the environment to `directory` (like `mdb_copy`); with
    /// `compact`, free pages are left out.
    public func copy(to directory: String, compact: Bool = false) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try check(mdb_env_copy2(handle, directory, compact ? UInt32(MDB_CP_COMPACT) : 0), "mdb_env_copy2", "\(path) -> \(directory)")
    }

    /// Releases reader slots held by processes that died (`mdb_reader_check`) and returns how
    /// many. Done at start-up; long-running processes sharing the environment with others
    /// that may crash call it now and then. (When the last process closes the environment,
    /// the next opener resets the reader table anyway.)
    @discardableResult
    public func clearStaleReaders() throws -> Int {
        var dead: Int32 = 0
        try check(mdb_reader_check(handle, &dead), "mdb_reader_check", path)
        return Int(dead)
    }

    /// Flushes buffers to disk; needed only with `durable: false`.
    public func sync() throws {
        try check(mdb_env_sync(handle, 1), "mdb_env_sync", path)
    }

    func checkOwned(_ database: Database) {
        precondition(database.environment == ObjectIdentifier(self),
                     "database '\(database.name)' belongs to another environment than \(path)")
    }
}

/// A named database handle, opened once by `Environment.openDatabase` and valid for the life
/// of its environment.
public struct Database: Sendable, Hashable {
    let dbi: MDB_dbi
    public let name: String
    let environment: ObjectIdentifier
}
