import CodeRL
import Datasets
import Evaluation
import Execution
import ExecutorService
import Foundation
import Ledger
import Llama
import ModelIO
import Pipeline
import Optim
import Schema
import Synchronization
import Tensor
import Training
import XCTest
import ZeroMQ
import Runtime

/// Programs given per problem id, in turn (sample i gets programs[i % count]). With
/// `continuing`, every call after a problem's first is a refinement whose prompt ends with a
/// seed, and the completion is the rest of the problem's first program after the seed's tokens.
final class FixedPrograms: ProgramSource {
    let format: PromptFormat
    let programs: [String: [String]]
    let continuing: Bool
    var firstPrompt: [String: Int] = [:]
    var continuations = 0
    /// Tokens handed out as completions: what the model would have generated.
    var tokensGenerated = 0

    init(format: PromptFormat, programs: [String: [String]], continuing: Bool = false) {
        self.format = format
        self.programs = programs
        self.continuing = continuing
    }

    var canContinue: Bool { continuing }

    func complete(_ problem: Problem, prompt: [Int], count: Int, seed: UInt64) throws -> [Completion] {
        let list = programs[problem.id] ?? [""]
        if continuing, let base = firstPrompt[problem.id] {
            continuations += count
            let rest = Array(format.solutionTokens(list[0]).dropFirst(prompt.count - base))
            tokensGenerated += rest.count * count
            return Array(repeating: Completion(tokens: rest, text: format.tokenizer.decode(rest)), count: count)
        }
        firstPrompt[problem.id] = prompt.count
        let completions = (0..<count).map { i in
            let text = list[i % list.count]
            return Completion(tokens: text.isEmpty ? [] : format.solutionTokens(text), text: text)
        }
        tokensGenerated += completions.reduce(0) { $0 + $1.tokens.count }
        return completions
    }
}

final class EvaluationTests: XCTestCase {
    var dir: String!

