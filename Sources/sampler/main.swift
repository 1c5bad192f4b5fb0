import ArgumentParser
import Foundation
import Pipeline
import Runtime
import Tensor

/// `sampler --config FILE`: generates programs for the learner's sample requests.
struct SamplerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sampler",
        abstract: "Generate programs for the learner's sample requests and hand them to the critic-labeler.",
        discussion: """
            Connects to the learner (endpoints.samples), the critic-labeler (endpoints.rollouts) and \
            the param-store (endpoints.params); any number of samplers may run, on any machine.

            Examples:
              sampler --config runs/demo/pipeline.yaml --instance 1
              sampler --config pipeline.yaml --set endpoints.samples=tcp://head:5703 --set endpoints.rollouts=tcp://head:5704 --set endpoints.params=tcp://head:5701
            """)

    @OptionGroup var role: RoleOptions

    @Option(help: "Where fetched weight versions are cached (default: RUN/cache/sampler-N).")
    var cache: String?

    func run() throws {
        let config = try role.load()
        let name = "sampler-\(role.instance)-\(ProcessInfo.processInfo.hostName)-\(getpid())"
        let log = Log(role: "sampler", instance: "\(role.instance)")
        let settings = SamplerService.Settings(
            name: name, learnerEndpoint: config.endpoints.samples, labelerEndpoint: config.endpoints.rollouts,
            paramsEndpoint: config.endpoints.params, cacheDirectory: cache ?? config.run.directory + "/cache/sampler-\(role.instance)")
        let service = SamplerService(settings: settings, log: log)
        let flag = service.stopFlag
        Signals.onTerminate { flag.set() }
        try service.run()
    }
}

BLASCoreType.reexecIfNeeded()
SamplerCommand.main()
