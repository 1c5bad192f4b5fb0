import ArgumentParser
import Foundation
import Ledger
import Schema
import SwiftProtobuf

struct Rollouts: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inspect stored rollouts: what was generated and how it fared.",
        discussion: """
            Examples:
              coderl rollouts list --ledger runs/ledger --outcome failed --limit 20
              coderl rollouts show 42 --ledger runs/ledger
              coderl rollouts export --ledger runs/ledger --policy-version 3 > v3.jsonl
            """,
        subcommands: [RolloutsList.self, RolloutsShow.self, RolloutsExport.self])
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case table, jsonl
}

enum OutcomeFilter: String, ExpressibleByArgument, CaseIterable {
    case passed, failed, compileError = "compile-error", runtimeError = "runtime-error", failedTest = "failed-test", pending

    func matches(_ rollout: Rollout) -> Bool {
        let outcome = rollout.hasVerdict ? rollout.verdict.outcome : .unspecified
        switch self {
        case .passed: return outcome == .passed
        case .failed: return outcome != .passed && outcome != .unspecified
        case .compileError: return outcome == .compileError
        case .runtimeError: return outcome == .runtimeError
        case .failedTest: return outcome == .failedTest
        case .pending: return outcome == .unspecified
        }
    }
}

struct RolloutFilter: ParsableArguments {
    @Option(help: "Ledger directory.") var ledger: String
    @Option(help: "Only this problem id.") var problem: String?
    @Option(name: .customLong("policy-version"), help: "Only this policy version.") var version: UInt64?
    @Option(help: "Only this outcome: \(OutcomeFilter.allCases.map(\.rawValue).joined(separator: ", ")).") var outcome: OutcomeFilter?
    @Option(help: "Start at this sequence number.") var from: UInt64 = 1
    @Option(help: "Stop after this many matches.") var limit: Int?

    func validate() throws {
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
    }

    /// Visits matching rollouts in sequence order.
    func scan(_ body: (Rollout) throws -> Void) throws {
        let store = try Ledger.openForReading(path: ledger)
        var matched = 0
        try store.scanRollouts(from: from) { rollout in
            if let problem, rollout.problemID != problem { return true }
            if let version, rollout.policyVersion != version { return true }
            if let outcome, !outcome.matches(rollout) { return true }
            try body(rollout)
            matched += 1
            return limit.map { matched < $0 } ?? true
        }
    }
}

struct RolloutsList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "One line per rollout.", discussion: """
        Examples:
          coderl rollouts list --ledger runs/demo/ledger --outcome passed --limit 20
          coderl rollouts list --ledger runs/demo/ledger --problem basic/12-add \\
              --policy-version 3
        """)
    @OptionGroup var filter: RolloutFilter
    @Option(help: "table or jsonl.") var format: OutputFormat = .table

    func run() throws { try printRollouts(filter, format: format) }
}

func printRollouts(_ filter: RolloutFilter, format: OutputFormat) throws {
    if format == .table {
        print("seq".leftPadded(8) + "  " + "problem".padding(toLength: 24, withPad: " ", startingAt: 0)
              + "version".leftPadded(7) + "  state     outcome          reward  tokens  error")
    }
    try filter.scan { rollout in
        if format == .jsonl { print(try rollout.jsonString()); return }
        let outcome = rollout.hasVerdict ? rollout.verdict.outcome.name : "-"
        let reward = rollout.hasVerdict ? String(format: "%6.2f", rollout.reward) : "     -"
        print(String(rollout.sequence).leftPadded(8) + "  " + rollout.problemID.padding(toLength: 24, withPad: " ", startingAt: 0)
              + String(rollout.policyVersion).leftPadded(7) + "  " + describe(rollout.state).padding(toLength: 10, withPad: " ", startingAt: 0)
              + outcome.padding(toLength: 15, withPad: " ", startingAt: 0) + reward + String(rollout.programTokens.count).leftPadded(8)
              + "  " + rollout.verdict.errorType)
    }
}

