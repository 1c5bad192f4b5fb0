import CLMDB

/// A failed liblmdb call. The return code is kept as a number (as swift-system's `Errno`
/// does) so callers can match on it; `description` adds LMDB's own message, the
/// operation and what it was applied to.
public struct LMDBError: Error, CustomStringConvertible, Equatable, Sendable {
    /// LMDB's (negative) or the system's (positive errno) return code.
    public let code: Int32
    /// The liblmdb function that failed, e.g. `mdb_put`.
    public let operation: String
    /// What the operation was applied to: the environment path, the database name.
    public let context: String

    public init(code: Int32, operation: String, context: String) {
        self.code = code
        self.operation = operation
        self.context = context
    }

    public static let keyExists = MDB_KEYEXIST
    public static let notFound = MDB_NOTFOUND
    public static let mapFull = MDB_MAP_FULL
    public static let mapResized = MDB_MAP_RESIZED

    public var isMapFull: Bool { code == MDB_MAP_FULL }

    public var description: String {
        let message = String(cString: mdb_strerror(code))
        var text = "\(operation) failed for \(context): \(message) (code \(code))"
        switch code {
        case MDB_MAP_FULL: text += "; the map size limit was reached (maxMapSize)"
        case MDB_READERS_FULL: text += "; too many open readers: close idle read transactions"
        case MDB_INVALID, MDB_VERSION_MISMATCH: text += "; this is not an LMDB environment of a supported version"
        case MDB_CORRUPTED, MDB_PAGE_NOTFOUND: text += "; the file is damaged: restore it from a copy (mdb_copy)"
        default: break
        }
        return text
    }
}

/// Misuse of the wrapper itself, caught before liblmdb is called.
public enum LMDBUsageError: Error, CustomStringConvertible, Equatable, Sendable {
    case unknownDatabase(String)
    case databaseNotCreated(String)
    case emptyKey(database: String)
    case keyTooLong(database: String, length: Int, limit: Int)

    public var description: String {
        switch self {
        case .unknownDatabase(let name):
            return "database '\(name)' was not opened at start-up: open it with Environment.openDatabase first"
        case .databaseNotCreated(let name):
            return "database '\(name)' does not exist in this environment and was opened without create: true"
        case .emptyKey(let database):
            return "empty key given for database '\(database)': LMDB keys must be 1 or more bytes"
        case let .keyTooLong(database, length, limit):
            return "key of \(length) bytes for database '\(database)' exceeds LMDB's limit of \(limit) bytes"
        }
    }
}

@inline(__always)
func check(_ code: Int32, _ operation: @autoclosure () -> String, _ context: @autoclosure () -> String) throws(LMDBError) {
    if code != MDB_SUCCESS {
        throw LMDBError(code: code, operation: operation(), context: context())
    }
}
