import ArgumentParser
import Foundation
import Pipeline
import Runtime
import Tensor

/// `coderl-sampler --config FILE`: generates programs for the learner's sample requests.
struct SamplerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coderl-sampler",
        abstract: "Generate programs for the learner's sample requests and hand them to the critic-labeler.",
        discussion: """
            Connects to the learner (endpoints.samples), the critic-labeler (endpoints.rollouts) and \
            the param-store (endpoints.params); any number of samplers may run, on any machine.

            `coderl eval --samplers ENDPOINT` hands its sampling to samplers too: start them with \
            --connect (the evaluation's endpoint) and --params (where the evaluation serves the \
            model); their programs go back to the evaluation.

            Examples:
              coderl-sampler --config runs/demo/pipeline.yaml --instance 1
              coderl-sampler --config pipeline.yaml \\
                  --set endpoints.samples=tcp://head:5703 \\
                  --set endpoints.rollouts=tcp://head:5704 \\
                  --set endpoints.params=tcp://head:5701
              coderl-sampler --connect tcp://evalhost:5720 --params tcp://evalhost:5721
            """,
        version: CodeRLVersion.string)

    @OptionGroup var role: RoleOptions

    @Option(help: "Where fetched weight versions are cached (default: RUN/cache/sampler-N).")
    var cache: String?

    @Option(help: "Who hands out sample requests: overrides endpoints.samples (e.g. tcp://evalhost:5720 for `coderl eval --samplers`).")
    var connect: String?

    @Option(help: "The param-store to fetch weights from: overrides endpoints.params.")
    var params: String?

    /// Serving `coderl eval --samplers` (both --connect and --params given): the evaluation's
    /// sockets are plain TCP.
    static func evaluation(_ config: PipelineConfig) -> PipelineConfig {
        var plain = config
        plain.security.curve = false
        return plain
    }

    func run() throws {
        let config = try role.load()
        let name = "sampler-\(role.instance)-\(ProcessInfo.processInfo.hostName)-\(getpid())"
        let (log, metrics) = role.observe(config, role: "sampler")
        defer { metrics?.stop() }
        var settings = try SamplerService.Settings(config: connect != nil && params != nil ? Self.evaluation(config) : config, name: name,
                                                   cacheDirectory: cache ?? config.run.directory + "/cache/sampler-\(role.instance)")
        if let connect { settings.learnerEndpoint = connect }
        if let params { settings.paramsEndpoint = params }
        let service = SamplerService(settings: settings, log: log)
        let flag = service.stopFlag
        Signals.onTerminate { flag.set() }
        try service.run()
    }
}

BLASCoreType.reexecIfNeeded()
SamplerCommand.main()
