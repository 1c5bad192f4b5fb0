import Foundation
import Yams

/// A configuration error, naming the file, line and key it is about.
public struct ConfigError: Error, CustomStringConvertible, Equatable {
    public var file: String
    public var line: Int
    public var key: String
    public var reason: String

    public init(file: String, line: Int, key: String, reason: String) {
        self.file = file
        self.line = line
        self.key = key
        self.reason = reason
    }

    public var description: String {
        let at = line > 0 ? "\(file):\(line)" : file
        return key.isEmpty ? "\(at): \(reason)" : "\(at): \(key): \(reason)"
    }
}

/// Where a configuration value came from.
public struct ConfigSource: Sendable, Equatable {
    public var file: String
    public var line: Int
}

/// Flat configuration: dotted keys (`training.learning_rate`) to scalar text or lists of
/// scalars, each remembering the file and line that set it. Later layers override earlier ones.
public struct ConfigValues: Sendable {
    public enum Value: Sendable, Equatable {
        case scalar(String)
        case list([String])
    }

    public struct Entry: Sendable, Equatable {
        public var value: Value
        public var source: ConfigSource
    }

    public private(set) var entries: [String: Entry] = [:]
    /// Files read, in order (for messages and the run record).
    public private(set) var files: [String] = []

    public init() {}

    /// Reads a YAML file: a mapping whose leaves are scalars or lists of scalars.
    public mutating func load(file: String) throws {
        let text: String
        do {
            text = try String(contentsOfFile: file, encoding: .utf8)
        } catch {
            throw ConfigError(file: file, line: 0, key: "", reason: "cannot read the file (\(error.localizedDescription))")
        }
        try load(yaml: text, file: file)
    }

    public mutating func load(yaml text: String, file: String) throws {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw ConfigError(file: file, line: Self.line(of: error), key: "", reason: "not valid YAML: \(Self.reason(of: error))")
        }
        files.append(file)
        guard let root else { return }   // an empty file sets nothing
        guard case .mapping(let mapping) = root else {
            throw ConfigError(file: file, line: root.mark?.line ?? 0, key: "", reason: "expected a mapping of keys at the top level")
        }
        try flatten(mapping, prefix: "", file: file)
    }

    private mutating func flatten(_ mapping: Node.Mapping, prefix: String, file: String) throws {
        for (keyNode, value) in mapping {
            let line = keyNode.mark?.line ?? 0
            guard let name = keyNode.scalar?.string, !name.isEmpty, !name.contains(".") else {
                throw ConfigError(file: file, line: line, key: prefix, reason: "keys must be plain names without dots")
            }
            let key = prefix.isEmpty ? name : prefix + "." + name
            let source = ConfigSource(file: file, line: line)
            switch value {
            case .mapping(let inner):
                try flatten(inner, prefix: key, file: file)
            case .scalar(let scalar):
                entries[key] = Entry(value: .scalar(scalar.string), source: source)
            case .sequence(let items):
                var list: [String] = []
                for item in items {
                    guard let s = item.scalar?.string else {
                        throw ConfigError(file: file, line: item.mark?.line ?? line, key: key, reason: "list items must be plain values")
                    }
                    list.append(s)
                }
                entries[key] = Entry(value: .list(list), source: source)
            case .alias:
                throw ConfigError(file: file, line: line, key: key, reason: "YAML aliases are not supported")
            }
        }
    }

    /// `key=value` from the command line; the value is read as a YAML scalar or flow list.
    public mutating func set(_ assignment: String) throws {
        guard let eq = assignment.firstIndex(of: "="), eq != assignment.startIndex else {
            throw ConfigError(file: "--set", line: 0, key: assignment, reason: "expected key=value")
        }
        let key = String(assignment[..<eq]), raw = String(assignment[assignment.index(after: eq)...])
        let source = ConfigSource(file: "--set \(assignment)", line: 0)
        let node: Node?
        do { node = try Yams.compose(yaml: raw) } catch {
            throw ConfigError(file: source.file, line: 0, key: key, reason: "the value is not valid YAML")
        }
        switch node {
        case .sequence(let items)?:
            entries[key] = Entry(value: .list(items.compactMap { $0.scalar?.string }), source: source)
        case .mapping?:
            throw ConfigError(file: source.file, line: 0, key: key, reason: "set one key at a time (a.b=value), not a mapping")
        default:
            entries[key] = Entry(value: .scalar(node?.scalar?.string ?? raw), source: source)
        }
    }

    public subscript(key: String) -> Entry? { entries[key] }

    static func line(of error: YamlError) -> Int {
        switch error {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _): mark.line
        default: 0
        }
    }

    static func reason(of error: YamlError) -> String {
        switch error {
        case .scanner(_, let problem, _, _), .parser(_, let problem, _, _), .composer(_, let problem, _, _): problem
        default: "\(error)"
        }
    }
}

