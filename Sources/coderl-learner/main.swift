import ArgumentParser
import Foundation
import Pipeline
import Runtime
import Tensor

/// `coderl-learner --config FILE`: trains the actor and the critic from labeled rollouts.
struct LearnerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coderl-learner",
        abstract: "Train the actor (CodeRL loss) and the critic from labeled rollouts; publish versions; checkpoint.",
        discussion: """
            Resumes from RUN/learner/latest when it exists. Prints one progress line per step on \
            standard output and the held-out summary at the end.

            Logs: logging.level / logging.learner / logging.format in the config. Metrics: \
            http://HOST:PORT/metrics, PORT from --metrics-port or metrics.port (see the README).

            Examples:
              coderl-learner --config runs/demo/pipeline.yaml
              coderl-learner --config runs/demo/pipeline.yaml \\
                  --set logging.learner=debug --metrics-port 9500
            """,
        version: CodeRLVersion.string)

    @OptionGroup var role: RoleOptions

    func run() throws {
        let config = try role.loadForStatefulRole("coderl-learner")
        let (log, metrics) = role.observe(config, role: "learner")
        defer { metrics?.stop() }
        let service = try LearnerService(config: config, log: log) { line in
            print(line)
            fflush(nil)
        }
        let flag = service.stopFlag
        Signals.onTerminate { flag.set() }
        let summary = try service.run()
        print(summary)
        fflush(nil)
    }
}

BLASCoreType.reexecIfNeeded()
LearnerCommand.main()
