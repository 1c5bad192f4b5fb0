import ArgumentParser
import CodeRL
import Foundation
import Ledger
import Pipeline
import Runtime
import Schema

/// `coderl report`: one self-contained HTML page about a run.
struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write one self-contained HTML page about a run: training curves, critic, throughput, evaluations and rollouts.",
        discussion: """
            Reads the ledger (read-only: a running pipeline is not disturbed) and the learner's \
            progress file (RUN/learner/progress.jsonl beside RUN/ledger, or --progress), and \
            writes a page that needs no network to view: plots drawn as SVG (mean reward, pass \
            rate and outcome mix per learner step; losses; critic accuracy and calibration; \
            rollouts/s and executions/s; policy lag; evaluation results per model version) and a \
            browsable table of the newest rollouts (problem, version, verdict, failing test, \
            program) with a filter. Without a progress file (a ledger alone), the training \
            figures are computed per policy version from the stored rollouts.

            With --ledger given several times, the page is the first run's, and a section \
            compares them all: a table of training and held-out figures with each run's last \
            held-out evaluation against the first run's (gained, lost, McNemar's exact test), \
            and their per-step curves overlaid. --x-axis time draws per-step charts against \
            wall-clock minutes instead of learner steps.

            Examples:
              coderl report --ledger runs/demo/ledger --out runs/demo/report.html
              coderl report --ledger runs/eval/ledger --out eval.html --rollouts 0
              coderl report --ledger runs/mbpp-a/ledger --ledger runs/mbpp-c/ledger \\
                --x-axis time --out arms.html
            """)

    @Option(name: .customLong("ledger"),
            help: "Ledger directory (RUN/ledger). Repeat it to overlay other runs' training curves on the first's and compare their held-out evaluations with it.")
    var ledgers: [String] = []
    @Option(help: "Where to write the page.") var out = "report.html"
    @Option(help: "The learner's progress file of the first run (default: LEDGER/../learner/progress.jsonl).") var progress: String?
    @Option(help: "Newest rollouts listed in the table (0: no table).") var rollouts = 500
    @Option(help: "Page title (default: the run directory's name).") var title: String?
    @Option(name: .customLong("x-axis"), help: "The x axis of per-step charts: step (learner step) or time (minutes since the run's first step began).")
    var xAxis: ReportAxis.Kind = .step

    func validate() throws {
        if ledgers.isEmpty { throw ValidationError("--ledger is required (RUN/ledger; repeat it to overlay runs)") }
        if rollouts < 0 { throw ValidationError("--rollouts must be 0 or more") }
    }

    /// The run directory's name: the label of a ledger at RUN/ledger.
    static func runName(_ ledger: String) -> String {
        (((ledger as NSString).standardizingPath as NSString).deletingLastPathComponent as NSString).lastPathComponent
    }

    static func defaultProgress(_ ledger: String) -> String { (ledger as NSString).deletingLastPathComponent + "/learner/progress.jsonl" }

    func run() throws {
        let ledger = ledgers[0]
        let store = try Ledger.openForReading(path: ledger)
        let progressPath = progress ?? Self.defaultProgress(ledger)
        var notes: [String] = []
        let steps = try ReportData.readProgress(progressPath, explicit: progress != nil, notes: &notes)
        let data = try ReportData.collect(store, newest: rollouts)
        // The other runs: their progress files and held-out evaluations, for the overlay.
        var runs = [ComparedRun(label: Self.runName(ledger), steps: steps, data: data)]
        for other in ledgers.dropFirst() {
            let otherStore = try Ledger.openForReading(path: other)
            var ignored: [String] = []
            let otherSteps = try ReportData.readProgress(Self.defaultProgress(other), explicit: false, notes: &ignored)
            if otherSteps.isEmpty { notes.append("\(other): no learner progress file beside it; only its held-out evaluations are compared") }
            runs.append(ComparedRun(label: Self.runName(other), steps: otherSteps, data: try ReportData.collect(otherStore, newest: 0)))
        }
        // Labels tell the runs apart even when two run directories share a name.
        for i in runs.indices where runs.filter({ $0.label == runs[i].label }).count > 1 { runs[i].label += " (\(i + 1))" }
        let axis = ReportAxis.checked(xAxis, steps: runs.map(\.steps), notes: &notes)
        let name = title ?? Self.runName(ledger)
        let html = ReportPage(title: name.isEmpty ? "CodeRL run" : name, runs: runs, notes: notes,
                              progressPath: progressPath, ledgerPath: ledger, axis: axis).html()
        try Data(html.utf8).write(to: URL(fileURLWithPath: out), options: .atomic)
        for note in notes { FileHandle.standardError.write(Data("note: \(note)\n".utf8)) }
        print("wrote \(out): \(steps.count) learner steps, \(data.totalRollouts) rollouts (\(data.newest.count) listed), \(data.evals.count) evaluations"
              + (runs.count > 1 ? ", \(runs.count - 1) other run\(runs.count > 2 ? "s" : "") overlaid" : "") + ", \(html.utf8.count / 1024) KiB")
    }
}

