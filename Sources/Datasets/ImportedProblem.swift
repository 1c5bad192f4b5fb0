import Schema

/// A problem read from a dataset, with its example (public) and hidden test suites.
public struct ImportedProblem: Sendable {
    public var problem: Problem
    public var exampleTests: TestSuite?
    public var hiddenTests: TestSuite?

    public init(problem: Problem, exampleTests: TestSuite?, hiddenTests: TestSuite?) {
        self.problem = problem
        self.exampleTests = exampleTests
        self.hiddenTests = hiddenTests
    }
}

/// What a reader produced: good problems and, per bad record, why it was refused.
public struct DatasetContents: Sendable {
    public var problems: [ImportedProblem] = []
    public var errors: [DatasetError] = []
    /// Things worth telling the user that do not make a record bad (e.g. example tests that
    /// cannot be run and were left out).
    public var notes: [String] = []

    public init() {}

    mutating func add(_ read: () throws -> ImportedProblem?) {
        do {
            if let problem = try read() { problems.append(problem) }
        } catch let error as DatasetError {
            errors.append(error)
        } catch {
            errors.append(DatasetError(file: "?", record: "", field: "", reason: "\(error)"))
        }
    }
}

/// Field access that names the file, record and field on every failure.
struct RecordReader {
    let file: String
    let record: String
    let json: JSON

    func fail(_ field: String, _ reason: String) -> DatasetError {
        DatasetError(file: file, record: record, field: field, reason: reason)
    }

    func string(_ key: String, required: Bool = true) throws -> String {
        switch json[key] {
        case .string(let s)?:
            if required && s.isEmpty { throw fail(key, "is empty") }
            return s
        case nil, .null?:
            if required { throw fail(key, "is missing") }
            return ""
        case let other?:
            throw fail(key, "expected a string, found \(other.typeName)")
        }
    }

    func int(_ key: String) throws -> Int {
        guard let value = json[key] else { throw fail(key, "is missing") }
        guard let int = value.intValue else { throw fail(key, "expected an integer, found \(value.typeName)") }
        return int
    }

    func strings(_ key: String, required: Bool = true) throws -> [String] {
        guard let value = json[key], !value.isNull else {
            if required { throw fail(key, "is missing") }
            return []
        }
        guard let items = value.arrayValue else { throw fail(key, "expected a list of strings, found \(value.typeName)") }
        return try items.enumerated().map { index, item in
            guard let s = item.stringValue else { throw fail("\(key)[\(index)]", "expected a string, found \(item.typeName)") }
            return s
        }
    }
}

/// Reads a JSON Lines file; each non-empty line is a record named "line N".
func readJSONLines(_ path: String, _ text: String, into contents: inout DatasetContents,
                   _ body: (RecordReader) throws -> ImportedProblem?) {
    for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
        let trimmed = line.trimmingSpaces
        if trimmed.isEmpty { continue }
        contents.add {
            let record = "line \(index + 1)"
            do {
                return try body(RecordReader(file: path, record: record, json: try JSON.parse(String(trimmed))))
            } catch let error as JSONError {
                throw DatasetError(file: path, record: record, field: "", reason: "\(error)")
            }
        }
    }
}

extension StringProtocol {
    var trimmingSpaces: Substring {
        let s = Substring(self)
        guard let first = s.firstIndex(where: { !$0.isWhitespace }) else { return s[s.endIndex...] }
        let last = s.lastIndex(where: { !$0.isWhitespace })!
        return s[first...last]
    }
}
