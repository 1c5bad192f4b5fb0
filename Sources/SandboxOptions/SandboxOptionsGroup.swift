import ArgumentParser
import Execution

/// Sandbox and limit options shared by `coderl exec`, `coderl bench exec` and `coderl-executor`.
public struct SandboxOptionsGroup: ParsableArguments, Sendable {
    public init() {}

    @Option(help: "strict: refuse to run without bubblewrap and user namespaces. relaxed: run with what the machine offers and say so in every verdict.")
    public var sandbox: String = "strict"

    @Option(help: "Python interpreter for programs (run as `python3 -I -S`).")
    public var python: String = "/usr/bin/python3"

    @Option(help: "Wall-clock (and CPU) seconds per test.")
    public var seconds: Double = 4

    @Option(help: "Memory limit per program process, in MiB.")
    public var memoryMB: UInt64 = 2048

    @Option(help: "Output limit per test, in MiB.")
    public var outputMB: UInt64 = 8

    @Flag(help: "Stop at the first failing test (faster; later tests are reported as not run).")
    public var stopAtFirstFailure = false

    public func validate() throws {
        guard SandboxMode(rawValue: sandbox) != nil else { throw ValidationError("--sandbox must be strict or relaxed, got '\(sandbox)'") }
        guard seconds > 0, seconds <= 3600 else { throw ValidationError("--seconds must be in (0, 3600]") }
        guard memoryMB >= 64 else { throw ValidationError("--memory-mb must be at least 64") }
    }

    public var configuration: SandboxConfiguration {
        var configuration = SandboxConfiguration()
        configuration.mode = SandboxMode(rawValue: sandbox) ?? .strict
        configuration.python = python
        return configuration
    }

    public var limits: Limits {
        var limits = Limits()
        limits.secondsPerTest = seconds
        limits.memoryBytes = memoryMB << 20
        limits.outputBytes = outputMB << 20
        limits.stopAtFirstFailure = stopAtFirstFailure
        return limits
    }
}

