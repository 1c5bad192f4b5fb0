import ArgumentParser
import Foundation
import Logging

/// Options every pipeline role takes: the configuration layers and an instance number.
public struct RoleOptions: ParsableArguments {
    @Option(name: .customLong("config"), help: "Configuration file (YAML); repeat to layer several, later ones win.")
    public var configFiles: [String] = []

    @Option(name: .customLong("set"), help: "Override one key, e.g. --set training.learning_rate=1e-5 (repeatable).")
    public var assignments: [String] = []

    @Option(help: "Instance number of this role (names it in logs and on the wire).")
    public var instance: Int = 0

    @Option(help: "Serve Prometheus metrics on this port (0: none; default: from metrics.port, see the README).")
    public var metricsPort: Int?

    public init() {}

    /// The configuration of a role that keeps state (the ledger, checkpoints, weights), which
    /// must not start on the defaults by accident: without --config it would keep that state
    /// in runs/coderl under the current directory. `--set run.dir=DIR` runs on the defaults
    /// on purpose.
    public func loadForStatefulRole(_ role: String) throws -> PipelineConfig {
        if configFiles.isEmpty && !assignments.contains(where: { $0.hasPrefix("run.dir=") }) {
            throw ValidationError("\(role) needs --config FILE: the pipeline's configuration (RUN/pipeline.yaml, written by `coderl run`, or your own); "
                                  + "on the defaults it would keep its state in runs/coderl under the current directory (pass --set run.dir=DIR to do that on purpose)")
        }
        return try load()
    }

    public func load() throws -> PipelineConfig {
        do {
            return try PipelineConfig.load(files: configFiles, assignments: assignments).0
        } catch {
            throw ValidationError("\(error)")
        }
    }
}

extension RoleOptions {
    /// Configures this process's logs for `role` (level and format from the config) and starts
    /// its metrics server; returns the role's logger and the server (nil when off or the port
    /// is taken, which is logged and not fatal).
    public func observe(_ config: PipelineConfig, role: String) -> (Log, MetricsServer?) {
        let port = metricsPort ?? Observability.defaultPort(config, role: role, instance: instance)
        return Observability.start(role: role, instance: "\(instance)", level: config.logging.level(of: role),
                                   format: config.logging.format, metricsPort: port, host: config.metrics.host)
    }
}

/// Logs and metrics of a process, set up once at its start.
public enum Observability {
    /// The metrics port of a role started by hand: `metrics.port` plus the role's place in the
    /// order `coderl run` uses (param-store, critic-labeler, learner, samplers, executors).
    public static func defaultPort(_ config: PipelineConfig, role: String, instance: Int) -> Int {
        guard config.metrics.port > 0 else { return 0 }
        switch role {
        case "param-store": return config.metrics.port
        case "critic-labeler": return config.metrics.port + 1
        case "learner": return config.metrics.port + 2
        case "sampler": return config.metrics.port + 3 + instance
        default: return config.metrics.port + 3 + config.roles.samplers + instance
        }
    }

    public static func start(role: String, instance: String, level: PipelineConfig.LevelChoice, format: LogFormat,
                             metricsPort: Int, host: String = "127.0.0.1") -> (Log, MetricsServer?) {
        Log.configure(level: Logger.Level(rawValue: level.rawValue) ?? .info, format: format)
        let log = Log(role: role, instance: instance)
        MallocArenas.limit()
        Telemetry.start()
        guard metricsPort > 0 else { return (log, nil) }
        do {
            let server = try MetricsServer(host: host, port: metricsPort)
            log.debug("metrics on http://\(host):\(server.port)/metrics")
            return (log, server)
        } catch {
            log.warning("\(error); this process serves no metrics")
            return (log, nil)
        }
    }
}

/// glibc gives each thread that allocates while another holds the lock an arena of its own, up
/// to 8 per core, and every arena keeps what was freed in it. A learner's threads (training,
/// serving samplers, ZeroMQ, dispatch) spread its per-step buffers over dozens of 64 MiB heaps:
/// 70 steps into a 200-step MBPP run, 52 of them held 2.8 GB of the learner's 7.1 GB. Roles allocate
/// little on their hot paths, so two arenas cost no contention worth measuring.
public enum MallocArenas {
    /// Limits this process to `count` arenas unless MALLOC_ARENA_MAX is set (glibc only).
    public static func limit(to count: Int32 = 2) {
        #if os(Linux)
        guard ProcessInfo.processInfo.environment["MALLOC_ARENA_MAX"] == nil else { return }
        _ = glibcMallopt(-8, count)   // M_ARENA_MAX in <malloc.h>
        #endif
    }
}

#if os(Linux)
/// glibc's `int mallopt(int param, int value)`; <malloc.h> is not in the Glibc module.
@_silgen_name("mallopt") private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32
#endif

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
