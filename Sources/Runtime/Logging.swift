import Foundation
import Logging
import Synchronization

/// Log output of every process: swift-log, one line per event on standard error with the
/// time, level, role and instance. `text` (default): `12:23:06 info [sampler 0] message`;
/// `json`: one JSON object per line (`ts`, `level`, `role`, `instance`, `msg`, metadata).
public enum LogFormat: String, CaseIterable, Sendable {
    case text, json
}

/// A role's logger: `log("...")` logs at info level; `log.warning`, `log.error`, `log.debug`
/// for the others. The level and format come from `Log.configure` (the role's config:
/// `logging.level`, `logging.<role>`, `logging.format`), info and text until then.
public struct Log: Sendable {
    public let role: String
    public let instance: String
    public let logger: Logger

    private static let settings = Mutex<(level: Logger.Level, format: LogFormat)>((.info, .text))

    /// Sets the level and format of loggers made from now on in this process.
    public static func configure(level: Logger.Level, format: LogFormat = .text) {
        settings.withLock { $0 = (level, format) }
    }

    public init(role: String, instance: String) {
        self.role = role
        self.instance = instance
        let (level, format) = Self.settings.withLock { $0 }
        var logger = Logger(label: "coderl.\(role)") { _ in RoleLogHandler(role: role, instance: instance, format: format) }
        logger.logLevel = level
        self.logger = logger
    }

    /// A logger that hands each message to `sink` instead of standard error (for embedding
    /// the services in another program, and for tests that read what a service said).
    public init(role: String, instance: String, sink: @escaping @Sendable (String) -> Void) {
        self.role = role
        self.instance = instance
        var logger = Logger(label: "coderl.\(role)") { _ in SinkLogHandler(sink: sink) }
        logger.logLevel = Self.settings.withLock { $0.level }
        self.logger = logger
    }

    public func callAsFunction(_ line: String) { logger.info("\(line)") }
    public func debug(_ line: String) { logger.debug("\(line)") }
    public func warning(_ line: String) { logger.warning("\(line)") }
    public func error(_ line: String) { logger.error("\(line)") }
}

/// Writes swift-log records of one role to standard error, one line each.
public struct RoleLogHandler: LogHandler {
    public let role: String
    public let instance: String
    public let format: LogFormat
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info

    public init(role: String, instance: String, format: LogFormat) {
        self.role = role
        self.instance = instance
        self.format = format
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let all = metadata.merging(event.metadata ?? [:]) { $1 }
        FileHandle.standardError.write(Data((render(level: event.level, message: "\(event.message)", metadata: all, date: Date()) + "\n").utf8))
    }

    /// One line for `message` (no trailing newline).
    public func render(level: Logger.Level, message: String, metadata: Logger.Metadata, date: Date) -> String {
        switch format {
        case .text:
            let stamp = ISO8601DateFormatter.string(from: date, timeZone: .current, formatOptions: [.withTime, .withColonSeparatorInTime])
            let extra = metadata.sorted { $0.key < $1.key }.map { " \($0.key)=\($0.value)" }.joined()
            return "\(stamp) \(level) [\(role) \(instance)] \(message)\(extra)"
        case .json:
            var object: [String: String] = [
                "ts": ISO8601DateFormatter.string(from: date, timeZone: TimeZone(identifier: "UTC")!, formatOptions: [.withInternetDateTime, .withFractionalSeconds]),
                "level": "\(level)", "role": role, "instance": instance, "msg": message,
            ]
            for (key, value) in metadata where object[key] == nil { object[key] = "\(value)" }
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
            return String(decoding: data, as: UTF8.self)
        }
    }
}

/// Hands each record's message to a closure.
struct SinkLogHandler: LogHandler {
    let sink: @Sendable (String) -> Void
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) { sink("\(event.message)") }
}

extension Logger.Level {
    /// Parses a level name (trace, debug, info, notice, warning, error, critical).
    public init?(name: String) { self.init(rawValue: name.lowercased()) }
}
