import ArgumentParser
import CodeRL
import Foundation
import Ledger

/// `coderl compare A B`: two evaluations of a ledger, problem by problem.
struct EvalCompare: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Compare two evaluations in a ledger problem by problem: paired difference, interval, McNemar's exact test.",
        discussion: """
            Only problems both evaluations scored are compared. A problem's score is its pass@1 \
            estimate (correct / judged programs; 0 or 1 for greedy evaluation) and it counts as \
            solved at a score of at least 1/2. Printed: both mean scores, their difference with a \
            paired-bootstrap 95% interval (10,000 resamples of the problems, fixed seed), the \
            problems solved by each alone, McNemar's exact two-sided p-value on those, and the \
            problems gained and lost (B against A).

            Examples:
              coderl compare base-eval rl-eval --ledger runs/eval/ledger
              coderl compare base-eval rl-eval --ledger runs/eval/ledger --json
            """)

    @Argument(help: "Evaluation A (the baseline).") var a: String
    @Argument(help: "Evaluation B.") var b: String
    @Option(help: "Ledger directory holding both evaluations.") var ledger = "runs/eval/ledger"
    @Flag(help: "JSON on standard output.") var json = false

    func run() throws {
        let store = try Ledger.openForReading(path: ledger)
        var scores: [[String: Double]] = []
        for id in [a, b] {
            guard try store.eval(id: id) != nil else {
                throw CLIError("no evaluation '\(id)' in \(ledger); `coderl evals --ledger \(ledger)` lists them")
            }
            var byProblem: [String: Double] = [:]
            for r in try store.evalResults(eval: id) where r.pool > 0 && r.error.isEmpty {
                byProblem[r.problemID] = Double(r.correct) / Double(r.pool)
            }
            scores.append(byProblem)
        }
        let shared = Set(scores[0].keys).intersection(scores[1].keys).sorted { $0.localizedStandardCompare($1) == .orderedAscending }
        guard !shared.isEmpty else { throw CLIError("\(a) and \(b) have no scored problem in common") }
        let comparison = PairedComparison(shared.map { PairedComparison.Problem(id: $0, a: scores[0][$0]!, b: scores[1][$0]!) })
        let onlyA = scores[0].count - shared.count, onlyB = scores[1].count - shared.count
        if json {
            let object: [String: Any] = [
                "a": a, "b": b, "problems": shared.count, "mean_a": comparison.meanA, "mean_b": comparison.meanB,
                "difference": comparison.difference, "interval_95": [comparison.interval.low, comparison.interval.high],
                "gained": comparison.gained, "lost": comparison.lost, "both_solved": comparison.bothSolved,
                "neither_solved": comparison.neitherSolved, "mcnemar_p": comparison.pValue,
            ]
            print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted]), as: UTF8.self))
            return
        }
        func percent(_ x: Double) -> String { String(format: "%.1f%%", x * 100) }
        func points(_ x: Double) -> String { String(format: "%+.1f", x * 100) }
        print("A \(a) vs B \(b): \(shared.count) problems scored by both" + (onlyA + onlyB > 0 ? " (\(onlyA) only in A, \(onlyB) only in B: not compared)" : ""))
        print("pass@1: A \(percent(comparison.meanA)), B \(percent(comparison.meanB)), difference \(points(comparison.difference)) points (95% interval \(points(comparison.interval.low)) to \(points(comparison.interval.high)), paired bootstrap)")
        print("solved by both \(comparison.bothSolved), neither \(comparison.neitherSolved), B only (gained) \(comparison.gained.count), A only (lost) \(comparison.lost.count); McNemar exact p = \(String(format: "%.4g", comparison.pValue))")
        if !comparison.gained.isEmpty { print("gained: " + comparison.gained.joined(separator: " ")) }
        if !comparison.lost.isEmpty { print("lost: " + comparison.lost.joined(separator: " ")) }
    }
}
