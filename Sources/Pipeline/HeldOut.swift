import Foundation
import Ledger
import Schema

/// The held-out greedy evaluations a pipeline run keeps in its ledger: the learner asks for one
/// at each point (`before` training, after `warm`-start, `after` the last step) as eval requests
/// named `eval-<point>-v<version>-<index>`, one greedy program per held-out problem.
public struct HeldOutEvaluation: Sendable, Equatable {
    public var point: String
    public var version: UInt64
    /// Whether each problem's greedy program passed (labeled problems only).
    public var passed: [String: Bool]
    /// Programs still waiting for a verdict.
    public var pending: Int
    /// The length in tokens of each problem's greedy program (labeled problems only): one that
    /// reached the run's `sampling.max_new_tokens` was cut off there.
    public var tokens: [String: Int] = [:]

    public var name: String { "\(point)-v\(version)" }

    /// Splits a request id `eval-<point>-v<version>-<index>` into point and version.
    public static func parse(requestID: String) -> (point: String, version: UInt64)? {
        guard requestID.hasPrefix("eval-") else { return nil }
        let parts = requestID.dropFirst(5).split(separator: "-")
        guard parts.count >= 3, parts[parts.count - 2].hasPrefix("v"), let version = UInt64(parts[parts.count - 2].dropFirst()),
              Int(parts[parts.count - 1]) != nil else { return nil }
        return (parts.dropLast(2).joined(separator: "-"), version)
    }

    /// Every held-out evaluation in the ledger, ordered by version, then point.
    public static func all(in ledger: Ledger) throws -> [HeldOutEvaluation] {
        var found: [String: HeldOutEvaluation] = [:]
        try ledger.scanRollouts { r in
            guard r.use == .eval, let (point, version) = parse(requestID: r.requestID) else { return true }
            let key = "\(point)-v\(version)"
            var e = found[key] ?? HeldOutEvaluation(point: point, version: version, passed: [:], pending: 0)
            if r.state == .labeled || r.state == .consumed {
                e.passed[r.problemID] = r.verdict.outcome == .passed
                e.tokens[r.problemID] = r.programTokens.count
            } else {
                e.pending += 1
            }
            found[key] = e
            return true
        }
        return found.values.sorted { ($0.version, $0.point) < ($1.version, $1.point) }
    }

    /// The evaluation a reference names: `before`, `warm` or `after` (the latest of that point),
    /// or `<point>-v<version>`.
    public static func named(_ reference: String, in ledger: Ledger) throws -> HeldOutEvaluation? {
        let all = try all(in: ledger)
        if let exact = all.last(where: { $0.name == reference }) { return exact }
        return all.last(where: { $0.point == reference })
    }
}
