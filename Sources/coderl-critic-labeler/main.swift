import ArgumentParser
import CodeRL
import Foundation
import Pipeline
import Runtime
import Tensor
import Schema
import ZeroMQ

/// `coderl-critic-labeler --config FILE`: executes, rewards and critic-weights rollouts.
struct CriticLabelerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coderl-critic-labeler",
        abstract: "Take rollouts into the ledger, dispatch them to executors, reward them and attach critic weights.",
        discussion: """
            Binds endpoints.rollouts (samplers) and endpoints.executors (executors, CURVE when \
            endpoints.executor_key_file is set), fetches critic versions from the param-store, and \
            resumes unlabeled rollouts found in the ledger at start.

            Logs: logging.level / logging.critic_labeler / logging.format in the config. Metrics: \
            http://HOST:PORT/metrics, PORT from --metrics-port or metrics.port (see the README).

            Examples:
              coderl-critic-labeler --config runs/demo/pipeline.yaml
              coderl-critic-labeler --config runs/demo/pipeline.yaml \\
                  --set logging.critic_labeler=debug --metrics-port 9500
            """,
        version: CodeRLVersion.string)

    @OptionGroup var role: RoleOptions

    func run() throws {
        let config = try role.loadForStatefulRole("coderl-critic-labeler")
        let (log, metrics) = role.observe(config, role: "critic-labeler")
        defer { metrics?.stop() }
        var settings = LabelerService.Settings(config: config)
        settings.security = try LinkSecurity(config: config, role: .labeler)
        let service = try LabelerService(settings: settings, log: log)
        let flag = service.stopFlag
        Signals.onTerminate { flag.set() }
        try service.run()
    }
}

BLASCoreType.reexecIfNeeded()
CriticLabelerCommand.main()
