import CodeRL
import Execution
import Foundation
import Ledger
import Llama
import ModelIO
import Schema

/// What an evaluation samples and reports.
public struct EvalOptions: Sendable, Codable, Equatable {
    /// N: programs sampled per problem (critical sampling: per stage).
    public var samples = 10
    /// The k of pass@k and n@k.
    public var ks: [Int] = [1, 10]
    /// The n of n@k (submissions).
    public var submissions: [Int] = [1]
    public var temperature: Float = 0.8
    public var topP: Float = 0.95
    public var topK = 0
    public var maxNewTokens = 384
    public var seed: UInt64 = 0
    public var mode: CriticalMode = .none
    /// The refinement's variant (nil: the paper's, as in evaluations stored before there was
    /// a choice).
    public var variant: CriticalVariant? = nil
    public var budget = CriticalBudget()

    public init() {}

    public var sampling: SamplingParameters {
        SamplingParameters(temperature: temperature, topK: topK, topP: topP, seed: seed, maxNewTokens: maxNewTokens,
                           stopStrings: [PromptFormat.closingFence])
    }

    public func validate() throws {
        guard samples >= 1 else { throw EvalError("--samples must be at least 1, got \(samples)") }
        guard !ks.isEmpty, ks.allSatisfy({ $0 >= 1 }) else { throw EvalError("--k needs numbers of at least 1, got \(ks)") }
        guard submissions.allSatisfy({ $0 >= 1 }) else { throw EvalError("--n needs numbers of at least 1, got \(submissions)") }
        guard budget.repairCandidates >= 1, budget.rounds >= 1 else {
            throw EvalError("--repair-candidates and --rounds must be at least 1, got \(budget.repairCandidates) and \(budget.rounds)")
        }
        guard maxNewTokens >= 1 else { throw EvalError("--max-new-tokens must be at least 1, got \(maxNewTokens)") }
        try sampling.validate()
    }
}

public struct EvalProgress: Sendable {
    public var problemsDone: Int
    public var problemsTotal: Int
    public var programs: Int
    public var executions: Int
    /// Problems judged in this process (not taken from an earlier, resumed run).
    public var problemsThisRun: Int
    public var seconds: Double
    /// What is happening within the problem being evaluated ("mbpp/test/11: sampling 10"), or
    /// nil when a problem has just finished.
    public var stage: String? = nil
}

/// Runs an evaluation: samples programs for every problem, judges them on the example and the
/// hidden tests, stores a result per problem in the ledger as it goes (so an interrupted run
/// resumes where it stopped), and computes pass@k and n@k.
public final class Evaluator {
    public let ledger: Ledger
    public let format: PromptFormat
    public let source: ProgramSource
    public let backend: ExecutionBackend
    public let critic: CriticScorer?
    public let options: EvalOptions
    public var onProgress: ((EvalProgress) -> Void)?
    private(set) var executions = 0
    /// The last progress reported: a stage within a problem repeats its counts.
    private var lastProgress = EvalProgress(problemsDone: 0, problemsTotal: 0, programs: 0, executions: 0, problemsThisRun: 0, seconds: 0)
    private var started = Date()
    private var currentProblem = ""

    /// Reports what is happening within the current problem.
    func reportStage(_ text: String) {
        guard let onProgress else { return }
        var p = lastProgress
        p.executions = executions
        p.seconds = Date().timeIntervalSince(started)
        p.stage = "\(currentProblem): \(text)"
        onProgress(p)
    }

    public init(ledger: Ledger, format: PromptFormat, source: ProgramSource, backend: ExecutionBackend,
                critic: CriticScorer?, options: EvalOptions) throws {
        try options.validate()
        if options.mode != .none {
            guard let critic else { throw EvalError("critical sampling (\(options.mode.rawValue)) needs a critic: give --critic") }
            guard source.canContinue else { throw EvalError("critical sampling needs a model to continue programs from a seed") }
            guard critic.vocabularySize == format.tokenizer.vocabularySize else {
                throw EvalError("the critic's vocabulary has \(critic.vocabularySize) tokens, the model's tokenizer \(format.tokenizer.vocabularySize): they do not belong together")
            }
        }
        self.ledger = ledger
        self.format = format
        self.source = source
        self.backend = backend
        self.critic = critic
        self.options = options
    }

