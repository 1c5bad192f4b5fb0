import CodeRL
import Execution
import Foundation
import Llama
import ModelIO
import Schema
import Synchronization

/// A completion: the generated token ids and their text (cut before a stop string).
public struct Completion: Sendable {
    public var tokens: [Int]
    public var text: String
    public init(tokens: [Int], text: String) {
        self.tokens = tokens
        self.text = text
    }
}

/// Where the programs under evaluation come from.
public protocol ProgramSource: AnyObject {
    /// `count` completions continuing `prompt` (token ids) for `problem`, from random stream `seed`.
    func complete(_ problem: Problem, prompt: [Int], count: Int, seed: UInt64) throws -> [Completion]
    /// Whether completions can be continued from a seed prefix (critical sampling needs it).
    var canContinue: Bool { get }
}

/// A language model sampling programs: the prompt is prefilled once and shared by all samples.
public final class ModelPrograms: ProgramSource {
    public let generator: Generator
    public let parameters: SamplingParameters

    /// `parameters.stopStrings` gets the closing code fence.
    public init(generator: Generator, parameters: SamplingParameters) {
        self.generator = generator
        var p = parameters
        if !p.stopStrings.contains(PromptFormat.closingFence) { p.stopStrings.append(PromptFormat.closingFence) }
        self.parameters = p
    }

    public var canContinue: Bool { true }

    public func complete(_ problem: Problem, prompt: [Int], count: Int, seed: UInt64) throws -> [Completion] {
        guard count > 0 else { return [] }
        var p = parameters
        p.seed = seed
        let (sequences, _) = try generator.generate(prompt: prompt, samples: count, parameters: p)
        return sequences.map { Completion(tokens: $0.tokens, text: $0.text) }
    }
}

/// The dataset's own reference solutions, in turn: evaluating them checks that the dataset,
/// its import and the executor agree (HumanEval's canonical solutions must score pass@1 = 100%).
public final class ReferencePrograms: ProgramSource {
    let format: PromptFormat

    public init(format: PromptFormat) { self.format = format }

    public var canContinue: Bool { false }

    public func complete(_ problem: Problem, prompt: [Int], count: Int, seed: UInt64) throws -> [Completion] {
        guard !problem.solutions.isEmpty else { throw EvalError("\(problem.id) has no reference solution") }
        return (0..<count).map { i in
            let solution = problem.solutions[i % problem.solutions.count]
            return Completion(tokens: format.solutionTokens(solution), text: solution)
        }
    }
}

public struct EvalError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A program to run on a test suite.
public struct ProgramJob: Sendable {
    public var problemID: String
    public var program: String
    public var suite: TestSuite
    public init(problemID: String, program: String, suite: TestSuite) {
        self.problemID = problemID
        self.program = program
        self.suite = suite
    }
}

/// Where programs run: in this process, or on the pipeline's executors.
public protocol ExecutionBackend: AnyObject {
    /// One report per job, in order. Never throws: a job that could not run is an
    /// infrastructure error, not the program's failure.
    func run(_ jobs: [ProgramJob]) -> [ExecutionReport]
    var description: String { get }
}

/// Sandboxed slots in this process, run in parallel.
public final class LocalExecution: ExecutionBackend {
    let executor: Executor
    let limits: Limits

    public init(executor: Executor, limits: Limits) {
        self.executor = executor
        self.limits = limits
    }

    public var description: String { "local (\(executor.slots) slots, \(executor.isolation))" }

    public func run(_ jobs: [ProgramJob]) -> [ExecutionReport] {
        guard !jobs.isEmpty else { return [] }
        let results = Mutex([ExecutionReport?](repeating: nil, count: jobs.count))
        let workers = min(executor.slots, jobs.count)
        let (executor, limits) = (self.executor, self.limits)
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            for index in stride(from: worker, to: jobs.count, by: workers) {
                let report: ExecutionReport
                do {
                    report = try executor.run(program: jobs[index].program, suite: jobs[index].suite, limits: limits)
                } catch {
                    report = .infrastructureError("\(error)")
                }
                results.withLock { $0[index] = report }
            }
        }
        return results.withLock { $0.map { $0! } }
    }
}
