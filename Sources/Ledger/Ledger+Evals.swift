import Foundation
import LMDB
import Schema

/// Evaluations (`coderl eval`): one `EvalRun` per run, one `EvalProblemResult` per problem
/// it judged, so runs can be browsed, resumed and compared across model versions.
extension Ledger {
    private func evalTables() throws -> (Database, Database) {
        guard let evalsTable, let evalResultsTable else {
            throw LedgerError.invalidRecord(table: "evals", key: "-", reason: "this ledger was written before evaluations were stored and is open read-only")
        }
        return (evalsTable, evalResultsTable)
    }

    static func evalResultKey(eval: String, problem: String) -> [UInt8] {
        Array(eval.utf8) + [0] + Array(problem.utf8)
    }

    public func saveEval(_ run: EvalRun) throws {
        guard !run.id.isEmpty, !run.id.utf8.contains(0) else {
            throw LedgerError.invalidRecord(table: "evals", key: run.id, reason: "an evaluation needs an id without NUL bytes")
        }
        let (evals, _) = try evalTables()
        let bytes = try RecordCodec.encodeVersioned(run)
        try environment.write { try $0.put(evals, Array(run.id.utf8), bytes) }
    }

    public func eval(id: String) throws -> EvalRun? {
        guard let evalsTable else { return nil }
        return try environment.read { txn in
            try txn.withValue(evalsTable, Array(id.utf8)) { try RecordCodec.decodeVersioned(EvalRun.self, $0, table: "evals", key: id) }
        }
    }

    /// Every evaluation, oldest first.
    public func evals() throws -> [EvalRun] {
        guard let evalsTable else { return [] }
        var out: [EvalRun] = []
        try environment.read { txn in
            try txn.forEach(evalsTable) { key, value in
                out.append(try RecordCodec.decodeVersioned(EvalRun.self, value, table: "evals", key: String(decoding: key, as: UTF8.self)))
                return true
            }
        }
        return out.sorted { ($0.createdUnixMs, $0.id) < ($1.createdUnixMs, $1.id) }
    }

    public func saveEvalResult(_ result: EvalProblemResult) throws {
        let (_, results) = try evalTables()
        let key = Ledger.evalResultKey(eval: result.evalID, problem: result.problemID)
        let bytes = try RecordCodec.encodeVersioned(result)
        try environment.write { try $0.put(results, key, bytes) }
    }

    /// The results of one evaluation, in problem-id order.
    public func evalResults(eval id: String) throws -> [EvalProblemResult] {
        guard let evalResultsTable else { return [] }
        let prefix = Array(id.utf8) + [0]
        var out: [EvalProblemResult] = []
        try environment.read { txn in
            try txn.forEach(evalResultsTable, from: prefix) { key, value in
                guard key.starts(with: prefix) else { return false }
                out.append(try RecordCodec.decodeVersioned(EvalProblemResult.self, value, table: "eval_results",
                                                           key: String(decoding: key, as: UTF8.self)))
                return true
            }
        }
        return out
    }
}
