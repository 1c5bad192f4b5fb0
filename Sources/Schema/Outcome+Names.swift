extension Outcome {
    /// The one name of an outcome, wherever it is shown or counted (command output, JSON,
    /// metric labels, the report, the learner's step line): compile-error, runtime-error,
    /// failed-test, passed ("-" for none).
    public var name: String {
        switch self {
        case .compileError: "compile-error"
        case .runtimeError: "runtime-error"
        case .failedTest: "failed-test"
        case .passed: "passed"
        default: "-"
        }
    }

    /// The four outcomes in the order of the ledger's counts (`StepReport.outcomes`).
    public static let counted: [Outcome] = [.compileError, .runtimeError, .failedTest, .passed]
}

extension TestStatus {
    /// The one name of a test's status: passed, wrong-answer, runtime-error, timeout,
    /// memory-limit, output-limit, compile-error, not-run ("-" for none).
    public var name: String {
        switch self {
        case .passed: "passed"
        case .wrongAnswer: "wrong-answer"
        case .runtimeError: "runtime-error"
        case .timeout: "timeout"
        case .memoryLimit: "memory-limit"
        case .outputLimit: "output-limit"
        case .compileError: "compile-error"
        case .notRun: "not-run"
        default: "-"
        }
    }
}
