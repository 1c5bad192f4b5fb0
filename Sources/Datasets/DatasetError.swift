/// A malformed record: which file, which record in it, which field, and what is wrong.
public struct DatasetError: Error, CustomStringConvertible, Equatable, Sendable {
    public let file: String
    public let record: String
    public let field: String
    public let reason: String

    public init(file: String, record: String, field: String, reason: String) {
        self.file = file
        self.record = record
        self.field = field
        self.reason = reason
    }

    public var description: String {
        let place = record.isEmpty ? file : "\(file), \(record)"
        return field.isEmpty ? "\(place): \(reason)" : "\(place), field '\(field)': \(reason)"
    }
}

/// A whole input that cannot be read at all (missing file, not the expected format).
public struct DatasetFileError: Error, CustomStringConvertible, Equatable, Sendable {
    public let path: String
    public let reason: String
    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
    public var description: String { "\(path): \(reason)" }
}