/// One run of several on the page: its label, learner steps and ledger figures.
struct ComparedRun {
    var label: String
    var steps: [StepReport]
    var data: ReportData
}

/// The x axis of per-step charts: the learner step, or wall-clock minutes since each run's
/// first step began (from the progress file's step end times).
struct ReportAxis {
    enum Kind: String, ExpressibleByArgument, CaseIterable { case step, time }
    let kind: Kind

    /// `kind`, or steps with a note when a progress file predates step end times.
    static func checked(_ kind: Kind, steps runs: [[StepReport]], notes: inout [String]) -> ReportAxis {
        guard kind == .time, runs.contains(where: { $0.contains { $0.finishedAt == nil } }) else { return ReportAxis(kind: kind) }
        notes.append("--x-axis time: a progress file has steps without end times (written by an older learner); the x axis is the learner step")
        return ReportAxis(kind: .step)
    }

    var label: String { kind == .step ? "learner step" : "minutes since the run began" }

    /// Where the run began: its first step's end less that step's duration.
    static func start(_ steps: [StepReport]) -> Double {
        guard let first = steps.first, let end = first.finishedAt else { return 0 }
        return end - first.seconds
    }

    /// A step's x in a run that began at `start`.
    func x(_ s: StepReport, start: Double) -> Double {
        kind == .step ? Double(s.step) : ((s.finishedAt ?? start) - start) / 60
    }
}

/// What the page shows, read from the ledger.
struct ReportData {
    struct VersionStats {
        var programs = 0
        var scored = 0
        var rewardSum = 0.0
        var outcomes = [0, 0, 0, 0]
    }

    struct Row {
        var sequence: UInt64
        var request: String
        var problem: String
        var version: UInt64
        var purpose: String
        var baseline: Bool
        var outcome: String
        var reward: Float
        var advantage: Float
        var failing: String
        var program: String
    }

    var totalRollouts = 0
    var problems = 0
    var byVersion: [UInt64: VersionStats] = [:]
    /// Held-out greedy evaluations of the pipeline ("before", "after-vN"): passed and total.
    var heldout: [HeldOutEvaluation] = []
    var evals: [EvalRun] = []
    var newest: [Row] = []
    var metadata: RunMetadata?

    static func outcomeIndex(_ o: Outcome) -> Int? { Outcome.counted.firstIndex(of: o) }

    static func outcomeName(_ r: Rollout) -> String {
        guard r.hasVerdict, r.verdict.outcome != .unspecified else { return r.state == .generated || r.state == .executing ? "pending" : "unscored" }
        return r.verdict.outcome.name
    }

    /// The first failing test of a verdict, as one line.
    static func failingTest(_ v: Verdict) -> String {
        guard let t = v.tests.first(where: { $0.status != .passed && $0.status != .notRun && $0.status != .unspecified }) else {
            return v.errorType.isEmpty ? "" : "\(v.errorType): \(v.errorMessage)"
        }
        var s = "test \(t.index + 1): \(t.status.name)"
        if !t.errorType.isEmpty { s += " \(t.errorType)" }
        if !t.message.isEmpty { s += ": \(t.message)" }
        return String(s.prefix(300))
    }

