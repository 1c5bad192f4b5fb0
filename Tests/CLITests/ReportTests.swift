import Foundation
import Ledger
import Schema
import TestSupport
import XCTest

/// `coderl report` on a ledger and progress file written here, read back as a browser would.
final class ReportTests: XCTestCase {
    var root = ""

    override func setUp() {
        root = NSTemporaryDirectory() + "coderl-report-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: root + "/run/learner", withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    func coderl(_ arguments: [String]) throws -> (status: Int32, output: String) { try runCLI("coderl", arguments) }

    /// The pipeline's greedy programs for held-out problems own/h0 and own/h1 at one point of
    /// a run: the first `passing` of them passed.
    func heldOut(_ point: String, version: Int, passing: Int) -> [Rollout] {
        (0..<2).map { i in
            var r = Rollout()
            r.problemID = "own/h\(i)"
            r.policyVersion = UInt64(version)
            r.purpose = "eval"
            r.baseline = true
            r.requestID = "eval-\(point)-v\(version)-\(i)"
            r.state = .labeled
            r.verdict = Verdict.with { $0.outcome = i < passing ? .passed : .failedTest }
            return r
        }
    }

    /// A run: 3 versions x 4 programs (one hostile text), held-out evaluations, one `coderl eval`.
    func writeRun() throws {
        let ledger = try Ledger(path: root + "/run/ledger")
        var batch: [Rollout] = []
        let outcomes: [Outcome] = [.compileError, .runtimeError, .failedTest, .passed]
        for version in 0..<3 {
            for i in 0..<4 {
                var r = Rollout()
                r.problemID = i == 0 ? "own/<b>bold</b>" : "own/p\(i)"
                r.policyVersion = UInt64(version)
                r.purpose = "train"
                r.requestID = "train-\(version)"
                r.sampleIndex = UInt32(i)
                r.program = i == 1 ? "print('</script><script>alert(1)</script>')" : "def f():\n    return \(i)"
                r.state = .labeled
                r.verdict = Verdict.with {
                    $0.outcome = outcomes[(i + version) % 4]
                    if $0.outcome == .failedTest {
                        $0.tests = [TestResult.with { $0.index = 0; $0.status = .passed },
                                    TestResult.with { $0.index = 1; $0.status = .wrongAnswer; $0.errorType = "AssertionError"; $0.message = "expected 4" }]
                    }
                }
                r.reward = [-1, -0.6, -0.3, 1][(i + version) % 4]
                batch.append(r)
            }
        }
        batch += heldOut("before", version: 0, passing: 1) + heldOut("after", version: 2, passing: 2)
        _ = try ledger.append(batch)
        try ledger.saveEval(EvalRun.with {
            $0.id = "humaneval-plain"
            $0.model = "SmolLM2"
            $0.dataset = "humaneval"
            $0.mode = "plain"
            $0.problems = 164
            $0.programsGenerated = 1640
            $0.finishedUnixMs = 1
            $0.metrics = [EvalMetric.with { $0.name = "pass@1"; $0.group = "all"; $0.value = 0.037 },
                          EvalMetric.with { $0.name = "pass@10"; $0.group = "all"; $0.value = 0.12 }]
        })
        var lines: [String] = []
        for step in 1...3 {
            // Steps 2 and 3 carry the diagnostics a newer learner writes (snake_case); step 1
            // is a line of an older learner (camelCase, no diagnostics).
            lines.append(step == 1 ? """
                {"step":\(step),"version":\(step),"seconds":\(10 + step),"rolloutsPerSecond":0.5,"executionsPerSecond":0.6,"meanReward":\(-0.5 + 0.2 * Double(step)),"passRate":\(0.1 * Double(step)),"outcomes":[1,2,3,\(step)],"criticAccuracy":0.7,"policyLag":0.5,"stale":0,"unscored":0,"crossEntropy":0.4,"policyLoss":-0.01,"criticLoss":0.6,"criticCalibrationError":0.1}
                """ : """
                {"step":\(step),"version":\(step),"seconds":\(10 + step),"rollouts_per_second":0.5,"executions_per_second":0.6,"mean_reward":\(-0.5 + 0.2 * Double(step)),"pass_rate":\(0.1 * Double(step)),"outcomes":[1,2,3,\(step)],"critic_accuracy":0.7,"policy_lag":0.5,"stale":0,"unscored":0,"cross_entropy":0.4,"policy_loss":-0.01,"critic_loss":0.6,"critic_calibration_error":0.1,"gradient_norm":\(0.5 * Double(step)),"gradient_norm_ce":0.4,"gradient_norm_pg":0.3,"clipped":\(step == 3),"signal_share":0.25,"frontier":\(step + 4),"kl_to_start":0.002,"sampled_log_prob":-0.3,"mean_abs_return":0.2,"learning_rate":5e-05,"tokens":6000}
                """)
        }
        lines.insert("{not json", at: 1)
        try (lines.joined(separator: "\n") + "\n").write(toFile: root + "/run/learner/progress.jsonl", atomically: true, encoding: .utf8)
    }

    func testReportIsOneSelfContainedPageWithEveryPlotAndTheRollouts() throws {
        try writeRun()
        let out = root + "/report.html"
        let result = try coderl(["report", "--ledger", root + "/run/ledger", "--out", out])
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.output.contains("3 learner steps, 16 rollouts (16 listed), 1 evaluations"), result.output)
        XCTAssertTrue(result.output.contains("progress.jsonl, line 2: not a learner step report"), result.output)
        let html = try String(contentsOfFile: out, encoding: .utf8)

        // Every plot, drawn as SVG; the line charts have one point per step.
        let diagnostics = ["gradient-norm", "signal-share", "frontier", "kl", "entropy", "mean-abs-return", "learning-rate", "tokens"]
        for id in ["reward", "pass-rate", "outcomes", "losses", "critic-accuracy", "critic-calibration", "throughput", "policy-lag", "step-seconds", "evals", "heldout"] + diagnostics {
            XCTAssertTrue(html.contains("<figure class=\"chart\" id=\"\(id)\"><svg"), "plot \(id) is missing")
        }
        // Diagnostics from the steps that have them: clipping counted over those steps, and
        // the frontier drawn from its two points.
        XCTAssertTrue(html.contains("Gradient norm before clipping (clipped in 1 of 2 steps)"), "clip count")
        let frontier = try XCTUnwrap(html.components(separatedBy: "id=\"frontier\"").dropFirst().first)
        XCTAssertEqual(frontier.components(separatedBy: "<polyline points=\"").dropFirst().first?.components(separatedBy: "\"").first?.split(separator: " ").count, 2)
        // The held-out problem that passed after training and not before.
        XCTAssertTrue(html.contains("<strong>1 gained</strong>: <code>own/h1</code>; <strong>0 lost</strong>: none"), "held-out changes")
        let reward = try XCTUnwrap(html.components(separatedBy: "id=\"reward\"").dropFirst().first)
        let points = try XCTUnwrap(reward.components(separatedBy: "<polyline points=\"").dropFirst().first?.components(separatedBy: "\"").first)
        XCTAssertEqual(points.split(separator: " ").count, 3)
        XCTAssertTrue(html.contains("before (v0)") && html.contains("after (v2)"))
        XCTAssertTrue(html.contains("<td>humaneval-plain</td>") && html.contains("<td>4%</td><td>12%</td>"), "eval table")
        // The rollout table: every rollout, newest first, with its first failing test.
        XCTAssertEqual(html.components(separatedBy: "<tr data-outcome=").count - 1, 16)
        XCTAssertTrue(html.contains("test 2: wrong-answer AssertionError: expected 4"), "failing test")
        // Hostile text is escaped, and nothing is loaded from elsewhere.
        XCTAssertFalse(html.contains("<script>alert(1)"))
        XCTAssertFalse(html.contains("<b>bold</b>"))
        XCTAssertTrue(html.contains("&lt;/script&gt;&lt;script&gt;alert(1)"))
        XCTAssertNil(html.range(of: #"(src|href)\s*="#, options: .regularExpression), "external resources")
        XCTAssertNil(html.range(of: #"https?://(?!www\.w3\.org/2000/svg)"#, options: .regularExpression))

        // Headless Chromium renders it: the filter script ran, and a screenshot is taken.
        guard let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].first(where: FileManager.default.isExecutableFile) else {
            print("ReportTests: no Chromium here (Debian: apt install chromium); the page was checked as text only")
            return
        }
        let flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--user-data-dir=\(root)/chromium"]
        let dom = try runProcess(chromium, flags + ["--dump-dom", "file://" + out])
        XCTAssertTrue(dom.output.contains("<span id=\"shown\">16 shown</span>"), String(dom.output.suffix(2000)))
        XCTAssertEqual(dom.output.components(separatedBy: "<svg").count - 1, 11 + diagnostics.count)
        let png = root + "/report.png"
        let shot = try runProcess(chromium, flags + ["--window-size=1240,2400", "--screenshot=\(png)", "file://" + out])
        let bytes = try Data(contentsOf: URL(fileURLWithPath: png))
        XCTAssertEqual(Array(bytes.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], shot.output)
        XCTAssertGreaterThan(bytes.count, 50_000, "a page of plots, not a blank one")
    }

    func testReportWithoutProgressUsesTheLedgerAndRefusesAMissingExplicitFile() throws {
        try writeRun()
        try FileManager.default.removeItem(atPath: root + "/run/learner/progress.jsonl")
        let out = root + "/ledger-only.html"
        let result = try coderl(["report", "--ledger", root + "/run/ledger", "--out", out])
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.output.contains("training figures are per policy version, from the ledger"), result.output)
        let html = try String(contentsOfFile: out, encoding: .utf8)
        XCTAssertTrue(html.contains("Pass rate per policy version (from the ledger)"))
        // Versions 0, 1, 2: one point each.
        let pass = try XCTUnwrap(html.components(separatedBy: "id=\"pass-rate\"").dropFirst().first)
        let points = try XCTUnwrap(pass.components(separatedBy: "<polyline points=\"").dropFirst().first?.components(separatedBy: "\"").first)
        XCTAssertEqual(points.split(separator: " ").count, 3)

        let missing = try coderl(["report", "--ledger", root + "/run/ledger", "--progress", root + "/nope.jsonl", "--out", out])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.output.contains("nope.jsonl: no such file"), missing.output)
        let noLedger = try coderl(["report", "--ledger", root + "/absent", "--out", out])
        XCTAssertNotEqual(noLedger.status, 0)
    }

    /// With enough steps, the noisy per-step reward and pass rate get a trailing mean beside
    /// them; a pass rate that steps from 0 to 1 halfway shows the mean's lag.
    func testLongRunsGetATrailingMeanBesideThePerStepFigures() throws {
        try writeRun()
        let lines = (1...20).map { step in
            #"{"step":\#(step),"version":\#(step),"seconds":10,"rollouts_per_second":1,"executions_per_second":1,"mean_reward":0,"pass_rate":\#(step > 10 ? 1 : 0),"outcomes":[0,0,0,1],"critic_accuracy":0.5,"policy_lag":0,"stale":0,"unscored":0,"cross_entropy":0.4,"policy_loss":0,"critic_loss":0.6}"#
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: root + "/run/learner/progress.jsonl", atomically: true, encoding: .utf8)
        let out = root + "/long.html"
        XCTAssertEqual(try coderl(["report", "--ledger", root + "/run/ledger", "--out", out]).status, 0)
        let html = try String(contentsOfFile: out, encoding: .utf8)
        let pass = try XCTUnwrap(html.components(separatedBy: "id=\"pass-rate\"").dropFirst().first?.components(separatedBy: "</figure>").first)
        XCTAssertTrue(pass.contains("mean of 5 steps"), "legend of the trailing mean")
        let lines2 = pass.components(separatedBy: "<polyline points=\"").dropFirst().map { $0.components(separatedBy: "\"").first!.split(separator: " ") }
        XCTAssertEqual(lines2.count, 2)
        XCTAssertEqual(lines2.map(\.count), [20, 20])
        // y pixel of step 12: the raw rate is 1 (top), its 5-step mean 0.4 (lower on the page).
        let y = { (p: Substring) in Double(p.split(separator: ",")[1])! }
        XCTAssertLessThan(y(lines2[0][11]), y(lines2[1][11]))
        XCTAssertEqual(y(lines2[1][14]), y(lines2[0][14]), accuracy: 1e-9, "five steps after the jump the mean has caught up")
    }

    /// A second run beside the first: its held-out greedy programs (h0 passes, h1 fails after
    /// training) and progress lines that end `minutes` apart, `withTimes` false for an older learner.
    func writeSecondRun(withTimes: Bool = true) throws {
        try FileManager.default.createDirectory(atPath: root + "/other/learner", withIntermediateDirectories: true)
        let ledger = try Ledger(path: root + "/other/ledger")
        _ = try ledger.append(heldOut("before", version: 0, passing: 0) + heldOut("after", version: 4, passing: 1))
        let lines = (1...4).map { step in
            #"{"step":\#(step),"version":\#(step),"seconds":60,"rollouts_per_second":1,"executions_per_second":1,"mean_reward":0,"pass_rate":0.5,"outcomes":[0,0,1,1],"critic_accuracy":0.5,"policy_lag":0,"stale":0,"unscored":0,"cross_entropy":0.3,"policy_loss":0,"critic_loss":0.6"#
                + (withTimes ? #","finished_at":\#(1_000_000 + 120 * step)}"# : "}")
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: root + "/other/learner/progress.jsonl", atomically: true, encoding: .utf8)
    }

    /// Several ledgers: one page with the first run's sections, plus a table comparing every run's
    /// last held-out evaluation with the first's and the runs' per-step curves overlaid.
    func testSeveralRunsAreOverlaidAndComparedWithTheFirst() throws {
        try writeRun()
        try writeSecondRun()
        let out = root + "/compared.html"
        let result = try coderl(["report", "--ledger", root + "/run/ledger", "--ledger", root + "/other/ledger", "--out", out])
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.output.contains("1 other run overlaid"), result.output)
        let html = try String(contentsOfFile: out, encoding: .utf8)
        let section = try XCTUnwrap(html.components(separatedBy: "<h2>Runs compared</h2>").dropFirst().first?.components(separatedBy: "</section>").first)
        // The first run: after v2 solved both held-out problems; the other lost h1 (one discordant
        // pair: McNemar p = 1), from before 0/2 to after 1/2.
        XCTAssertTrue(section.contains("<td>before 0/2 → after 1/2</td><td>-50.0 points, 0 gained, 1 lost, McNemar p = 1 (2 problems)</td>"), section)
        XCTAssertTrue(section.contains("<td>run</td><td>3</td><td>12</td><td>25%</td><td>before 1/2 → after 2/2</td><td></td>"), section)
        // Each overlaid chart has a line per run, labelled with the run directory's name.
        let pass = try XCTUnwrap(section.components(separatedBy: "id=\"compared-pass-rate\"").dropFirst().first?.components(separatedBy: "</figure>").first)
        XCTAssertEqual(pass.components(separatedBy: "<polyline").count - 1, 2)
        XCTAssertTrue(pass.contains(">run<") && pass.contains(">other<"), "legend names both runs")
        // The gradient norm is only in the first run's progress: a line for it alone.
        let norm = try XCTUnwrap(section.components(separatedBy: "id=\"compared-gradient-norm\"").dropFirst().first?.components(separatedBy: "</figure>").first)
        XCTAssertEqual(norm.components(separatedBy: "<polyline").count - 1, 1)

        // Wall-clock minutes: the first run's progress has no end times, so the axis stays steps,
        // with a note; the other run alone can be drawn against time (its steps end 2 minutes apart).
        let timed = try coderl(["report", "--ledger", root + "/run/ledger", "--ledger", root + "/other/ledger", "--x-axis", "time", "--out", out])
        XCTAssertEqual(timed.status, 0, timed.output)
        XCTAssertTrue(timed.output.contains("--x-axis time: a progress file has steps without end times"), timed.output)
        XCTAssertTrue(try String(contentsOfFile: out, encoding: .utf8).contains(">learner step<"))
        let alone = try coderl(["report", "--ledger", root + "/other/ledger", "--x-axis", "time", "--out", out])
        XCTAssertEqual(alone.status, 0, alone.output)
        let page = try String(contentsOfFile: out, encoding: .utf8)
        XCTAssertTrue(page.contains(">minutes since the run began<"), "axis label")
        XCTAssertFalse(page.contains(">learner step<"))
        // Steps end at 2, 4, 6, 8 minutes after a start one step (60 s) before the first end: 1, 3, 5, 7.
        let ticks = try XCTUnwrap(page.components(separatedBy: "id=\"pass-rate\"").dropFirst().first?.components(separatedBy: "</figure>").first)
        XCTAssertTrue(ticks.contains(">1<") && ticks.contains(">7<"), String(ticks.prefix(3000)))

        XCTAssertNotEqual(try coderl(["report", "--out", out]).status, 0, "no ledger at all")
        XCTAssertNotEqual(try coderl(["report", "--ledger", root + "/run/ledger", "--x-axis", "hours", "--out", out]).status, 0)
    }

    /// The rollout table groups the programs of one request and problem, the greedy baseline
    /// first, whatever order the sampler's programs reached the ledger in.
    func testRolloutsAreGroupedByRequestWithTheirGreedyBaselineFirst() throws {
        let ledger = try Ledger(path: root + "/run/ledger")
        // Ledger order: r1 greedy, r1 sample 0, r2 greedy, r1 sample 1, r2 sample 0, r1 sample 2.
        let plan: [(String, String, Bool, Outcome)] = [("r1", "own/x", true, .failedTest), ("r1", "own/x", false, .passed), ("r2", "own/y", true, .passed),
                                                      ("r1", "own/x", false, .runtimeError), ("r2", "own/y", false, .passed), ("r1", "own/x", false, .passed)]
        _ = try ledger.append(plan.enumerated().map { i, p in
            var r = Rollout()
            r.requestID = p.0
            r.problemID = p.1
            r.baseline = p.2
            r.purpose = "train"
            r.program = "program_\(i) = 1"
            r.state = .labeled
            r.verdict = Verdict.with { $0.outcome = p.3 }
            return r
        })
        let out = root + "/grouped.html"
        XCTAssertEqual(try coderl(["report", "--ledger", root + "/run/ledger", "--out", out]).status, 0)
        let html = try String(contentsOfFile: out, encoding: .utf8)
        let table = try XCTUnwrap(html.components(separatedBy: "<table id=\"rollouts\">").dropFirst().first)
        XCTAssertTrue(html.contains("The newest 6 of 6 rollouts in 2 groups"))
        XCTAssertEqual(table.components(separatedBy: "<tr class=\"group\"").count - 1, 2)
        XCTAssertTrue(table.contains("request <code>r1</code>, <code>own/x</code>: 2 of 3 sampled passed; greedy failed-test"), table)
        XCTAssertTrue(table.contains("request <code>r2</code>, <code>own/y</code>: 1 of 1 sampled passed; greedy passed"))
        // The group of the newest rollout (r1's last sample) first, its greedy program first.
        let order = table.components(separatedBy: "<summary>program_").dropFirst().map { $0.prefix { $0 != " " } }
        XCTAssertEqual(order, ["0", "1", "3", "5", "2", "4"])
    }
}