/// Typed reads of `ConfigValues` that record every key asked for, so that keys nobody asked
/// for are reported as unknown, and so the same code that reads the configuration also lists
/// every key with its default and meaning (`coderl run --print-keys`, the README's reference).
public final class ConfigReader {
    public struct KeyInfo: Sendable {
        public var key: String
        public var defaultValue: String
        public var help: String
    }

    public let values: ConfigValues
    public private(set) var known: [KeyInfo] = []
    private var errors: [ConfigError] = []

    public init(_ values: ConfigValues) { self.values = values }

    private func entry(_ key: String, _ defaultValue: String, _ help: String) -> ConfigValues.Entry? {
        known.append(KeyInfo(key: key, defaultValue: defaultValue, help: help))
        return values[key]
    }

    private func fail(_ entry: ConfigValues.Entry, _ key: String, _ reason: String) {
        errors.append(ConfigError(file: entry.source.file, line: entry.source.line, key: key, reason: reason))
    }

    private func scalar(_ key: String, _ entry: ConfigValues.Entry) -> String? {
        guard case .scalar(let s) = entry.value else { fail(entry, key, "expected a single value, found a list"); return nil }
        return s
    }

    public func string(_ key: String, _ defaultValue: String, _ help: String) -> String {
        guard let e = entry(key, defaultValue.isEmpty ? "\"\"" : defaultValue, help) else { return defaultValue }
        return scalar(key, e) ?? defaultValue
    }

    public func int(_ key: String, _ defaultValue: Int, _ help: String, min: Int? = nil, max: Int? = nil) -> Int {
        guard let e = entry(key, "\(defaultValue)", help), let s = scalar(key, e) else { return defaultValue }
        guard let v = Int(s) else { fail(e, key, "expected a whole number, found '\(s)'"); return defaultValue }
        if let min, v < min { fail(e, key, "must be at least \(min), found \(v)"); return defaultValue }
        if let max, v > max { fail(e, key, "must be at most \(max), found \(v)"); return defaultValue }
        return v
    }

    public func double(_ key: String, _ defaultValue: Double, _ help: String, min: Double? = nil, max: Double? = nil) -> Double {
        guard let e = entry(key, "\(defaultValue)", help), let s = scalar(key, e) else { return defaultValue }
        guard let v = Double(s), v.isFinite else { fail(e, key, "expected a number, found '\(s)'"); return defaultValue }
        if let min, v < min { fail(e, key, "must be at least \(min), found \(v)"); return defaultValue }
        if let max, v > max { fail(e, key, "must be at most \(max), found \(v)"); return defaultValue }
        return v
    }

