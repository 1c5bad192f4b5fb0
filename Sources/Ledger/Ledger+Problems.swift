import Foundation
import LMDB
import Schema

extension Ledger {
    public enum StoreResult: Sendable, Equatable {
        case added, unchanged, updated
    }

    /// Content hash under which a test suite is stored.
    public static func hash(of suite: TestSuite) throws -> [UInt8] {
        try encode(suite).hash
    }

    /// A suite's stored bytes and the hash that is its key.
    static func encode(_ suite: TestSuite) throws -> (hash: [UInt8], bytes: [UInt8]) {
        let bytes = try RecordCodec.encodeVersioned(suite)
        return (SHA256.hash(bytes), bytes)
    }

    /// Stores a problem with its test suites (each once, by content hash). The problem's
    /// `exampleTests`/`hiddenTests` fields are set to the suites' hashes. Storing the same
    /// problem again changes nothing and says so.
    @discardableResult
    public func store(problem: Problem, exampleTests: TestSuite?, hiddenTests: TestSuite?) throws -> StoreResult {
        try store([(problem, exampleTests, hiddenTests)]).first!
    }

    /// Stores many problems in one transaction.
    public func store(_ items: [(problem: Problem, exampleTests: TestSuite?, hiddenTests: TestSuite?)]) throws -> [StoreResult] {
        var prepared: [(key: [UInt8], value: [UInt8], suites: [([UInt8], [UInt8])])] = []
        for (problem, example, hidden) in items {
            guard !problem.id.isEmpty else {
                throw LedgerError.invalidRecord(table: "problems", key: "(empty)", reason: "a problem needs an id")
            }
            var record = problem
            var suites: [([UInt8], [UInt8])] = []
            for (suite, isExample) in [(example, true), (hidden, false)] {
                guard let suite else { continue }
                let (hash, bytes) = try Ledger.encode(suite)
                suites.append((hash, bytes))
                if isExample { record.exampleTests = Data(hash) } else { record.hiddenTests = Data(hash) }
            }
            prepared.append((Array(record.id.utf8), try RecordCodec.encodeVersioned(record), suites))
        }
        return try environment.write { txn in
            var results: [StoreResult] = []
            for item in prepared {
                for (hash, bytes) in item.suites { try txn.put(tests, hash, bytes, flags: .noOverwrite) }
                let old = try txn.get(problems, item.key)
                if old == item.value { results.append(.unchanged); continue }
                try txn.put(problems, item.key, item.value)
                results.append(old == nil ? .added : .updated)
            }
            return results
        }
    }

    public func problem(id: String) throws -> Problem? {
        try environment.read { txn in
            try txn.withValue(problems, Array(id.utf8)) {
                try RecordCodec.decodeVersioned(Problem.self, $0, table: "problems", key: id)
            }
        }
    }

    /// Problems in id order, optionally only one source and split.
    public func problems(source: String? = nil, split: String? = nil) throws -> [Problem] {
        var out: [Problem] = []
        try environment.read { txn in
            try txn.forEach(problems) { key, value in
                let problem = try RecordCodec.decodeVersioned(Problem.self, value, table: "problems",
                                                              key: String(decoding: key, as: UTF8.self))
                if (source == nil || problem.source == source) && (split == nil || problem.split == split) {
                    out.append(problem)
                }
                return true
            }
        }
        return out
    }

    public func testSuite(hash: [UInt8]) throws -> TestSuite? {
        guard !hash.isEmpty else { return nil }
        return try environment.read { txn in
            try txn.withValue(tests, hash) {
                try RecordCodec.decodeVersioned(TestSuite.self, $0, table: "tests", key: hash.hex)
            }
        }
    }

    // MARK: Verdict cache

    static func verdictKey(program: String, suite: [UInt8]) -> [UInt8] {
        SHA256.hash(program) + suite
    }

    /// The verdict of an identical program on the same test suite, if one was recorded.
    public func cachedVerdict(program: String, suite: [UInt8]) throws -> Verdict? {
        let key = Ledger.verdictKey(program: program, suite: suite)
        return try environment.read { txn in
            try txn.withValue(verdicts, key) {
                try RecordCodec.decode(Verdict.self, $0, table: "verdicts", key: key.hex)
            }
        }
    }

    public func cacheVerdict(_ verdict: Verdict, program: String, suite: [UInt8]) throws {
        let key = Ledger.verdictKey(program: program, suite: suite)
        let bytes = try RecordCodec.encode(verdict)
        try environment.write { try $0.put(verdicts, key, bytes) }
    }
}
