import ArgumentParser
import Foundation

/// Options every pipeline role takes: the configuration layers and an instance number.
public struct RoleOptions: ParsableArguments {
    @Option(name: .customLong("config"), help: "Configuration file (YAML); repeat to layer several, later ones win.")
    public var configFiles: [String] = []

    @Option(name: .customLong("set"), help: "Override one key, e.g. --set training.learning_rate=1e-5 (repeatable).")
    public var assignments: [String] = []

    @Option(help: "Instance number of this role (names it in logs and on the wire).")
    public var instance: Int = 0

    public init() {}

    public func load() throws -> PipelineConfig {
        do {
            return try PipelineConfig.load(files: configFiles, assignments: assignments).0
        } catch {
            throw ValidationError("\(error)")
        }
    }
}

/// Calls `body` on SIGINT and SIGTERM (once each signal), instead of dying.
public enum Signals {
    nonisolated(unsafe) private static var sources: [DispatchSourceSignal] = []

    public static func onTerminate(_ body: @escaping @Sendable () -> Void) {
        for signal in [SIGINT, SIGTERM] {
            Foundation.signal(signal, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signal, queue: .global())
            source.setEventHandler(handler: body)
            source.resume()
            sources.append(source)
        }
    }
}