    static func collect(_ store: Ledger, newest limit: Int) throws -> ReportData {
        var d = ReportData()
        d.problems = try store.counts().problems
        d.metadata = try store.runMetadata()
        d.evals = try store.evals().sorted { $0.createdUnixMs < $1.createdUnixMs }
        var ring: [Row] = []
        ring.reserveCapacity(limit)
        try store.scanRollouts { r in
            d.totalRollouts += 1
            // The learner's held-out greedy evaluations are HeldOutEvaluation's (below).
            if r.use != .eval && !r.baseline {
                var s = d.byVersion[r.policyVersion, default: VersionStats()]
                s.programs += 1
                if let i = outcomeIndex(r.verdict.outcome) {
                    s.scored += 1
                    s.outcomes[i] += 1
                    s.rewardSum += Double(r.reward)
                }
                d.byVersion[r.policyVersion] = s
            }
            if limit > 0 {
                let row = Row(sequence: r.sequence, request: r.requestID, problem: r.problemID, version: r.policyVersion, purpose: r.use?.rawValue ?? r.purpose,
                              baseline: r.baseline, outcome: outcomeName(r), reward: r.reward, advantage: r.advantage,
                              failing: failingTest(r.verdict), program: String(r.program.prefix(4000)))
                if ring.count == limit { ring.removeFirst() }
                ring.append(row)
            }
            return true
        }
        d.newest = ring.reversed()
        d.heldout = try HeldOutEvaluation.all(in: store).filter { !$0.passed.isEmpty }
        return d
    }

    /// The learner's step reports; a malformed line is skipped with a note naming it.
    static func readProgress(_ path: String, explicit: Bool, notes: inout [String]) throws -> [StepReport] {
        guard FileManager.default.fileExists(atPath: path) else {
            if explicit { throw CLIError("--progress \(path): no such file") }
            notes.append("no learner progress file at \(path): training figures are per policy version, from the ledger")
            return []
        }
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var steps: [StepReport] = []
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where !line.isEmpty {
            do {
                steps.append(try StepReport.decode(line: line))
            } catch {
                notes.append("\(path), line \(i + 1): not a learner step report (\(error)); skipped")
            }
        }
        // A resumed learner may repeat steps: keep the last report of each.
        var byStep: [Int: StepReport] = [:]
        for s in steps { byStep[s.step] = s }
        return byStep.keys.sorted().map { byStep[$0]! }
    }
}

/// The HTML page.
struct ReportPage {
    let title: String
    /// The page's run first, then the runs overlaid on it (if any).
    let runs: [ComparedRun]
    let notes: [String]
    let progressPath: String
    let ledgerPath: String
    var axis = ReportAxis(kind: .step)

    var steps: [StepReport] { runs[0].steps }
    var data: ReportData { runs[0].data }

    /// A step's x on this run's charts.
    func x(_ s: StepReport) -> Double { axis.x(s, start: ReportAxis.start(steps)) }

    typealias S = SVGChart.Series
    func e(_ s: String) -> String { SVGChart.escape(s) }