struct RolloutsShow: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Everything about one rollout: program, verdict, failing test.", discussion: """
        Examples:
          coderl rollouts show 42 --ledger runs/demo/ledger
          coderl rollouts show 42 --ledger runs/demo/ledger --format jsonl
        """)
    @Argument(help: "Sequence number.") var sequence: UInt64
    @Option(help: "Ledger directory.") var ledger: String
    @Option(help: "table (readable) or jsonl.") var format: OutputFormat = .table

    func run() throws {
        let store = try Ledger.openForReading(path: ledger)
        guard let rollout = try store.rollout(sequence: sequence) else { throw LedgerError.unknownRollout(sequence) }
        if format == .jsonl { print(try rollout.jsonString()); return }
        print("rollout \(rollout.sequence) · problem \(rollout.problemID) · policy version \(rollout.policyVersion) · sampler \(rollout.sampler.isEmpty ? "-" : rollout.sampler)\(rollout.baseline ? " · greedy baseline" : "")")
        print("state \(describe(rollout.state)) · \(rollout.promptTokens.count) prompt tokens, \(rollout.programTokens.count) program tokens"
              + (rollout.logprobs.isEmpty ? "" : String(format: " · mean log-prob %.3f", rollout.logprobs.reduce(0, +) / Float(rollout.logprobs.count))))
        print("\n--- program ---\n\(rollout.program.isEmpty ? rollout.completion : rollout.program)")
        guard rollout.hasVerdict else { print("\n(no verdict yet)"); return }
        let verdict = rollout.verdict
        print("\n--- verdict ---")
        print("\(verdict.outcome.name): \(verdict.passedTests)/\(verdict.totalTests) tests passed, reward \(rollout.reward), advantage \(rollout.advantage)"
              + String(format: ", %.3f s, %.1f MiB", verdict.seconds, Double(verdict.peakMemoryBytes) / 1048576))
        if !verdict.errorType.isEmpty { print("\(verdict.errorType): \(verdict.errorMessage)") }
        if let failing = verdict.tests.first(where: { $0.status != .passed && $0.status != .notRun }) {
            print("\n--- first failing test (#\(failing.index)) ---")
            print("status \(failing.status.name)\(failing.errorType.isEmpty ? "" : " · \(failing.errorType): \(failing.message)")")
            if let suite = try store.testSuite(hash: Array(rollout.testSuite)), Int(failing.index) < suite.cases.count {
                let test = suite.cases[Int(failing.index)]
                if !test.code.isEmpty { print(test.code) }
                if !test.input.isEmpty { print("input:\n\(test.input.prefix(2000))") }
                if !test.expected.isEmpty { print("expected:\n\(test.expected.prefix(2000))") }
            }
        }
        if !rollout.criticWeights.isEmpty {
            let weights = rollout.criticWeights
            print(String(format: "\ncritic weights: %d values, mean %.3f, min %.3f, max %.3f", weights.count,
                         weights.reduce(0, +) / Float(weights.count), weights.min()!, weights.max()!))
        }
    }
}

struct RolloutsExport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "Write matching rollouts as JSON Lines (protobuf JSON mapping) or a table to stdout.",
        discussion: """
            Examples:
              coderl rollouts export --ledger runs/demo/ledger > rollouts.jsonl
              coderl rollouts export --ledger runs/demo/ledger --policy-version 3 \\
                  --outcome failed > v3-failures.jsonl
            """)
    @OptionGroup var filter: RolloutFilter
    @Option(help: "jsonl or table.") var format: OutputFormat = .jsonl

    func run() throws { try printRollouts(filter, format: format) }
}

func describe(_ state: RolloutState) -> String {
    switch state {
    case .generated: "generated"
    case .executing: "executing"
    case .executed: "executed"
    case .labeled: "labeled"
    case .consumed: "consumed"
    default: "-"
    }
}
