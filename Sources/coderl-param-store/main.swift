import ArgumentParser
import Foundation
import Pipeline
import Runtime

/// `coderl-param-store --config FILE`: serves the run's weight versions.
struct ParamStoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coderl-param-store",
        abstract: "Serve versioned actor and critic weights of a pipeline run in checksummed chunks.",
        discussion: """
            Keeps immutable versions under RUN/weights, registers the starting model as actor \
            version 0 and its tokenizer as tokenizer version 0, takes new versions from the learner \
            and announces them. Started by `coderl run`; run it by hand only for a custom layout.

            Logs: logging.level / logging.param_store / logging.format in the config. Metrics: \
            http://HOST:PORT/metrics, PORT from --metrics-port or metrics.port (see the README).

            Examples:
              coderl-param-store --config runs/demo/pipeline.yaml
              coderl-param-store --config runs/demo/pipeline.yaml \\
                  --set logging.param_store=debug --metrics-port 9500
            """,
        version: CodeRLVersion.string)

    @OptionGroup var role: RoleOptions

    func run() throws {
        let config = try role.loadForStatefulRole("coderl-param-store")
        let (log, metrics) = role.observe(config, role: "param-store")
        defer { metrics?.stop() }
        var settings = ParamStore.Settings(directory: config.weightsPath, endpoint: config.endpoints.params,
                                           announceEndpoint: config.endpoints.announcements)
        settings.keepVersions = config.training.keepVersions
        settings.security = try LinkSecurity(config: config, role: .paramStore)
        let store = try ParamStore(settings: settings, log: log)
        if store.manifest(model: "actor", version: 0) == nil {
            try store.register(model: "actor", version: 0, file: try Setup.actorPath(config), link: true)
        }
        if store.manifest(model: "tokenizer", version: 0) == nil {
            try store.register(model: "tokenizer", version: 0, file: try Setup.tokenizerPath(config), link: true)
        }
        let flag = store.stopFlag
        Signals.onTerminate { flag.set() }
        try store.run()
    }
}

ParamStoreCommand.main()