    public var settingsJSON: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: (try? encoder.encode(options)) ?? Data(), as: UTF8.self)
    }

    /// Evaluates `problems` under evaluation `id`. An evaluation with this id already in the
    /// ledger is resumed (its finished problems are kept) when it has the same settings.
    public func run(id: String, problems: [Problem], model: String, dataset: String, criticName: String = "") throws -> (EvalRun, [EvalProblemResult]) {
        var run: EvalRun
        var done: [String: EvalProblemResult] = [:]
        if let existing = try ledger.eval(id: id) {
            guard existing.settings == settingsJSON, existing.model == model, existing.dataset == dataset, existing.critic == criticName else {
                throw EvalError("evaluation '\(id)' already exists in \(ledger.path) with another model, dataset, critic or settings; choose another --id")
            }
            run = existing
            for r in try ledger.evalResults(eval: id) { done[r.problemID] = r }
        } else {
            run = EvalRun()
            run.id = id
            run.createdUnixMs = Self.nowMs()
            run.model = model
            run.dataset = dataset
            run.mode = options.mode.rawValue
            run.critic = criticName
            run.settings = settingsJSON
        }
        run.finishedUnixMs = 0
        try ledger.saveEval(run)

        var results: [EvalProblemResult] = []
        var programs = 0, thisRun = 0
        started = Date()
        executions = 0
        lastProgress = EvalProgress(problemsDone: 0, problemsTotal: problems.count, programs: 0, executions: 0, problemsThisRun: 0, seconds: 0)
        for (i, problem) in problems.enumerated() {
            if let earlier = done[problem.id] {
                results.append(earlier)
                programs += Int(earlier.generated)
            } else {
                let t0 = Date()
                currentProblem = problem.id
                var result = try evaluate(problem)
                result.evalID = id
                result.secondsMs = UInt64(Date().timeIntervalSince(t0) * 1000)
                try ledger.saveEvalResult(result)
                results.append(result)
                programs += Int(result.generated)
                thisRun += 1
            }
            lastProgress = EvalProgress(problemsDone: i + 1, problemsTotal: problems.count, programs: programs,
                                        executions: executions, problemsThisRun: thisRun, seconds: Date().timeIntervalSince(started))
            onProgress?(lastProgress)
        }
        run.metrics = EvalMetrics.compute(results, ks: options.ks, submissions: options.submissions)
        run.problems = UInt32(results.count)
        run.programsGenerated = UInt64(programs)
        run.executions += UInt64(executions)
        run.finishedUnixMs = Self.nowMs()
        try ledger.saveEval(run)
        return (run, results)
    }

    static func nowMs() -> UInt64 { UInt64(Date().timeIntervalSince1970 * 1000) }

    // MARK: One problem

    /// A program and what is known about it.
    struct Candidate {
        var stage: String
        var parent = -1
        var round = 0
        /// The prompt it was generated from (the problem's, or a repair prompt).
        var generationPrompt: [Int]
        var tokens: [Int]
        /// Of `tokens`, the leading ones copied from the parent (a refinement's seed), not generated.
        var seedLength = 0
        var program: String
        var example: ExecutionReport?
        var hidden: ExecutionReport?
        var criticPass: Float?
        var inPool = false

        var passesExamples: Bool { example?.verdict?.outcome == .passed }
    }

    /// A failure of generation for one problem (prompt too long, ...): recorded, not fatal.
    struct ProblemFailure: Error { let reason: String }

    func evaluate(_ problem: Problem) throws -> EvalProblemResult {
        var result = EvalProblemResult()
        result.problemID = problem.id
        result.difficulty = problem.difficulty
        guard let hidden = try ledger.testSuite(hash: [UInt8](problem.hiddenTests)) else {
            result.error = "the problem has no hidden tests"
            return result
        }
        let examples = try ledger.testSuite(hash: [UInt8](problem.exampleTests))
        var candidates: [Candidate] = []
        do {
            candidates = try sampleAndSelect(problem, examples: examples)
        } catch let failure as ProblemFailure {
            result.error = failure.reason
        }
        // The pool is judged on the hidden tests.
        let pool = candidates.indices.filter { candidates[$0].inPool }
        reportStage("judging \(pool.count) on the hidden tests")
        let reports = judge(pool.map { candidates[$0].program }, suite: hidden, problemID: problem.id)
        for (i, report) in zip(pool, reports) { candidates[i].hidden = report }

        for (index, c) in candidates.enumerated() {
            var s = EvalSample()
            s.index = UInt32(index)
            s.stage = c.stage
            s.parent = Int32(c.parent)
            s.round = UInt32(c.round)
            s.program = c.program
            s.programTokens = c.tokens.map { UInt32($0) }
            s.tokens = UInt32(c.tokens.count - c.seedLength)
            if let v = c.example?.verdict { s.exampleVerdict = v }
            if let v = c.hidden?.verdict { s.verdict = v }
            for case .infrastructureError(let reason)? in [c.example, c.hidden] { s.infrastructureError = reason }
            if let p = c.criticPass {
                s.criticPass = p
                s.scoredByCritic = true
            }
            s.inPool = c.inPool
            result.samples.append(s)
        }
        let judged = result.samples.filter { $0.inPool && $0.hasVerdict }
        result.pool = UInt32(judged.count)
        result.correct = UInt32(judged.filter { $0.verdict.outcome == .passed }.count)
        result.generated = UInt32(candidates.count)
        return result
    }

    /// Samples the problem's programs (and refines or repairs them), judges them on the example
    /// tests, and marks the pool: the programs pass@k and n@k are computed over.
    func sampleAndSelect(_ problem: Problem, examples: TestSuite?) throws -> [Candidate] {
        let prompt = format.promptTokens(problem, exampleTests: examples)
        let N = options.samples
        var all = try generate(problem, prompt: prompt, count: N, stage: "sample", round: 0)
        judgeExamples(&all, examples, problem)
        guard options.mode != .none, let critic, examples != nil else {
            for i in all.indices { all[i].inPool = true }
            return all
        }
        var passing = all.indices.filter { all[$0].passesExamples }
        var lastStage = Array(all.indices)
        if passing.isEmpty && options.mode == .repair {
            for round in 1...options.budget.rounds {
                // The critic's most promising failures of the previous stage.
                let failed = lastStage.filter { all[$0].example?.verdict != nil }
                guard !failed.isEmpty else { break }
                reportStage("the critic scores \(failed.count) failures")
                let scores = try critic.passProbabilities(prompt: prompt, programs: failed.map { all[$0].tokens })
                for (i, p) in zip(failed, scores) { all[i].criticPass = p }
                let chosen = failed.sorted { (all[$0].criticPass!, -$0) > (all[$1].criticPass!, -$1) }.prefix(options.budget.repairCandidates)
                let each = max(1, N / chosen.count)
                var fixes: [Candidate] = []
                for parent in chosen {
                    let message = CriticalSampling.repairMessage(problem: PromptFormat.userMessage(problem, exampleTests: examples),
                                                                 program: all[parent].program, verdict: all[parent].example!.verdict!)
                    var batch = try generate(problem, prompt: format.promptTokens(userMessage: message), count: each,
                                             stage: "repair", round: round, salt: parent)
                    for j in batch.indices { batch[j].parent = parent }
                    fixes += batch
                }
                judgeExamples(&fixes, examples, problem)
                lastStage = Array(all.count..<all.count + fixes.count)
                all += fixes
                passing = lastStage.filter { all[$0].passesExamples }
                if !passing.isEmpty { break }
            }
        }
        guard !passing.isEmpty else {
            for i in lastStage { all[i].inPool = true }
            return all
        }
        // Refine: continue every passing program from its critic-chosen seed.
        let each = max(1, N / passing.count)
        reportStage("the critic reads \(passing.count) passing programs")
        let probabilities = try critic.tokenPassProbabilities(prompt: prompt, programs: passing.map { all[$0].tokens })
        var refined: [Candidate] = []
        let pooled = try critic.passProbabilities(prompt: prompt, programs: passing.map { all[$0].tokens })
        for (parent, p) in zip(passing, pooled) { all[parent].criticPass = p }
        let improved = options.variant == .improved
        for (parent, p) in zip(passing, probabilities) {
            let keep = improved ? CriticalSampling.relativeSeedLength(passProbabilities: p) : CriticalSampling.seedLength(passProbabilities: p)
            let seed = Array(all[parent].tokens.prefix(keep))
            var batch = try generate(problem, prompt: all[parent].generationPrompt + seed, count: each, stage: "refine",
                                     round: all[parent].round, salt: parent, seedTokens: seed, basePrompt: all[parent].generationPrompt)
            for j in batch.indices { batch[j].parent = parent }
            refined += batch
        }
        judgeExamples(&refined, examples, problem)
        for j in refined.indices { refined[j].inPool = true }
        if improved { for i in passing { all[i].inPool = true } }
        return all + refined
    }

    /// `count` completions of `prompt`; with `seedTokens`, the prompt ends with that program
    /// prefix and each program is the prefix followed by the completion.
    func generate(_ problem: Problem, prompt: [Int], count: Int, stage: String, round: Int, salt: Int = 0,
                  seedTokens: [Int] = [], basePrompt: [Int]? = nil) throws -> [Candidate] {
        switch stage {
        case "sample": reportStage("sampling \(count)")
        case "refine": reportStage("refining: \(count) from a seed of \(seedTokens.count) tokens")
        default: reportStage("repair round \(round): \(count) fixes")
        }
        let seed = XXH64.hash(Array("\(problem.id)/\(stage)/\(round)/\(salt)".utf8), seed: options.seed)
        let completions: [Completion]
        do {
            completions = try source.complete(problem, prompt: prompt, count: count, seed: seed)
        } catch {
            throw ProblemFailure(reason: "\(stage) generation failed: \(error)")
        }
        return completions.map { c in
            let tokens = seedTokens + c.tokens
            let text = seedTokens.isEmpty ? c.text : format.tokenizer.decode(tokens)
            return Candidate(stage: stage, round: round, generationPrompt: basePrompt ?? prompt, tokens: tokens,
                             seedLength: seedTokens.count, program: PromptFormat.program(fromCompletion: text))
        }
    }

    func judgeExamples(_ candidates: inout [Candidate], _ examples: TestSuite?, _ problem: Problem) {
        guard let examples else { return }
        reportStage("running \(candidates.count) on the example tests")
        for (i, report) in judge(candidates.map(\.program), suite: examples, problemID: problem.id).enumerated() { candidates[i].example = report }
    }

    /// Runs programs on a suite, through the ledger's verdict cache (identical programs are
    /// common when sampling at low temperature).
    func judge(_ programs: [String], suite: TestSuite, problemID: String) -> [ExecutionReport] {
        guard !programs.isEmpty else { return [] }
        let hash = (try? Ledger.hash(of: suite)) ?? []
        var reports = programs.map { program -> ExecutionReport? in
            (try? ledger.cachedVerdict(program: program, suite: hash)).flatMap { $0 }.map { .verdict($0) }
        }
        var missing: [Int] = []
        var seen: [String: Int] = [:]
        for i in programs.indices where reports[i] == nil && seen[programs[i]] == nil {
            seen[programs[i]] = i
            missing.append(i)
        }
        let ran = backend.run(missing.map { ProgramJob(problemID: problemID, program: programs[$0], suite: suite) })
        executions += ran.count
        for (i, report) in zip(missing, ran) {
            reports[i] = report
            if let verdict = report.verdict { try? ledger.cacheVerdict(verdict, program: programs[i], suite: hash) }
        }
        return programs.indices.map { reports[$0] ?? reports[seen[programs[$0]]!]! }
    }
}