    static var sharedData: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../../shared/data").standardizedFileURL.path
    }

    override func setUpWithError() throws {
        guard DefaultModel.isPresent else {
            throw XCTSkip("SmolLM2 GGUF not found at \(DefaultModel.path) (make model): these tests need its tokenizer")
        }
        dir = NSTemporaryDirectory() + "coderl-eval-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() {
        if let dir { try? FileManager.default.removeItem(atPath: dir) }
    }

    lazy var format: PromptFormat = {
        let file = try! GGUFFile(path: DefaultModel.path)
        return PromptFormat(tokenizer: try! Tokenizer(gguf: file), template: try? ChatTemplate(gguf: file))
    }()

    func backend(slots: Int = 2) throws -> LocalExecution {
        var limits = Limits()
        limits.secondsPerTest = 5
        return LocalExecution(executor: try Executor(slots: slots, name: "eval-test"), limits: limits)
    }

    func options(samples: Int, ks: [Int], n: [Int] = [1], mode: CriticalMode = .none) -> EvalOptions {
        var o = EvalOptions()
        o.samples = samples
        o.ks = ks
        o.submissions = n
        o.mode = mode
        o.maxNewTokens = 8
        return o
    }

    /// Three small problems of our own: `square` (examples: one assert; hidden: three),
    /// `add` and `neg` (examples double as hidden tests, as in MBPP).
    func ownProblems(_ ledger: Ledger) throws -> [Problem] {
        func asserts(_ entry: String, _ lines: [String]) -> TestSuite {
            TestSuite.with { s in
                s.format = .assert
                s.entryPoint = entry
                s.cases = lines.map { line in TestCase.with { $0.code = line } }
            }
        }
        func problem(_ id: String, _ difficulty: String, _ prompt: String, _ entry: String) -> Problem {
            Problem.with {
                $0.id = id
                $0.source = "own"
                $0.split = "test"
                $0.difficulty = difficulty
                $0.prompt = prompt
                $0.entryPoint = entry
            }
        }
        let addTests = asserts("add", ["assert add(1, 2) == 3", "assert add(-1, 1) == 0"])
        let negTests = asserts("neg", ["assert neg(2) == -2"])
        try ledger.store([
            (problem("own/square", "hard", "Write square(x) returning x squared.", "square"),
             asserts("square", ["assert square(1) == 1"]),
             asserts("square", ["assert square(1) == 1", "assert square(2) == 4", "assert square(-3) == 9"])),
            (problem("own/add", "easy", "Write add(a, b) returning the sum.", "add"), addTests, addTests),
            (problem("own/neg", "easy", "Write neg(x) returning minus x.", "neg"), negTests, negTests),
        ])
        return try ledger.problems(source: "own").sorted { $0.id < $1.id }
    }

    func metric(_ run: EvalRun, _ name: String, _ group: String = "all") -> Double? {
        run.metrics.first { $0.name == name && $0.group == group }?.value
    }

    func testCanonicalHumanEvalSolutionsScoreFullMarks() throws {
        let file = Self.sharedData + "/humaneval/HumanEval.jsonl.gz"
        guard FileManager.default.fileExists(atPath: file) else {
            print("SKIPPED: \(file) not found (the shared datasets are not beside the package)")
            throw XCTSkip("\(file) not found")
        }
        let ledger = try Ledger(path: dir + "/ledger")
        let contents = try HumanEval.read(file: file)
        XCTAssertEqual(contents.problems.count, 164)
        try ledger.store(contents.problems.map { ($0.problem, $0.exampleTests, $0.hiddenTests) })
        let evaluator = try Evaluator(ledger: ledger, format: format, source: ReferencePrograms(format: format),
                                      backend: try backend(), critic: nil, options: options(samples: 1, ks: [1]))
        let (run, results) = try evaluator.run(id: "canonical", problems: try ledger.problems(source: "humaneval"),
                                               model: "references", dataset: "humaneval")
        XCTAssertEqual(results.count, 164)
        let failing = results.filter { $0.correct != 1 }.map { "\($0.problemID): \($0.samples.first?.verdict.errorMessage ?? $0.error)" }
        XCTAssertEqual(failing, [])
        XCTAssertEqual(metric(run, "pass@1"), 1)
        // The docstring examples agree with the canonical solutions too, but for HumanEval/47,
        // whose docstring is wrong (median([-10, 4, 6, 1000, 10, 20]) is 8.0, not 15.0).
        let examples = results.filter { $0.samples.first?.hasExampleVerdict == true }
        XCTAssertEqual(examples.count, 70)   // the others show no `>>>` example with a value
        XCTAssertEqual(examples.filter { $0.samples[0].exampleVerdict.outcome != .passed }.map(\.problemID), ["humaneval/47"])
    }

    func testEmptyProgramsScoreZero() throws {
        let ledger = try Ledger(path: dir + "/ledger")
        let problems = try ownProblems(ledger)
        let evaluator = try Evaluator(ledger: ledger, format: format, source: FixedPrograms(format: format, programs: [:]),
                                      backend: try backend(), critic: nil, options: options(samples: 4, ks: [1, 4], n: [1, 2]))
        let (run, results) = try evaluator.run(id: "empty", problems: problems, model: "nothing", dataset: "own")
        XCTAssertEqual(results.map(\.pool), [4, 4, 4])
        XCTAssertEqual(results.map(\.correct), [0, 0, 0])
        for m in run.metrics { XCTAssertEqual(m.value, 0, "\(m.name) \(m.group)") }
        XCTAssertEqual(Set(run.metrics.map(\.name)), ["pass@1", "pass@4", "1@4", "2@4"])
        XCTAssertEqual(run.programsGenerated, 12)
        // The empty program is judged once per suite (the verdict cache serves the rest).
        XCTAssertEqual(run.executions, 4)   // square's two suites; add's and neg's examples are their hidden tests
    }

    func testPassAndNAtKFromJudgedProgramsAndResume() throws {
        let ledger = try Ledger(path: dir + "/ledger")
        let problems = try ownProblems(ledger)
        // square: one passes only the example, one passes everything, one nothing.
        let programs = [
            "own/square": ["def square(x):\n    return x", "def square(x):\n    return x * x", "def square(x):\n    return 0"],
            "own/add": ["def add(a, b):\n    return a + b"],
            "own/neg": ["def neg(x):\n    return x"],
        ]
        let o = options(samples: 3, ks: [1, 3], n: [1])
        let evaluator = try Evaluator(ledger: ledger, format: format, source: FixedPrograms(format: format, programs: programs),
                                      backend: try backend(), critic: nil, options: o)
        let (run, results) = try evaluator.run(id: "mixed", problems: problems, model: "fixed", dataset: "own")
        let square = results.first { $0.problemID == "own/square" }!
        XCTAssertEqual(square.pool, 3)
        XCTAssertEqual(square.correct, 1)
        XCTAssertEqual(EvalMetrics.counts(square).examples, 2)
        XCTAssertEqual(EvalMetrics.counts(square).both, 1)
        // pass@1: add 1, neg 0, square 1/3; 1@3: add 1, neg 0, square 1/2 (two pass the example, one submitted).
        XCTAssertEqual(metric(run, "pass@1")!, (1 + 0 + 1.0 / 3) / 3, accuracy: 1e-9)
        XCTAssertEqual(metric(run, "pass@3")!, 2.0 / 3, accuracy: 1e-9)
        XCTAssertEqual(metric(run, "1@3")!, (1 + 0 + 0.5) / 3, accuracy: 1e-9)
        XCTAssertEqual(metric(run, "pass@1", "easy")!, 0.5, accuracy: 1e-9)
        XCTAssertEqual(metric(run, "pass@1", "hard")!, 1.0 / 3, accuracy: 1e-9)
        XCTAssertEqual(square.samples.map { $0.verdict.outcome }, [.failedTest, .passed, .failedTest])

        // Stored, and resumed without judging anything again.
        XCTAssertEqual(try ledger.evals().map(\.id), ["mixed"])
        XCTAssertEqual(try ledger.evalResults(eval: "mixed").count, 3)
        let again = try Evaluator(ledger: ledger, format: format, source: FixedPrograms(format: format, programs: [:]),
                                  backend: try backend(), critic: nil, options: o)
        let (resumed, _) = try again.run(id: "mixed", problems: problems, model: "fixed", dataset: "own")
        XCTAssertEqual(resumed.metrics, run.metrics)
        var other = o
        other.samples = 5
        let changed = try Evaluator(ledger: ledger, format: format, source: FixedPrograms(format: format, programs: [:]),
                                    backend: try backend(), critic: nil, options: other)
        XCTAssertThrowsError(try changed.run(id: "mixed", problems: problems, model: "fixed", dataset: "own")) { error in
            XCTAssertTrue("\(error)".contains("already exists"), "\(error)")
        }
    }

    func testSeedLengthFollowsTheCritic() {
        XCTAssertEqual(CriticalSampling.seedLength(passProbabilities: [0.6, 0.7, 0.9, 0.8, 0.7]), 3)   // peak at 2
        XCTAssertEqual(CriticalSampling.seedLength(passProbabilities: [0.6, 0.4, 0.9, 0.95, 0.9]), 1)  // fail outscores pass at 1
        XCTAssertEqual(CriticalSampling.seedLength(passProbabilities: [0.3, 0.9, 0.9]), 0)
        XCTAssertEqual(CriticalSampling.seedLength(passProbabilities: [0.6, 0.7, 0.8]), 2)             // never the whole program
        XCTAssertEqual(CriticalSampling.seedLength(passProbabilities: []), 0)
        // The improved variant cuts before the steepest fall, whatever the curve's level.
        XCTAssertEqual(CriticalSampling.relativeSeedLength(passProbabilities: [0.3, 0.35, 0.1, 0.12, 0.05]), 2)
        XCTAssertEqual(CriticalSampling.relativeSeedLength(passProbabilities: [0.9, 0.5, 0.45, 0.2]), 1)   // 0.4 before 0.25
        XCTAssertEqual(CriticalSampling.relativeSeedLength(passProbabilities: [0.2, 0.3, 0.4]), 2)         // never falls: all but the last
        XCTAssertEqual(CriticalSampling.relativeSeedLength(passProbabilities: [0.2]), 0)
        var verdict = Verdict()
        verdict.outcome = .runtimeError
        verdict.errorType = "ZeroDivisionError"
        verdict.errorMessage = "division by zero"
        let message = CriticalSampling.repairMessage(problem: "Write f.", program: "def f():\n    return 1/0\n", verdict: verdict)
        XCTAssertTrue(message.hasPrefix("Write f.\n\n"))
        XCTAssertTrue(message.contains("```python\ndef f():\n    return 1/0\n```"))
        XCTAssertTrue(message.contains("ZeroDivisionError: division by zero"))
    }

    func tinyCritic() throws -> CriticScorer {
        let (model, _, _) = try LlamaModel.load(gguf: dir + "/tiny.gguf", orWrite: true)
        return try CriticScorer(critic: try Critic.fromActor(model.weights, layers: 1, classes: .binary, seed: 3))
    }

    func testRefineContinuesPassingProgramsFromTheirSeeds() throws {
        let ledger = try Ledger(path: dir + "/ledger")
        let problems = try ownProblems(ledger)
        let programs = [
            "own/square": ["def square(x):\n    return x * x", "def square(x):\n    return x + 1"],  // the first passes
            "own/add": ["def add(a, b):\n    return a + b"],
            "own/neg": ["def neg(x):\n    return x"],
        ]
        let source = FixedPrograms(format: format, programs: programs, continuing: true)
        let evaluator = try Evaluator(ledger: ledger, format: format, source: source, backend: try backend(),
                                      critic: try tinyCritic(), options: options(samples: 4, ks: [1], mode: .refine))
        var stages: [String] = []
        evaluator.onProgress = { p in if let stage = p.stage { stages.append(stage) } }
        let (run, results) = try evaluator.run(id: "refine", problems: problems, model: "fixed", dataset: "own")
        // Progress within a problem: each stage is reported as it starts.
        let squareStages = stages.filter { $0.hasPrefix("own/square: ") }.map { String($0.dropFirst(12)) }
        XCTAssertEqual(squareStages.first, "sampling 4")
        XCTAssertEqual(squareStages.dropFirst().first, "running 4 on the example tests")
        XCTAssertEqual(squareStages.dropFirst(2).first, "the critic reads 2 passing programs")
        XCTAssertEqual(squareStages.filter { $0.hasPrefix("refining: 2 from a seed of ") }.count, 2, "\(squareStages)")
        XCTAssertEqual(squareStages.last, "judging 4 on the hidden tests")
        let square = results.first { $0.problemID == "own/square" }!
        // 4 samples, 2 pass the example: each seeds 4/2 = 2 continuations, which form the pool.
        XCTAssertEqual(square.samples.filter { $0.stage == "sample" }.count, 4)
        let refined = square.samples.filter { $0.stage == "refine" }
        XCTAssertEqual(refined.count, 4)
        XCTAssertEqual(Set(refined.map(\.parent)), [0, 2])
        XCTAssertTrue(refined.allSatisfy { $0.inPool && $0.verdict.outcome == .passed })
        XCTAssertTrue(square.samples.filter { $0.stage == "sample" }.allSatisfy { !$0.inPool })
        XCTAssertTrue(square.samples.filter { $0.stage == "sample" && $0.exampleVerdict.outcome == .passed }.allSatisfy(\.scoredByCritic))
        XCTAssertEqual(square.generated, 8)
        // add: all 4 pass, one continuation each; neg: nothing passes and refine only keeps the samples.
        XCTAssertEqual(results.first { $0.problemID == "own/add" }!.samples.filter { $0.stage == "refine" }.count, 4)
        let neg = results.first { $0.problemID == "own/neg" }!
        XCTAssertEqual(neg.generated, 4)
        XCTAssertTrue(neg.samples.allSatisfy(\.inPool))
        XCTAssertEqual(source.continuations, 8)
        // The budget in tokens counts what was generated: a refinement's seed is its parent's.
        XCTAssertEqual(results.flatMap(\.samples).reduce(0) { $0 + Int($1.tokens) }, source.tokensGenerated)
        XCTAssertTrue(refined.contains { Int($0.tokens) < $0.programTokens.count }, "some seed is not empty")
        XCTAssertTrue(refined.allSatisfy { Int($0.tokens) <= $0.programTokens.count })
        XCTAssertEqual(metric(run, "pass@1")!, 2.0 / 3, accuracy: 1e-9)
        XCTAssertEqual(run.programsGenerated, 20)
    }

    /// The improved variant keeps the programs that passed the example tests in the pool,
    /// beside their refinements; the paper's pool is the refinements alone.
    func testImprovedRefineKeepsTheProgramsThatPassedTheExamples() throws {
        let ledger = try Ledger(path: dir + "/ledger")
        let problems = Array(try ownProblems(ledger).filter { $0.id == "own/square" })
        let programs = ["own/square": ["def square(x):\n    return x * x", "def square(x):\n    return x + 1"]]
        var o = options(samples: 4, ks: [1], mode: .refine)
        o.variant = .improved
        let source = FixedPrograms(format: format, programs: programs, continuing: true)
        let evaluator = try Evaluator(ledger: ledger, format: format, source: source, backend: try backend(), critic: try tinyCritic(), options: o)
        let (_, results) = try evaluator.run(id: "refine-improved", problems: problems, model: "fixed", dataset: "own")
        let samples = results[0].samples
        let pooled = samples.filter(\.inPool)
        XCTAssertEqual(pooled.filter { $0.stage == "sample" }.map(\.index), [0, 2], "the two samples that passed the example")
        XCTAssertEqual(pooled.filter { $0.stage == "refine" }.count, 4)
        XCTAssertEqual(results[0].pool, 6)
        XCTAssertNotEqual(try Evaluator(ledger: ledger, format: format, source: source, backend: try backend(), critic: try tinyCritic(),
                                        options: options(samples: 4, ks: [1], mode: .refine)).run(id: "refine-paper", problems: problems, model: "fixed", dataset: "own").1[0].pool, 6)
    }

    func testRepairSamplesFixesOfTheCriticsBestFailuresOnTheTinyModel() throws {
        let ledger = try Ledger(path: dir + "/ledger")
        let problems = Array(try ownProblems(ledger).prefix(1))   // own/add
        let (model, tokenizer, _) = try LlamaModel.load(gguf: dir + "/tiny.gguf", orWrite: true)
        let source = ModelPrograms(generator: Generator(model: model, tokenizer: tokenizer),
                                   parameters: SamplingParameters(temperature: 1, maxNewTokens: 6))
        var o = options(samples: 4, ks: [1], mode: .repair)
        o.budget = CriticalBudget(repairCandidates: 2, rounds: 2)
        let evaluator = try Evaluator(ledger: ledger, format: format, source: source, backend: try backend(),
                                      critic: try tinyCritic(), options: o)
        let (run, results) = try evaluator.run(id: "repair", problems: problems, model: "tiny", dataset: "own")
        let samples = results[0].samples
        // Random weights write nonsense: nothing passes, so two rounds of repair run, each
        // sampling 4/2 = 2 fixes of the 2 failures the critic rates best.
        XCTAssertEqual(samples.filter { $0.stage == "sample" }.count, 4)
        XCTAssertEqual(samples.filter { $0.stage == "repair" && $0.round == 1 }.count, 4)
        XCTAssertEqual(samples.filter { $0.stage == "repair" && $0.round == 2 }.count, 4)
        XCTAssertTrue(samples.filter { $0.stage == "sample" }.allSatisfy(\.scoredByCritic))
        let firstRound = samples.filter { $0.stage == "sample" }
        let best = firstRound.sorted { $0.criticPass > $1.criticPass }.prefix(2).map { Int32($0.index) }
        XCTAssertEqual(Set(samples.filter { $0.round == 1 }.map(\.parent)), Set(best))
        XCTAssertTrue(samples.filter { $0.round == 2 }.allSatisfy { $0.parent >= 4 && $0.parent < 8 })
        // The pool is the last round's fixes, judged on the hidden tests.
        XCTAssertEqual(samples.filter(\.inPool).map(\.round), [2, 2, 2, 2])
        XCTAssertTrue(samples.filter(\.inPool).allSatisfy(\.hasVerdict))
        XCTAssertEqual(run.programsGenerated, 12)
        XCTAssertEqual(metric(run, "pass@1"), 0)
    }

    /// `train-critic --rollouts`: a run's judged training rollouts become examples with the
    /// prompts the pipeline used; held-out evaluation programs and unjudged ones do not.
    func testCriticExamplesFromARunsRollouts() throws {
        let ledger = try Ledger(path: dir + "/run-ledger")
        func rollout(_ problem: String, _ outcome: Outcome, purpose: String = "train", state: RolloutState = .labeled) -> Rollout {
            Rollout.with {
                $0.problemID = problem
                $0.requestID = purpose == "eval" ? "eval-after-v3-0" : "train-\(problem)"
                $0.purpose = purpose
                $0.promptTokens = [1, 2, 3]
                $0.programTokens = [7, 8]
                $0.logprobs = [-0.1, -0.2]
                $0.state = state
                $0.verdict.outcome = outcome
            }
        }
        _ = try ledger.append([rollout("p/1", .passed), rollout("p/1", .failedTest), rollout("p/2", .compileError),
                               rollout("p/3", .passed, purpose: "eval"), rollout("p/4", .unspecified, state: .generated)])
        let binary = try CriticTraining.examples(runLedger: ledger, classes: .binary)
        XCTAssertEqual(binary.map(\.problemID), ["p/1", "p/1", "p/2"], "held-out and unjudged programs are left out")
        XCTAssertEqual(binary.map(\.label), [1, 0, 0])
        XCTAssertTrue(binary.allSatisfy { $0.prompt == [1, 2, 3] && $0.program == [7, 8] })
        let outcomes = try CriticTraining.examples(runLedger: ledger, classes: .outcomes)
        XCTAssertEqual(outcomes.map(\.label), [Rewards.criticClass(.passed, binary: false)!, Rewards.criticClass(.failedTest, binary: false)!,
                                                Rewards.criticClass(.compileError, binary: false)!])
    }

    /// Repeats of a program for the same problem collapse to the first; the same program for
    /// another problem stays; repeats judged differently are counted.
    func testCriticExamplesKeepOneOfEachDistinctProgram() {
        func e(_ problem: String, _ program: [Int], _ label: Int) -> CriticExample {
            CriticExample(problemID: problem, prompt: [1], program: program, label: label)
        }
        let (unique, conflicts) = CriticTraining.distinct([e("p/1", [5, 6], 1), e("p/1", [5, 6], 1), e("p/2", [5, 6], 0),
                                                           e("p/1", [5], 0), e("p/1", [5, 6], 0)])
        XCTAssertEqual(unique.map(\.problemID), ["p/1", "p/2", "p/1"])
        XCTAssertEqual(unique.map(\.program), [[5, 6], [5, 6], [5]])
        XCTAssertEqual(unique.map(\.label), [1, 0, 0], "the first judgement of a repeated program is kept")
        XCTAssertEqual(conflicts, 1)
    }

    /// Calibration of p(pass): a critic that says 0.8 where 4 of 5 pass and 0.2 where 1 of 5
    /// pass is calibrated (error 0); one that says 0.9 and 0.1 there is off by 0.1 in each bin.
    func testCriticCalibrationFigures() {
        var q = CriticTraining.Quality()
        let passed = [true, true, true, true, false, true, false, false, false, false]
        q.calibrate(predicted: [Double](repeating: 0.8, count: 5) + [Double](repeating: 0.2, count: 5), passed: passed)
        XCTAssertEqual(q.calibrationError, 0, accuracy: 1e-12)
        XCTAssertEqual(q.meanPredictedPass, 0.5, accuracy: 1e-12)
        XCTAssertEqual(q.passRate, 0.5, accuracy: 1e-12)
        XCTAssertEqual(q.brier, 0.16, accuracy: 1e-12)   // (4 * 0.04 + 0.64) / 5 in each half
        q.calibrate(predicted: [Double](repeating: 0.9, count: 5) + [Double](repeating: 0.1, count: 5), passed: passed)
        XCTAssertEqual(q.calibrationError, 0.1, accuracy: 1e-12)
        XCTAssertEqual(q.brier, (4 * 0.01 + 0.81) / 5, accuracy: 1e-12)
        XCTAssertEqual(q.passAUC, 0.8, accuracy: 1e-12, "of 25 (pass, fail) pairs: 16 right, 8 tied (half each), 1 wrong")
        q.calibrate(predicted: [0.9, 0.8, 0.3, 0.1], passed: [true, false, true, false])
        XCTAssertEqual(q.passAUC, 0.75, accuracy: 1e-12, "3 of the 4 (pass, fail) pairs ranked right")
        q.calibrate(predicted: [1, 1], passed: [false, false])
        XCTAssertEqual(q.calibrationError, 1, accuracy: 1e-12, "p = 1 falls in the top bin, not past it")
        XCTAssertEqual(q.passAUC, 0.5, "no passing program: no ranking to judge")
    }

    func testCriticTrainsOnJudgedProgramsOfAnEvaluation() throws {
        let ledger = try Ledger(path: dir + "/ledger")
        let problems = try ownProblems(ledger)
        let programs = [
            "own/square": ["def square(x):\n    return x * x", "def square(x):\n    return 0"],
            "own/add": ["def add(a, b):\n    return a + b", "def add(a, b):\n    return 0"],
            "own/neg": ["def neg(x):\n    return -x", "def neg(x):\n    return 0"],
        ]
        let evaluator = try Evaluator(ledger: ledger, format: format, source: FixedPrograms(format: format, programs: programs),
                                      backend: try backend(), critic: nil, options: options(samples: 4, ks: [1]))
        _ = try evaluator.run(id: "train", problems: problems, model: "fixed", dataset: "own")
        let examples = try CriticTraining.examples(ledger: ledger, evals: ["train"], format: format, classes: .binary)
        XCTAssertEqual(examples.count, 12)
        XCTAssertEqual(examples.filter { $0.label == 1 }.count, 6)   // the first program of each problem passes
        XCTAssertEqual(examples.first { $0.problemID == "own/add" }?.prompt, format.promptTokens(problems[0], exampleTests: try ledger.testSuite(hash: [UInt8](problems[0].exampleTests))))
        XCTAssertEqual(CriticTraining.balancedWeights(examples, classes: .binary), [1, 1])
        XCTAssertThrowsError(try CriticTraining.examples(ledger: ledger, evals: ["nope"], format: format, classes: .binary))

        let (model, _, _) = try LlamaModel.load(gguf: dir + "/tiny.gguf", orWrite: true)
        let critic = try Critic.fromActor(model.weights, layers: 1, classes: .binary, seed: 5)
        let session = try CriticSession(critic: critic, state: TrainingState(
            kind: .critic, trainedLayers: 1, adamw: AdamWSettings(), schedule: LearningRateSchedule(peak: 3e-3),
            clipNorm: 1, rng: Xoshiro256(seed: 1), criticClasses: .binary))
        var rng = Xoshiro256(seed: 2)
        var losses: [Float] = []
        for _ in 0..<12 {
            losses.append(try CriticTraining.epoch(session, examples, batchSize: 4, microBatch: 2, rng: &rng))
        }
        XCTAssertLessThan(losses.last!, losses.first! * 0.5, "\(losses)")
        let quality = try CriticTraining.quality(session.trainer, examples)
        XCTAssertEqual(quality.examples, 12)
        XCTAssertGreaterThanOrEqual(quality.accuracy, 0.9, "\(quality) after \(losses)")
        // Held out by problem: all of a problem's programs on one side.
        let (train, held) = CriticTraining.split(examples, heldOut: 0.5)
        XCTAssertEqual(train.count + held.count, 12)
        XCTAssertTrue(Set(train.map(\.problemID)).isDisjoint(with: held.map(\.problemID)))
    }

    /// The same evaluation with programs judged by an executor process's worker connected over
    /// ZeroMQ (the dispatcher of the pipeline), which joins only after the jobs are queued.
    func testRemoteExecutorsJudgeLikeLocalSlots() throws {
        let ledger = try Ledger(path: dir + "/ledger")
        let problems = try ownProblems(ledger)
        let programs = [
            "own/square": ["def square(x):\n    return x", "def square(x):\n    return x * x", "while True: pass"],
            "own/add": ["def add(a, b):\n    return a + b"],
            "own/neg": ["def neg(x):\n    return 1/0"],
        ]
        let endpoint = "ipc://\(dir!)/executors"
        var limits = Limits()
        limits.secondsPerTest = 1
        let remote = try RemoteExecution(endpoint: endpoint, limits: limits, heartbeatTimeoutMs: 3000, log: Log(role: "eval", instance: "t"))
        var settings = ExecutorWorker.Settings(endpoint: endpoint, name: "executor-t")
        settings.heartbeatInterval = .milliseconds(200)
        let worker = try ExecutorWorker(settings: settings, executor: try Executor(slots: 2, name: "remote"), log: { _ in })
        let box = UncheckedBox(worker)
        let thread = Thread {
            Thread.sleep(forTimeInterval: 0.5)
            try? box.value.run()
        }
        thread.start()
        defer {
            worker.stop()
            while thread.isExecuting { Thread.sleep(forTimeInterval: 0.01) }
        }
        let o = options(samples: 3, ks: [1, 3])
        let evaluator = try Evaluator(ledger: ledger, format: format, source: FixedPrograms(format: format, programs: programs),
                                      backend: remote, critic: nil, options: o)
        let (run, results) = try evaluator.run(id: "remote", problems: problems, model: "fixed", dataset: "own")
        XCTAssertEqual(results.map(\.correct), [3, 0, 1])   // add, neg, square
        XCTAssertEqual(results[2].samples.map { $0.verdict.outcome }, [.failedTest, .passed, .runtimeError])
        XCTAssertEqual(results[1].samples[0].verdict.errorType, "ZeroDivisionError")
        XCTAssertTrue(results[2].samples[1].verdict.executor.contains("remote"), results[2].samples[1].verdict.executor)
        XCTAssertEqual(metric(run, "pass@1")!, (1 + 0 + 1.0 / 3) / 3, accuracy: 1e-9)
    }

    /// A remote executor whose CURVE key is not yet on the dispatcher's allow-list is refused,
    /// keeps trying on a new connection (libzmq never retries a refused handshake), and joins
    /// once the key is added to the watched allow-list file; then it judges programs.
    func testARefusedExecutorJoinsOnceItsKeyIsAllowed() throws {
        let ledger = try Ledger(path: dir + "/ledger")
        let problems = try ownProblems(ledger)
        let endpoint = "ipc://\(dir!)/executors", allowFile = dir + "/allowed"
        let serverKeys = try CurveKeyPair.generate(), workerKeys = try CurveKeyPair.generate(), other = try CurveKeyPair.generate()
        try "\(other.publicKey)\n".write(toFile: allowFile, atomically: true, encoding: .utf8)
        let serverLines = Mutex<[String]>([]), workerLines = Mutex<[String]>([])
        let remote = try RemoteExecution(endpoint: endpoint, limits: Limits(), curveKeys: serverKeys, allowListFile: allowFile,
                                         heartbeatTimeoutMs: 3000, log: Log(role: "eval", instance: "t", sink: { line in serverLines.withLock { $0.append(line) } }))
        var settings = ExecutorWorker.Settings(endpoint: endpoint, name: "executor-k")
        settings.heartbeatInterval = .milliseconds(200)
        settings.serverKey = serverKeys.publicKey
        settings.keys = workerKeys
        let worker = try ExecutorWorker(settings: settings, executor: try Executor(slots: 1, name: "remote-k")) { line in
            workerLines.withLock { $0.append(line) }
        }
        let box = UncheckedBox(worker)
        let thread = Thread { try? box.value.run() }
        thread.start()
        defer {
            worker.stop()
            while thread.isExecuting { Thread.sleep(forTimeInterval: 0.01) }
        }
        func waitFor(_ lines: borrowing Mutex<[String]>, _ text: String) -> Bool {
            for _ in 0..<300 {
                if lines.withLock({ $0.contains { $0.contains(text) } }) { return true }
                Thread.sleep(forTimeInterval: 0.05)
            }
            return false
        }
        XCTAssertTrue(waitFor(workerLines, "refused this executor"), "\(workerLines.withLock { $0 })")
        XCTAssertTrue(waitFor(serverLines, "is not on the allow-list"), "\(serverLines.withLock { $0 })")
        XCTAssertTrue(workerLines.withLock { $0 }.contains { $0.contains(workerKeys.publicKey) }, "the refusal names the key to add")

        try "\(other.publicKey)\n\(workerKeys.publicKey)  # executor-k\n".write(toFile: allowFile, atomically: true, encoding: .utf8)
        guard waitFor(workerLines, "the dispatcher accepted this executor") else {
            return XCTFail("the executor never joined: \(workerLines.withLock { $0 })")
        }
        let programs = ["own/square": ["def square(x):\n    return x * x"], "own/add": ["def add(a, b):\n    return a - b"],
                        "own/neg": ["def neg(x):\n    return -x"]]
        let evaluator = try Evaluator(ledger: ledger, format: format, source: FixedPrograms(format: format, programs: programs),
                                      backend: remote, critic: nil, options: options(samples: 1, ks: [1]))
        let (_, results) = try evaluator.run(id: "keys", problems: problems, model: "fixed", dataset: "own")
        XCTAssertEqual(results.map(\.correct), [0, 1, 1])   // add, neg, square
        XCTAssertTrue(results[2].samples[0].verdict.executor.contains("remote-k"), results[2].samples[0].verdict.executor)
    }

    /// Generation on sampler processes' services (the pipeline's `SamplerService`): a
    /// problem's samples are split into chunks, spread over the samplers, and come back equal
    /// to what the model samples in this process from the chunks' seeds. A sampler that takes
    /// a request and falls silent does not stall the evaluation: its chunk goes to another.
    func testSamplerProcessesGenerateWhatTheModelWouldInProcess() throws {
        let ledger = try Ledger(path: dir + "/ledger")
        let problems = try ownProblems(ledger)
        let (model, tokenizer, _) = try LlamaModel.load(gguf: dir + "/tiny.gguf", orWrite: true)
        let parameters = SamplingParameters(temperature: 1, maxNewTokens: 6)
        var settings = RemotePrograms.Settings(endpoint: "ipc://\(dir!)/samples", paramsEndpoint: "ipc://\(dir!)/params",
                                               model: dir + "/tiny.gguf", tokenizer: dir + "/tiny.gguf")
        settings.chunk = 2
        settings.heartbeatTimeoutMs = 1500
        let remote = try RemotePrograms(settings: settings, parameters: parameters, log: Log(role: "eval", instance: "t"))

        // A "sampler" that asks for work, takes the first request and is never heard from again.
        let context = try Context()
        defer { context.shutdown() }
        let silent = try Socket(context, .dealer)
        try silent.setLinger(.zero)
        try silent.setRoutingID(Array("silent".utf8))
        try silent.connect(settings.endpoint)
        var sender = Sender(name: "silent")
        try sender.send(silent, .workRequest(WorkRequest.with { $0.worker = "silent"; $0.capacity = 1 }))
        defer { withExtendedLifetime(silent) {} }

        var services: [SamplerService] = []
        var threads: [Thread] = []
        for i in 0..<2 {
            var samplerSettings = SamplerService.Settings(name: "sampler-\(i)", learnerEndpoint: settings.endpoint,
                                                          labelerEndpoint: "ipc://\(dir!)/no-labeler", paramsEndpoint: settings.paramsEndpoint,
                                                          cacheDirectory: dir + "/cache-\(i)")
            // Two requests per batch: batches hold several requests.
            samplerSettings.batchRequests = 2
            let service = SamplerService(settings: samplerSettings, log: Log(role: "sampler", instance: "\(i)"))
            let box = UncheckedBox(service)
            // The real samplers join after the silent one holds a request.
            let thread = Thread { Thread.sleep(forTimeInterval: 0.5); try? box.value.run() }
            thread.start()
            services.append(service)
            threads.append(thread)
        }
        defer {
            for s in services { s.stop() }
            while threads.contains(where: \.isExecuting) { Thread.sleep(forTimeInterval: 0.01) }
        }

        let prompt = format.promptTokens(userMessage: "Write add(a, b).")
        let completions = try remote.complete(problems[0], prompt: prompt, count: 5, seed: 7)
        let generator = Generator(model: model, tokenizer: tokenizer)
        var expected: [[Int]] = []
        for (j, size) in [2, 2, 1].enumerated() {
            var p = parameters
            p.seed = RemotePrograms.chunkSeed(7, j)
            p.stopStrings = [PromptFormat.closingFence]
            expected += try generator.generate(prompt: prompt, samples: size, parameters: p).0.map(\.tokens)
        }
        XCTAssertEqual(completions.map(\.tokens), expected)
        XCTAssertEqual(completions.map(\.text), expected.map { tokenizer.decode($0) }.map { text in
            text.range(of: PromptFormat.closingFence).map { String(text[..<$0.lowerBound]) } ?? text })

        // A whole evaluation on them: every program judged, same count as asked.
        let evaluator = try Evaluator(ledger: ledger, format: format, source: remote, backend: try backend(),
                                      critic: nil, options: options(samples: 3, ks: [1]))
        let (run, results) = try evaluator.run(id: "samplers", problems: problems, model: "tiny", dataset: "own")
        XCTAssertEqual(results.map { $0.samples.count }, [3, 3, 3])
        XCTAssertTrue(results.allSatisfy { $0.samples.allSatisfy(\.hasVerdict) })
        XCTAssertEqual(run.programsGenerated, 9)
        // 3 chunks, then 2 per problem; a sampler counts a request done when its batch is acknowledged.
        let deadline = Date().addingTimeInterval(10)
        while services.map(\.requestsDone).reduce(0, +) < 9 && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        // (Which sampler took which request depends on scheduling: only the total is asserted.)
        XCTAssertEqual(services.map(\.requestsDone).reduce(0, +), 9)
    }

    func testCriticalSamplingRefusesWithoutACritic() throws {
        let ledger = try Ledger(path: dir + "/ledger")
        XCTAssertThrowsError(try Evaluator(ledger: ledger, format: format, source: FixedPrograms(format: format, programs: [:], continuing: true),
                                           backend: try backend(), critic: nil, options: options(samples: 2, ks: [1], mode: .refine))) {
            XCTAssertTrue("\($0)".contains("needs a critic"), "\($0)")
        }
        XCTAssertThrowsError(try Evaluator(ledger: ledger, format: format, source: ReferencePrograms(format: format),
                                           backend: try backend(), critic: try tinyCritic(), options: options(samples: 2, ks: [1], mode: .refine))) {
            XCTAssertTrue("\($0)".contains("continue"), "\($0)")
        }
    }
}

extension LlamaModel {
    /// The tiny test model at `path`, written first when `orWrite` and it is missing.
    static func load(gguf path: String, orWrite: Bool) throws -> (LlamaModel, Tokenizer, ChatTemplate?) {
        if orWrite && !FileManager.default.fileExists(atPath: path) { _ = try writeTinyModel(to: path) }
        return try LlamaModel.load(gguf: path)
    }
}