    func html() -> String {
        var body = "<header><h1>\(e(title))</h1><p class=\"sub\">CodeRL report, written \(e(ISO8601DateFormatter().string(from: Date()))) from <code>\(e(ledgerPath))</code></p>\(summary())</header>"
        for note in notes { body += "<p class=\"note\">\(e(note))</p>" }
        if let m = data.metadata, !m.config.isEmpty {
            body += "<section><h2>Configuration</h2><details><summary>run \(e(m.runID))</summary><pre>\(e(m.config))</pre></details></section>"
        }
        if runs.count > 1 { body += "<section><h2>Runs compared</h2>\(comparison())</section>" }
        if steps.isEmpty && data.byVersion.isEmpty {
            body += "<section><h2>Training</h2><p class=\"note\">no training in this ledger (no learner steps, no train rollouts)</p></section>"
        } else {
            body += "<section><h2>Training</h2><div class=\"grid\">\(training())</div></section>"
            if !steps.isEmpty { body += "<section><h2>Training diagnostics</h2>\(diagnostics())</section>" }
            body += "<section><h2>Critic</h2><div class=\"grid\">\(critic())</div></section>"
            body += "<section><h2>Throughput and policy lag</h2><div class=\"grid\">\(throughput())</div></section>"
        }
        body += "<section><h2>Evaluations</h2>\(evaluations())</section>"
        body += "<section><h2>Rollouts</h2>\(rolloutTable())</section>"
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(e(title)) - CodeRL report</title>
            <style>\(Self.css)</style></head>
            <body>\(body)<script>\(Self.script)</script></body></html>

            """
    }

    func summary() -> String {
        var items: [(String, String)] = [("problems", "\(data.problems)"), ("rollouts", "\(data.totalRollouts)")]
        if let last = steps.last {
            items += [("learner steps", "\(last.step)"), ("actor version", "v\(last.version)"),
                      ("pass rate (last step)", SVGChart.format(last.passRate, "%")),
                      ("mean reward (last step)", String(format: "%+.3f", last.meanReward))]
        } else if let newest = data.byVersion.keys.max() {
            items.append(("newest policy version", "v\(newest)"))
        }
        if let before = data.heldout.first, let after = data.heldout.last, data.heldout.count > 1 {
            items.append(("held-out greedy pass", "\(Self.solved(before))/\(before.passed.count) → \(Self.solved(after))/\(after.passed.count)"))
        }
        items.append(("evaluations", "\(data.evals.count)"))
        return "<dl class=\"summary\">" + items.map { "<div><dt>\(e($0.0))</dt><dd>\(e($0.1))</dd></div>" }.joined() + "</dl>"
    }

    func training() -> String {
        let outcomeNames = Outcome.counted.map(\.name)
        if !steps.isEmpty {
            let xs = steps.map { x($0) }
            func series(_ name: String, _ color: String, _ f: (StepReport) -> Double) -> S {
                S(name: name, color: color, points: steps.map { (x($0), f($0)) })
            }
            // Per-step figures of 64 programs are noisy: beside them, the mean of the last
            // `window` steps (drawn once there are enough steps for it to differ).
            let window = max(5, steps.count / 10)
            func withMean(_ raw: S, _ color: String) -> [S] {
                guard steps.count >= 2 * window else { return [raw] }
                return [raw, S(name: "mean of \(window) steps", color: color, points: Self.trailingMean(raw.points, window: window))]
            }
            return SVGChart.lines("Mean reward per learner step", id: "reward",
                                  series: withMean(series("mean reward", SVGChart.palette[0]) { $0.meanReward }, SVGChart.palette[1]), xLabel: axis.label)
                + SVGChart.lines("Pass rate per learner step", id: "pass-rate",
                                 series: withMean(series("pass rate", SVGChart.palette[2]) { $0.passRate }, SVGChart.palette[1]), xLabel: axis.label, yStyle: "%", yRange: (0, 1))
                + SVGChart.stackedShares("Outcome mix per learner step", id: "outcomes", xs: xs,
                                         stacks: (0..<4).map { i in (outcomeNames[i], SVGChart.outcomeColors[i], steps.map { Double($0.outcomes.count > i ? $0.outcomes[i] : 0) }) },
                                         xLabel: axis.label)
                + SVGChart.lines("Losses per learner step", id: "losses", series: [
                    series("cross-entropy", SVGChart.palette[0]) { $0.crossEntropy },
                    series("policy gradient", SVGChart.palette[1]) { $0.policyLoss },
                    series("critic", SVGChart.palette[4]) { $0.criticLoss },
                ], xLabel: axis.label)
        }
        let versions = data.byVersion.keys.sorted()
        let stats = versions.map { data.byVersion[$0]! }
        let xs = versions.map(Double.init)
        return SVGChart.lines("Mean reward per policy version (from the ledger)", id: "reward",
                              series: [S(name: "mean reward", color: SVGChart.palette[0], points: zip(xs, stats).filter { $0.1.scored > 0 }.map { ($0.0, $0.1.rewardSum / Double($0.1.scored)) })],
                              xLabel: "policy version")
            + SVGChart.lines("Pass rate per policy version (from the ledger)", id: "pass-rate",
                             series: [S(name: "pass rate", color: SVGChart.palette[2], points: zip(xs, stats).filter { $0.1.scored > 0 }.map { ($0.0, Double($0.1.outcomes[3]) / Double($0.1.scored)) })],
                             xLabel: "policy version", yStyle: "%", yRange: (0, 1))
            + SVGChart.stackedShares("Outcome mix per policy version (from the ledger)", id: "outcomes", xs: xs,
                                     stacks: (0..<4).map { i in (outcomeNames[i], SVGChart.outcomeColors[i], stats.map { Double($0.outcomes[i]) }) },
                                     xLabel: "policy version")
    }

    /// Several runs side by side: a table of their training and held-out figures, each run's
    /// last held-out evaluation against the first run's (paired, McNemar's exact test), and
    /// their per-step curves overlaid (noisy figures as trailing means).
    func comparison() -> String {
        let reference = data.heldout.last
        var html = "<table class=\"compared\"><thead><tr><th>run</th><th>learner steps</th><th>training programs judged</th><th>passed</th>"
        html += "<th>held-out greedy</th><th>against \(e(runs[0].label))</th></tr></thead><tbody>"
        for (i, run) in runs.enumerated() {
            let judged = run.data.byVersion.values.reduce(0) { $0 + $1.scored }, passed = run.data.byVersion.values.reduce(0) { $0 + $1.outcomes[3] }
            let heldout = run.data.heldout.map { "\(e($0.point)) \(Self.solved($0))/\($0.passed.count)" }.joined(separator: " → ")
            var against = ""
            if i > 0, let reference, let last = run.data.heldout.last {
                let common = Set(reference.passed.keys).intersection(last.passed.keys)
                let gained = common.count { last.passed[$0]! && !reference.passed[$0]! }, lost = common.count { reference.passed[$0]! && !last.passed[$0]! }
                against = String(format: "%+.1f points, %d gained, %d lost, McNemar p = %.2g (%d problems)",
                                 100 * Double(gained - lost) / Double(max(1, common.count)), gained, lost,
                                 PairedComparison.mcNemarExact(gained, lost), common.count)
            }
            html += "<tr><td>\(e(run.label))</td><td>\(run.steps.last?.step ?? 0)</td><td>\(judged)</td><td>\(judged > 0 ? SVGChart.format(Double(passed) / Double(judged), "%") : "")</td>"
            html += "<td>\(heldout.isEmpty ? "none" : heldout)</td><td>\(e(against))</td></tr>"
        }
        html += "</tbody></table>"
        let withSteps = runs.filter { !$0.steps.isEmpty }
        guard !withSteps.isEmpty else { return html }
        func overlay(_ title: String, _ id: String, smooth: Bool, yStyle: String = "", yRange: (Double, Double)? = nil, _ f: (StepReport) -> Double?) -> String {
            let series = withSteps.enumerated().map { i, run -> S in
                let start = ReportAxis.start(run.steps)
                var points = run.steps.compactMap { s in f(s).map { (axis.x(s, start: start), $0) } }
                if smooth { points = Self.trailingMean(points, window: max(5, run.steps.count / 10)) }
                return S(name: run.label, color: SVGChart.palette[i % SVGChart.palette.count], points: points)
            }.filter { !$0.points.isEmpty }
            guard !series.isEmpty else { return "" }
            return SVGChart.lines(title, id: id, series: series, xLabel: axis.label, yStyle: yStyle, yRange: yRange)
        }
        html += "<p>Per-step figures of each run; reward and pass rate as the trailing mean of max(5, steps / 10) steps.</p><div class=\"grid\">"
        html += overlay("Pass rate of the sampled programs (trailing mean)", "compared-pass-rate", smooth: true, yStyle: "%", yRange: (0, 1)) { $0.passRate }
        html += overlay("Mean reward (trailing mean)", "compared-reward", smooth: true) { $0.meanReward }
        html += overlay("Cross-entropy on references", "compared-ce", smooth: false) { $0.crossEntropy }
        html += overlay("Policy-gradient loss", "compared-pg", smooth: false) { $0.policyLoss }
        html += overlay("Gradient norm before clipping", "compared-gradient-norm", smooth: false) { $0.gradientNorm }
        html += overlay("Frontier problems", "compared-frontier", smooth: false) { $0.frontier.map(Double.init) }
        html += overlay("KL to the starting policy", "compared-kl", smooth: false) { $0.klToStart }
        html += overlay("Mean length of the sampled programs (tokens)", "compared-program-length", smooth: false) { $0.programTokens }
        html += overlay("Share of sampled programs cut off (trailing mean)", "compared-cut-off", smooth: true, yStyle: "%", yRange: (0, 1)) { $0.cutOffShare }
        return html + "</div>"
    }

    /// The mean of each point and the `window - 1` before it (fewer at the start).
    static func trailingMean(_ points: [(x: Double, y: Double)], window: Int) -> [(x: Double, y: Double)] {
        var out: [(x: Double, y: Double)] = [], sum = 0.0
        for (i, p) in points.enumerated() {
            sum += p.y
            if i >= window { sum -= points[i - window].y }
            out.append((p.x, sum / Double(min(i + 1, window))))
        }
        return out
    }

    /// What the learner's optional per-step diagnostics say: gradient norms per loss term and
    /// clipping, the share of samples that carried a return and the frontier's size, the
    /// distance from the starting policy, the sampled tokens' entropy, the learning rate and
    /// tokens per step. Counts and shares get charts of their own (one axis each).
    func diagnostics() -> String {
        func points(_ f: (StepReport) -> Double?) -> [(x: Double, y: Double)] { steps.compactMap { s in f(s).map { (x(s), $0) } } }
        let clippedSteps = steps.filter { $0.clipped == true }.count, withClip = steps.filter { $0.clipped != nil }.count
        var charts: [String] = []
        let norms = [S(name: "total", color: SVGChart.palette[0], points: points(\.gradientNorm)),
                     S(name: "cross-entropy", color: SVGChart.palette[2], points: points(\.gradientNormCE)),
                     S(name: "policy gradient", color: SVGChart.palette[1], points: points(\.gradientNormPG))].filter { !$0.points.isEmpty }
        if !norms.isEmpty {
            charts.append(SVGChart.lines("Gradient norm before clipping" + (withClip > 0 ? " (clipped in \(clippedSteps) of \(withClip) steps)" : ""),
                                         id: "gradient-norm", series: norms, xLabel: axis.label))
        }
        let singles: [(String, String, String, (StepReport) -> Double?, String)] = [
            ("Share of samples with a non-zero return", "signal-share", "%", { $0.signalShare }, "share"),
            ("Frontier problems (some but not all samples passed)", "frontier", "", { $0.frontier.map(Double.init) }, "problems"),
            ("KL to the starting policy (nats per token)", "kl", "", { $0.klToStart }, "KL"),
            ("Entropy of the sampled tokens (nats per token, estimated)", "entropy", "", { $0.sampledLogProb.map { -$0 } }, "entropy"),
            ("Mean |return|", "mean-abs-return", "", { $0.meanAbsReturn }, "mean |return|"),
            ("Learning rate", "learning-rate", "", { $0.learningRate }, "learning rate"),
            ("Tokens per learner step", "tokens", "", { $0.tokens.map(Double.init) }, "tokens"),
            ("Mean length of the sampled programs (tokens)", "program-length", "", { $0.programTokens }, "tokens"),
            ("Share of sampled programs cut off at max_new_tokens", "cut-off", "%", { $0.cutOffShare }, "cut off"),
        ]
        for (title, id, style, f, name) in singles {
            let p = points(f)
            guard !p.isEmpty else { continue }
            charts.append(SVGChart.lines(title, id: id, series: [S(name: name, color: SVGChart.palette[charts.count % SVGChart.palette.count], points: p)],
                                         xLabel: axis.label, yStyle: style, yRange: style == "%" ? (0, 1) : nil))
        }
        guard !charts.isEmpty else { return "<p class=\"note\">the progress file carries no diagnostics (a learner older than them)</p>" }
        return "<div class=\"grid\">" + charts.joined() + "</div>"
    }

    /// "before (v0)": how the page names a held-out evaluation.
    static func tag(_ e: HeldOutEvaluation) -> String { "\(e.point) (v\(e.version))" }

    static func solved(_ e: HeldOutEvaluation) -> Int { e.passed.values.filter { $0 }.count }

    /// The held-out problems whose greedy program changed verdict between the first and the
    /// last of the pipeline's held-out evaluations.
    func heldoutChanges() -> String {
        guard data.heldout.count > 1, let from = data.heldout.first, let to = data.heldout.last else { return "" }
        let first = from.passed, last = to.passed
        let common = Set(first.keys).intersection(last.keys).sorted()
        let gained = common.filter { !first[$0]! && last[$0]! }, lost = common.filter { first[$0]! && !last[$0]! }
        func list(_ ids: [String]) -> String { ids.isEmpty ? "none" : ids.map { "<code>\(e($0))</code>" }.joined(separator: ", ") }
        return "<p>Held-out problems that changed from \(e(Self.tag(from))) to \(e(Self.tag(to))) "
            + "(\(common.count) in both): <strong>\(gained.count) gained</strong>: \(list(gained)); <strong>\(lost.count) lost</strong>: \(list(lost)).</p>"
    }

    func critic() -> String {
        let trained = steps.filter { $0.criticLoss != 0 || $0.criticAccuracy != 0 }
        return SVGChart.lines("Critic accuracy on each step's outcomes", id: "critic-accuracy",
                              series: [S(name: "accuracy", color: SVGChart.palette[4], points: trained.map { (x($0), $0.criticAccuracy) })],
                              xLabel: axis.label, yStyle: "%", yRange: (0, 1))
            + SVGChart.lines("Critic calibration (expected calibration error)", id: "critic-calibration",
                             series: [S(name: "ECE", color: SVGChart.palette[5], points: trained.compactMap { s in s.criticCalibrationError.map { (x(s), $0) } })],
                             xLabel: axis.label, yRange: (0, 1))
    }

    func throughput() -> String {
        SVGChart.lines("Rollouts and executions per second", id: "throughput", series: [
            S(name: "rollouts/s", color: SVGChart.palette[0], points: steps.map { (x($0), $0.rolloutsPerSecond) }),
            S(name: "executions/s", color: SVGChart.palette[3], points: steps.map { (x($0), $0.executionsPerSecond) }),
        ], xLabel: axis.label)
            + SVGChart.lines("Policy lag of consumed rollouts (versions)", id: "policy-lag", series: [
                S(name: "mean lag", color: SVGChart.palette[1], points: steps.map { (x($0), $0.policyLag) }),
                S(name: "stale rollouts", color: SVGChart.palette[5], points: steps.map { (x($0), Double($0.stale)) }),
            ], xLabel: axis.label)
            + SVGChart.lines("Seconds per learner step", id: "step-seconds",
                             series: [S(name: "seconds", color: SVGChart.palette[0], points: steps.map { (x($0), $0.seconds) })],
                             xLabel: axis.label)
    }

    func evaluations() -> String {
        func metric(_ run: EvalRun, _ name: String) -> Double? { run.metrics.first { $0.name == name && $0.group == "all" }?.value }
        var html = "<div class=\"grid\">"
        html += SVGChart.bars("pass@1 by evaluation (coderl eval)", id: "evals",
                              items: data.evals.compactMap { run in metric(run, "pass@1").map { ("\(run.id) [\(run.model)]", $0) } })
        html += SVGChart.bars("Held-out greedy pass rate (the pipeline's own evaluation)", id: "heldout",
                              items: data.heldout.map { (Self.tag($0), Double(Self.solved($0)) / Double(max(1, $0.passed.count))) })
        html += "</div>" + heldoutChanges()
        guard !data.evals.isEmpty else { return html }
        let names = Array(Set(data.evals.flatMap { $0.metrics.filter { $0.group == "all" }.map(\.name) })).sorted {
            ($0.hasPrefix("pass@") ? 0 : 1, Int($0.split(separator: "@").last ?? "") ?? 0, $0) < ($1.hasPrefix("pass@") ? 0 : 1, Int($1.split(separator: "@").last ?? "") ?? 0, $1)
        }
        html += "<table class=\"evals\"><thead><tr><th>evaluation</th><th>model</th><th>dataset</th><th>mode</th><th>problems</th><th>programs</th>"
        html += names.map { "<th>\(e($0))</th>" }.joined() + "</tr></thead><tbody>"
        for run in data.evals {
            html += "<tr><td>\(e(run.id))\(run.finishedUnixMs == 0 ? " <em>(unfinished)</em>" : "")</td><td>\(e(run.model))</td><td>\(e(run.dataset))</td><td>\(e(run.mode))</td><td>\(run.problems)</td><td>\(run.programsGenerated)</td>"
            html += names.map { n in "<td>\(metric(run, n).map { SVGChart.format($0, "%") } ?? "")</td>" }.joined() + "</tr>"
        }
        return html + "</tbody></table>"
    }

    /// The newest rollouts, a group per request and problem (the programs sampled together
    /// and their greedy baseline, compared with each other), the group of the newest rollout
    /// first and the greedy program first in its group.
    static func groups(_ rows: [ReportData.Row]) -> [[ReportData.Row]] {
        var order: [String] = [], byKey: [String: [ReportData.Row]] = [:]
        for r in rows {
            let key = r.request + "\u{0}" + r.problem
            if byKey[key] == nil { order.append(key) }
            byKey[key, default: []].append(r)
        }
        return order.map { key in byKey[key]!.sorted { ($0.baseline ? 0 : 1, $0.sequence) < ($1.baseline ? 0 : 1, $1.sequence) } }
    }

    func rolloutTable() -> String {
        guard !data.newest.isEmpty else { return "<p class=\"note\">no rollouts listed (the ledger has none, or --rollouts 0)</p>" }
        let groups = Self.groups(data.newest)
        var html = "<p>The newest \(data.newest.count) of \(data.totalRollouts) rollouts in \(groups.count) groups (one request's programs for one problem, its greedy baseline first), newest first. "
        html += "<label>Filter <input id=\"filter\" type=\"search\" placeholder=\"problem, verdict, text of the program…\"></label> "
        html += "<label>Outcome <select id=\"outcome\"><option value=\"\">any</option>"
        html += (Outcome.counted.reversed().map(\.name) + ["pending", "unscored"]).map { "<option>\($0)</option>" }.joined()
        html += "</select></label> <span id=\"shown\"></span></p>"
        html += "<table id=\"rollouts\"><thead><tr><th>#</th><th>problem</th><th>version</th><th>purpose</th><th>verdict</th><th>reward</th><th>return</th><th>failing test</th><th>program</th></tr></thead><tbody>"
        for (g, group) in groups.enumerated() {
            let sampled = group.filter { !$0.baseline }, greedy = group.first { $0.baseline }
            let passed = sampled.filter { $0.outcome == Outcome.passed.name }.count
            var head = "request <code>\(e(group[0].request.isEmpty ? "(none)" : group[0].request))</code>, <code>\(e(group[0].problem))</code>"
            if !sampled.isEmpty { head += ": \(passed) of \(sampled.count) sampled passed" }
            if let greedy { head += "; greedy \(e(greedy.outcome))" }
            html += "<tr class=\"group\" data-group=\"\(g)\"><td colspan=\"9\">\(head)</td></tr>"
            for r in group {
                let firstLine = r.program.split(separator: "\n").first.map { String($0.prefix(60)) } ?? "(empty)"
                html += "<tr data-outcome=\"\(e(r.outcome))\" data-in=\"\(g)\"><td>\(r.sequence)</td><td>\(e(r.problem))</td><td>v\(r.version)</td><td>\(e(r.purpose))\(r.baseline ? " (greedy)" : "")</td>"
                html += "<td class=\"o \(e(r.outcome))\">\(e(r.outcome))</td><td>\(String(format: "%+.2f", r.reward))</td><td>\(String(format: "%+.2f", r.advantage))</td>"
                html += "<td class=\"fail\">\(e(r.failing))</td><td><details><summary>\(e(firstLine))</summary><pre>\(e(r.program))</pre></details></td></tr>"
            }
        }
        return html + "</tbody></table>"
    }

    static let css = """
        body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1200px;padding:0 16px 40px;color:#222}
        h1{margin:16px 0 0}h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:28px}.sub{color:#666;margin:2px 0 8px}
        .summary{display:flex;flex-wrap:wrap;gap:8px;margin:8px 0}.summary div{background:#f4f6f8;border-radius:6px;padding:6px 12px}
        .summary dt{font-size:12px;color:#666}.summary dd{margin:0;font-size:18px;font-weight:600}
        .note{color:#8a5a00;background:#fff7e0;padding:4px 8px;border-radius:4px}
        .grid{display:flex;flex-wrap:wrap;gap:12px}.chart{margin:0;border:1px solid #e4e4e4;border-radius:6px;background:#fff}
        svg .title{font-weight:600;font-size:13px}svg .tick,svg .legend{font-size:11px;fill:#444}svg .label{font-size:11px;fill:#666}
        svg .note{font-size:13px;fill:#999}svg .grid{stroke:#eee}svg .axis{stroke:#888}
        table{border-collapse:collapse;width:100%;margin-top:8px;font-size:13px}th,td{border-bottom:1px solid #eee;padding:3px 6px;text-align:left;vertical-align:top}
        th{background:#f4f6f8;position:sticky;top:0}td.fail{max-width:320px;color:#a33;word-break:break-word}
        td.o.passed{color:#197a19;font-weight:600}td.o.failed-test{color:#c46a00}td.o.runtime-error{color:#c22}td.o.compile-error{color:#666}
        pre{white-space:pre-wrap;background:#f8f8f8;padding:6px;margin:4px 0;max-width:520px;font-size:12px}
        tr.group td{background:#f9fafb;border-top:2px solid #dde;font-size:12px;color:#444}
        summary{cursor:pointer;font-family:ui-monospace,monospace;font-size:12px}input,select{font:inherit}
        """

    static let script = """
        (function(){var f=document.getElementById('filter'),o=document.getElementById('outcome'),s=document.getElementById('shown');
        if(!f)return;var rows=Array.prototype.slice.call(document.querySelectorAll('#rollouts tbody tr[data-outcome]'));
        var heads=Array.prototype.slice.call(document.querySelectorAll('#rollouts tbody tr.group'));
        function apply(){var q=f.value.toLowerCase(),w=o.value,n=0,open={};rows.forEach(function(r){
        var ok=(!w||r.getAttribute('data-outcome')===w)&&(!q||r.textContent.toLowerCase().indexOf(q)>=0);
        r.style.display=ok?'':'none';if(ok){n++;open[r.getAttribute('data-in')]=1;}});
        heads.forEach(function(h){h.style.display=open[h.getAttribute('data-group')]?'':'none';});s.textContent=n+' shown';}
        f.addEventListener('input',apply);o.addEventListener('change',apply);apply();})();
        """
}
