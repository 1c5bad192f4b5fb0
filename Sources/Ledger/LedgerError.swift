import LMDB

public enum LedgerError: Error, CustomStringConvertible {
    /// A stored value that does not decode as its table's record type.
    case corruptRecord(table: String, key: String, reason: String)
    /// A record written by a newer schema than this build understands.
    case newerSchema(table: String, key: String, found: UInt32, supported: UInt32)
    /// The ledger directory was written by a newer, incompatible format.
    case newerFormat(path: String, found: UInt32, supported: UInt32)
    case invalidRecord(table: String, key: String, reason: String)
    case unknownRollout(UInt64)

    public var description: String {
        switch self {
        case let .corruptRecord(table, key, reason):
            return "ledger table '\(table)', key \(key): the stored record does not decode (\(reason))"
        case let .newerSchema(table, key, found, supported):
            return "ledger table '\(table)', key \(key): record has schema version \(found) but this coderl reads up to \(supported); upgrade coderl"
        case let .newerFormat(path, found, supported):
            return "ledger \(path) has format \(found) but this coderl reads up to \(supported); upgrade coderl"
        case let .invalidRecord(table, key, reason):
            return "ledger table '\(table)', key \(key): refusing to store an invalid record: \(reason)"
        case let .unknownRollout(sequence):
            return "no rollout with sequence \(sequence) in the ledger"
        }
    }
}