    public func bool(_ key: String, _ defaultValue: Bool, _ help: String) -> Bool {
        guard let e = entry(key, "\(defaultValue)", help), let s = scalar(key, e) else { return defaultValue }
        switch s.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: fail(e, key, "expected true or false, found '\(s)'"); return defaultValue
        }
    }

    public func choice<T: RawRepresentable & CaseIterable>(_ key: String, _ defaultValue: T, _ help: String) -> T where T.RawValue == String {
        let names = T.allCases.map(\.rawValue)
        guard let e = entry(key, defaultValue.rawValue, help + " (" + names.joined(separator: " | ") + ")"),
              let s = scalar(key, e) else { return defaultValue }
        guard let v = T(rawValue: s) else {
            fail(e, key, "'\(s)' is not one of \(names.joined(separator: ", "))")
            return defaultValue
        }
        return v
    }

    /// A list whose items are each one of `T`'s cases (in the order given, repeats dropped).
    public func choices<T: RawRepresentable & CaseIterable>(_ key: String, _ defaultValue: [T], _ help: String) -> [T] where T.RawValue == String {
        let names = T.allCases.map(\.rawValue)
        guard let e = entry(key, "[" + defaultValue.map(\.rawValue).joined(separator: ", ") + "]", help + " (" + names.joined(separator: " | ") + ")") else {
            return defaultValue
        }
        let items: [String]
        switch e.value {
        case .list(let l): items = l
        case .scalar(let s): items = s.isEmpty ? [] : [s]
        }
        var out: [T] = []
        for item in items {
            guard let v = T(rawValue: item) else {
                fail(e, key, "'\(item)' is not one of \(names.joined(separator: ", "))")
                return defaultValue
            }
            if !out.contains(where: { $0.rawValue == v.rawValue }) { out.append(v) }
        }
        return out
    }

    public func list(_ key: String, _ defaultValue: [String], _ help: String) -> [String] {
        guard let e = entry(key, "[" + defaultValue.joined(separator: ", ") + "]", help) else { return defaultValue }
        switch e.value {
        case .list(let items): return items
        case .scalar(let s): return s.isEmpty ? [] : [s]
        }
    }

    /// Where a key was set (for messages about values that are fine alone but not together).
    public func source(_ key: String) -> ConfigSource? { values[key]?.source }

    /// Records a problem with a combination of values, attributed to `key`'s file and line.
    public func problem(_ key: String, _ reason: String) {
        let s = values[key]?.source ?? ConfigSource(file: values.files.last ?? "(defaults)", line: 0)
        errors.append(ConfigError(file: s.file, line: s.line, key: key, reason: reason))
    }

    /// Edit distance, for "did you mean" hints.
    public static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var row = Array(0...b.count)
        for i in 1...max(1, a.count) where !a.isEmpty {
            var previous = row[0]
            row[0] = i
            for j in 1...max(1, b.count) where !b.isEmpty {
                let old = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
                previous = old
            }
        }
        return row[b.count]
    }

    /// Throws every problem found (bad values, then unknown keys), one per line.
    public func finish() throws {
        let knownKeys = Set(known.map(\.key))
        for (key, e) in values.entries.sorted(by: { $0.key < $1.key }) where !knownKeys.contains(key) {
            let near = knownKeys.filter { Self.distance($0, key) <= 2 || $0.hasSuffix("." + (key.split(separator: ".").last.map(String.init) ?? key)) }.sorted()
            errors.append(ConfigError(file: e.source.file, line: e.source.line, key: key,
                                      reason: "unknown key" + (near.isEmpty ? "" : " (did you mean \(near.joined(separator: " or "))?)")))
        }
        guard errors.isEmpty else { throw ConfigErrors(errors: errors) }
    }
}

/// All problems of one configuration.
public struct ConfigErrors: Error, CustomStringConvertible {
    public var errors: [ConfigError]
    public var description: String { errors.map(\.description).joined(separator: "\n") }
}

extension ConfigValues {
    /// The values as one YAML document (sections as mappings), for the run directory: every
    /// role reads the same resolved configuration.
    public func yaml(header: String) -> String {
        func quote(_ s: String) -> String {
            var out = "\""
            for c in s.unicodeScalars {
                switch c {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\t": out += "\\t"
                default: out.unicodeScalars.append(c)
                }
            }
            return out + "\""
        }
        var lines = header.split(separator: "\n", omittingEmptySubsequences: false).map { "# " + $0 }
        var open: [String] = []   // the mapping headers written last, outermost first
        for key in entries.keys.sorted() where key != "config" {
            let parts = key.split(separator: ".").map(String.init)
            let value: String
            switch entries[key]!.value {
            case .scalar(let s): value = quote(s)
            case .list(let items): value = "[" + items.map(quote).joined(separator: ", ") + "]"
            }
            let parents = Array(parts.dropLast())
            var shared = 0
            while shared < min(open.count, parents.count) && open[shared] == parents[shared] { shared += 1 }
            open = Array(open.prefix(shared))
            for part in parents.dropFirst(shared) {
                lines.append(String(repeating: "  ", count: open.count) + part + ":")
                open.append(part)
            }
            lines.append(String(repeating: "  ", count: parents.count) + parts.last! + ": " + value)
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
