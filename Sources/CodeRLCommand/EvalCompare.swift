import ArgumentParser
import CodeRL
import Foundation
import Ledger
import Pipeline
import Runtime

/// `coderl compare A B`: two evaluations of a ledger, problem by problem.
struct EvalCompare: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Compare two evaluations in a ledger problem by problem: paired difference, interval, permutation and McNemar tests.",
        discussion: """
            An evaluation is an id in --ledger (made by `coderl eval`), or a pipeline run's \
            held-out greedy evaluation written RUN:POINT, where RUN is the run directory (or its \
            ledger) and POINT is before, warm (after warm-start) or after (the latest), or a \
            version such as after-v41: this compares the arms of an experiment run by run. \
            LEDGER:ID names a `coderl eval` evaluation in another ledger (a directory), so two \
            evaluations kept in different ledgers compare too.

            Only problems both evaluations scored are compared. A problem's score is its pass@1 \
            estimate (correct / judged programs; 0 or 1 for greedy evaluation) and it counts as \
            solved at a score of at least 1/2. Printed: both mean scores, their difference with a \
            paired-bootstrap 95% interval (10,000 resamples of the problems, fixed seed) and the \
            two-sided p-value of a paired sign-flip permutation test on the scores (10,000 \
            random signs, fixed seed; with several programs per problem this is the test with \
            power), the problems solved by each alone, McNemar's exact two-sided p-value on \
            those, and the problems gained and lost (B against A).

            Examples:
              coderl compare base-eval rl-eval --ledger runs/eval/ledger
              coderl compare base-eval rl-eval --ledger runs/eval/ledger --json
              coderl compare runs/mbpp-a:after runs/mbpp-c:after
              coderl compare runs/mbpp-c:warm runs/mbpp-c:after
              coderl compare runs/he/ledger:base runs/he-c/ledger:arm-C
            """)

    @Argument(help: "Evaluation A (the baseline).") var a: String
    @Argument(help: "Evaluation B.") var b: String
    @Option(help: "Ledger directory holding both evaluations.") var ledger = "runs/eval/ledger"
    @Flag(help: "JSON on standard output.") var json = false

    func run() throws {
        let pair = try [a, b].map { try scores(of: $0) }
        try compare(pair.map(\.scores), lengths: pair.map(\.lengths))
    }

    /// A run evaluation's greedy program lengths and the run's token limit.
    struct Lengths {
        var tokens: [String: Int]
        var limit: Int?
    }

    /// Per-problem scores of an evaluation id in --ledger, or of a run's held-out evaluation
    /// (with its programs' lengths).
    private func scores(of reference: String) throws -> (scores: [String: Double], lengths: Lengths?) {
        if let colon = reference.lastIndex(of: ":") {
            let run = String(reference[..<colon]), point = String(reference[reference.index(after: colon)...])
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: run, isDirectory: &isDirectory), isDirectory.boolValue {
                let path = FileManager.default.fileExists(atPath: run + "/ledger") ? run + "/ledger" : run
                let store = try Ledger.openForReading(path: path)
                let heldOut = try HeldOutEvaluation.named(point, in: store)
                // Otherwise an evaluation of `coderl eval` kept in that ledger, by its id.
                if heldOut == nil, try store.eval(id: point) != nil {
                    return (try Self.evalScores(store, id: point), nil)
                }
                guard let e = heldOut else {
                    let known = try HeldOutEvaluation.all(in: store).map(\.name)
                    throw CLIError("no held-out evaluation '\(point)' in \(path)" + (known.isEmpty ? " (it has none)" : "; it has: " + known.joined(separator: ", ")))
                }
                if e.pending > 0 { FileHandle.standardError.write(Data("\(reference): \(e.pending) programs still without a verdict are left out\n".utf8)) }
                let limit = FileManager.default.fileExists(atPath: run + "/pipeline.yaml")
                    ? try? PipelineConfig.load(files: [run + "/pipeline.yaml"]).0.sampling.maxNewTokens : nil
                return (e.passed.mapValues { $0 ? 1 : 0 }, Lengths(tokens: e.tokens, limit: limit))
            }
        }
        let store = try Ledger.openForReading(path: ledger)
        guard try store.eval(id: reference) != nil else {
            throw CLIError("no evaluation '\(reference)' in \(ledger); `coderl evals --ledger \(ledger)` lists them (a run's held-out evaluation is written RUN:before, RUN:warm or RUN:after)")
        }
        return (try Self.evalScores(store, id: reference), nil)
    }

    /// Each problem's pass@1 estimate in a `coderl eval` evaluation.
    static func evalScores(_ store: Ledger, id: String) throws -> [String: Double] {
        var byProblem: [String: Double] = [:]
        for r in try store.evalResults(eval: id) where r.pool > 0 && r.error.isEmpty {
            byProblem[r.problemID] = Double(r.correct) / Double(r.pool)
        }
        return byProblem
    }

    private func compare(_ scores: [[String: Double]], lengths: [Lengths?]) throws {
        let shared = Set(scores[0].keys).intersection(scores[1].keys).sorted { $0.localizedStandardCompare($1) == .orderedAscending }
        guard !shared.isEmpty else { throw CLIError("\(a) and \(b) have no scored problem in common") }
        let comparison = PairedComparison(shared.map { PairedComparison.Problem(id: $0, a: scores[0][$0]!, b: scores[1][$0]!) })
        let onlyA = scores[0].count - shared.count, onlyB = scores[1].count - shared.count
        let cutOff = Self.cutOff(shared: shared, lengths: lengths, gained: comparison.gained, lost: comparison.lost)
        if json {
            var object: [String: Any] = [
                "a": a, "b": b, "problems": shared.count, "mean_a": comparison.meanA, "mean_b": comparison.meanB,
                "difference": comparison.difference, "interval_95": [comparison.interval.low, comparison.interval.high],
                "gained": comparison.gained, "lost": comparison.lost, "both_solved": comparison.bothSolved,
                "neither_solved": comparison.neitherSolved, "mcnemar_p": comparison.pValue,
                "permutation_p": comparison.permutationP,
            ]
            if let cutOff {
                object["program_tokens_median"] = [cutOff.medianA, cutOff.medianB]
                object["token_limit"] = cutOff.limit
                object["at_limit"] = [cutOff.atLimitA, cutOff.atLimitB]
                object["gained_cut_off_in_a"] = cutOff.gainedCutInA
                object["lost_cut_off_in_b"] = cutOff.lostCutInB
            }
            print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]), as: UTF8.self))
            return
        }
        func percent(_ x: Double) -> String { String(format: "%.1f%%", x * 100) }
        func points(_ x: Double) -> String { String(format: "%+.1f", x * 100) }
        print("A \(a) vs B \(b): \(shared.count) problems scored by both" + (onlyA + onlyB > 0 ? " (\(onlyA) only in A, \(onlyB) only in B: not compared)" : ""))
        print("pass@1: A \(percent(comparison.meanA)), B \(percent(comparison.meanB)), difference \(points(comparison.difference)) points (95% interval \(points(comparison.interval.low)) to \(points(comparison.interval.high)), paired bootstrap; sign-flip permutation p = \(String(format: "%.4g", comparison.permutationP)))")
        print("solved by both \(comparison.bothSolved), neither \(comparison.neitherSolved), B only (gained) \(comparison.gained.count), A only (lost) \(comparison.lost.count); McNemar exact p = \(String(format: "%.4g", comparison.pValue))")
        if !comparison.gained.isEmpty { print("gained: " + comparison.gained.joined(separator: " ")) }
        if !comparison.lost.isEmpty { print("lost: " + comparison.lost.joined(separator: " ")) }
        if let c = cutOff {
            print("greedy programs: median \(c.medianA) tokens in A, \(c.medianB) in B; cut off at the run's limit of \(c.limit) tokens: "
                  + "A \(c.atLimitA), B \(c.atLimitB); gained problems whose A program was cut off \(c.gainedCutInA.count) of \(comparison.gained.count), "
                  + "lost problems whose B program was cut off \(c.lostCutInB.count) of \(comparison.lost.count)")
        }
    }

    /// How many greedy programs ran into the token limit (two run evaluations with the same
    /// limit only): a model that learned to stop gains the problems it used to run past.
    struct CutOff {
        var limit: Int
        var medianA: Int, medianB: Int
        var atLimitA: Int, atLimitB: Int
        var gainedCutInA: [String], lostCutInB: [String]
    }

    static func cutOff(shared: [String], lengths: [Lengths?], gained: [String], lost: [String]) -> CutOff? {
        guard lengths.count == 2, let la = lengths[0], let lb = lengths[1], let limit = la.limit, lb.limit == limit else { return nil }
        func median(_ l: Lengths) -> Int {
            let sorted = shared.compactMap { l.tokens[$0] }.sorted()
            return sorted.isEmpty ? 0 : sorted[sorted.count / 2]
        }
        func cut(_ l: Lengths, _ id: String) -> Bool { (l.tokens[id] ?? 0) >= limit }
        return CutOff(limit: limit, medianA: median(la), medianB: median(lb),
                      atLimitA: shared.filter { cut(la, $0) }.count, atLimitB: shared.filter { cut(lb, $0) }.count,
                      gainedCutInA: gained.filter { cut(la, $0) }, lostCutInB: lost.filter { cut(lb, $0) })
    }
}
