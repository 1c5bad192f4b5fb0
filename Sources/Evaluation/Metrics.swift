import CodeRL
import Foundation
import Schema

/// pass@k and n@k over an evaluation's problem results, overall and per difficulty.
public enum EvalMetrics {
    /// Metrics in a stable order: for "all" then each difficulty (sorted), pass@k for every k,
    /// then n@k for every n < k. A problem whose generation failed counts as unsolved.
    public static func compute(_ results: [EvalProblemResult], ks: [Int], submissions: [Int]) -> [EvalMetric] {
        let difficulties = Set(results.map(\.difficulty)).subtracting([""]).sorted()
        var groups: [(String, [EvalProblemResult])] = [("all", results)]
        if !(difficulties.count == 1 && results.allSatisfy { $0.difficulty == difficulties[0] }) {
            groups += difficulties.map { d in (d, results.filter { $0.difficulty == d }) }
        }
        var metrics: [EvalMetric] = []
        for (group, members) in groups where !members.isEmpty {
            func add(_ name: String, _ value: (EvalProblemResult) -> Double) {
                var m = EvalMetric()
                m.name = name
                m.group = group
                m.problems = UInt32(members.count)
                m.value = members.map(value).reduce(0, +) / Double(members.count)
                metrics.append(m)
            }
            for k in ks {
                add("pass@\(k)") { PassAtK.estimate(samples: Int($0.pool), correct: Int($0.correct), k: k) }
            }
            for k in ks {
                for n in submissions where n < k {
                    add("\(n)@\(k)") { r in
                        let c = counts(r)
                        return NAtK.estimate(samples: c.pool, passExamples: c.examples, passBoth: c.both, n: n, k: k)
                    }
                }
            }
        }
        return metrics
    }

    /// Pool size, pool programs passing the example tests (all of them when the problem has
    /// none), and those also passing the hidden tests.
    public static func counts(_ r: EvalProblemResult) -> (pool: Int, examples: Int, both: Int) {
        let pool = r.samples.filter { $0.inPool && $0.hasVerdict }
        let hasExamples = pool.contains { $0.hasExampleVerdict }
        let examples = pool.filter { !hasExamples || $0.exampleVerdict.outcome == .passed }
        return (pool.count, examples.count, examples.filter { $0.verdict.outcome == .passed }.count)
    }

    /// The smallest pool of any problem (pass@k with k above it is not an unbiased estimate).
    public static func smallestPool(_ results: [EvalProblemResult]) -> Int {
        results.filter { $0.error.isEmpty }.map { Int($0.pool) }.min() ?? 0
    }
}
