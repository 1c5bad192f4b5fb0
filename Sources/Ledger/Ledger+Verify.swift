import Foundation
import LMDB
import Schema
import SwiftProtobuf

extension Ledger {
    /// What a walk over one table found.
    public struct TableReport: Sendable {
        public var table: String
        public var entries = 0
        /// Entries whose key or value is not what the table holds (the first 20 are described).
        public var damaged = 0
        public var examples: [String] = []
    }

    /// Reads every entry of every table and decodes each value as its table's record. A
    /// damaged page (LMDB keeps no checksums) can crash the process that reads it, so
    /// `coderl ledger verify` runs this in a child process; `progress` gets the name of each
    /// table before it is read, so the caller knows where a crash happened.
    public func walk(progress: (String) -> Void = { _ in }) throws -> [TableReport] {
        typealias Check = (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> Void
        func record<M: SwiftProtobuf.Message>(_ type: M.Type) -> Check {
            { _, value in _ = try RecordCodec.decode(type, value, table: "", key: "") }
        }
        func sized(key: Int?, value: Int?) -> Check {
            { k, v in
                if let key, k.count != key { throw LedgerError.corruptRecord(table: "", key: "", reason: "a key of \(k.count) bytes, not \(key)") }
                if let value, v.count != value { throw LedgerError.corruptRecord(table: "", key: "", reason: "a value of \(v.count) bytes, not \(value)") }
            }
        }
        let tables: [(String, Database?, Check)] = [
            ("problems", problems, record(Problem.self)),
            ("tests", tests, { k, v in try sized(key: 32, value: nil)(k, v); try record(TestSuite.self)(k, v) }),
            ("rollouts", rollouts, { k, v in try sized(key: 8, value: nil)(k, v); try record(Rollout.self)(k, v) }),
            ("verdicts", verdicts, { k, v in try sized(key: 64, value: nil)(k, v); try record(Verdict.self)(k, v) }),
            ("prompts", prompts, { k, v in try sized(key: 32, value: nil)(k, v); try record(TokenList.self)(k, v) }),
            ("requests", requests, sized(key: nil, value: 16)),
            ("issued", issuedTable, { _, v in
                guard (try? JSONDecoder().decode(IssuedRequest.self, from: Data(v))) != nil else {
                    throw LedgerError.corruptRecord(table: "", key: "", reason: "not an issued request")
                }
            }),
            ("evals", evalsTable, record(EvalRun.self)),
            ("eval_results", evalResultsTable, record(EvalProblemResult.self)),
            ("meta", meta, { _, _ in }),
        ]
        var reports: [TableReport] = []
        for (name, database, check) in tables {
            guard let database else { continue }
            progress(name)
            var report = TableReport(table: name)
            try environment.read { txn in
                try txn.withCursor(database) { cursor in
                    var more = try cursor.first()
                    while more {
                        report.entries += 1
                        do {
                            try check(cursor.currentKey, cursor.currentValue)
                        } catch {
                            report.damaged += 1
                            if report.examples.count < 20 {
                                let key = cursor.currentKey.prefix(40).map { String(format: "%02x", $0) }.joined()
                                let reason: String
                                if case LedgerError.corruptRecord(_, _, let why) = error { reason = why } else { reason = "\(error)" }
                                report.examples.append("key \(key): \(reason)")
                            }
                        }
                        more = try cursor.next()
                    }
                }
            }
            reports.append(report)
        }
        return reports
    }
}
