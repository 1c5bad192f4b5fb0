import ArgumentParser
import Foundation
import Pipeline
import Runtime
import Tensor

/// `learner --config FILE`: trains the actor and the critic from labeled rollouts.
struct LearnerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "learner",
        abstract: "Train the actor (CodeRL loss) and the critic from labeled rollouts; publish versions; checkpoint.",
        discussion: """
            Resumes from RUN/learner/latest when it exists. Prints one progress line per step on \
            standard output and the held-out summary at the end.

            Example:
              learner --config runs/demo/pipeline.yaml
            """)

    @OptionGroup var role: RoleOptions

    func run() throws {
        let config = try role.load()
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
