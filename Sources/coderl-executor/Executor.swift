import ArgumentParser
import Execution
import ExecutorService
import SandboxOptions
import Foundation
import Runtime
import ZeroMQ

/// `coderl-executor --connect ENDPOINT [--slots N]`: runs generated programs for a dispatcher.
@main
struct ExecutorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coderl-executor",
        abstract: "Run generated programs against unit tests in a sandbox, for a dispatcher (the critic-labeler).",
        discussion: """
            Connects out to the dispatcher's ROUTER socket, offers --slots jobs at a time, \
            heartbeats, and answers each ExecutionJob with an ExecutionResult. Start as many \
            executors as you like, on any machine; kill them at will (their leases expire and \
            the jobs go elsewhere).

            Examples:
              coderl-executor --connect tcp://head:5705 --slots 2
              coderl-executor --connect tcp://head:5705 --metrics-port 9470 \\
                  --log-level debug
              coderl-executor --connect tcp://head:5705 \\
                  --server-key='rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7' \\
                  --sandbox strict   (with =: a key may begin with -)
            """,
        version: CodeRLVersion.string)

    @Option(help: "The dispatcher's endpoint, e.g. tcp://head:5705.") var connect: String
    @Option(help: "Jobs run at once (one sandboxed slot each; defaults to the number of cores).") var slots: Int = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "This executor's name in heartbeats and verdicts (default: host-pid).") var name: String?
    @Option(help: "Heartbeat interval in milliseconds.") var heartbeatMs: Int = 1000
    @Option(help: "CURVE: the dispatcher's public key (Z85). Without it (or --server-key-file) the link is not encrypted, and a pipeline with security.curve on (the default) refuses the executor.") var serverKey: String?
    @Option(help: "CURVE: a file whose first line is the dispatcher's public key (a run's keys/head.pub).") var serverKeyFile: String?
    @Option(help: "CURVE: a file with this executor's key pair (two lines: public, secret). Generated when absent.") var keyFile: String?
    @Option(help: "Serve Prometheus metrics on this port (0: none).") var metricsPort = 0
    @Option(help: "Address the metrics server listens on (0.0.0.0: every interface; metrics have no authentication).") var metricsHost = "127.0.0.1"
    @Option(help: "Log level: trace, debug, info, notice, warning, error or critical.") var logLevel: PipelineConfig.LevelChoice = .info
    @Option(help: "Log lines: text or json.") var logFormat: LogFormat = .text
    @OptionGroup var sandbox: SandboxOptionsGroup

    func validate() throws {
        guard slots > 0, slots <= 256 else { throw ValidationError("--slots must be in 1...256") }
        guard heartbeatMs >= 50 else { throw ValidationError("--heartbeat-ms must be at least 50") }
        if let serverKey, !CurveKeyPair.isValidKey(serverKey) { throw ValidationError("--server-key is not a 40-character Z85 CURVE key") }
        if serverKey != nil && serverKeyFile != nil { throw ValidationError("give --server-key or --server-key-file, not both") }
    }

    func run() throws {
        let instance = name ?? "\(ProcessInfo.processInfo.hostName)-\(getpid())"
        let (logger, metrics) = Observability.start(role: "executor", instance: instance, level: logLevel, format: logFormat, metricsPort: metricsPort, host: metricsHost)
        defer { metrics?.stop() }
        let log: @Sendable (String) -> Void = { line in logger(line) }
        let executor = try Executor(slots: slots, configuration: sandbox.configuration, name: instance)
        log("\(slots) slots, isolation: \(executor.isolation), job memory cap: \(executor.memoryCap); connecting to \(connect)")
        var settings = ExecutorWorker.Settings(endpoint: connect, name: instance)
        settings.heartbeatInterval = .milliseconds(heartbeatMs)
        settings.defaultLimits = sandbox.limits
        settings.serverKey = try serverKey ?? serverKeyFile.map(CurveKeyPair.readPublicKey(file:))
        if let keyFile { settings.keys = try CurveKeyPair.loadOrCreate(file: keyFile) }
        let worker = try ExecutorWorker(settings: settings, executor: executor, log: log)
        Signals.onTerminate { worker.stop() }
        try worker.run()
        log("stopped")
    }
}

extension PipelineConfig.LevelChoice: ExpressibleByArgument {}
extension LogFormat: ExpressibleByArgument {}
