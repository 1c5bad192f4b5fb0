extension Outcome {
    /// The outcome as a metric label: compile_error, runtime_error, failed_test, passed.
    public var metricName: String {
        switch self {
        case .compileError: "compile_error"
        case .runtimeError: "runtime_error"
        case .failedTest: "failed_test"
        case .passed: "passed"
        default: "unspecified"
        }
    }
}
