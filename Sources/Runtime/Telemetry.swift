import CoreMetrics
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import Synchronization

/// Metrics of a process: recorded through swift-metrics (`Counter`, `Gauge`, `Timer`,
/// `Recorder`), kept by swift-prometheus, and served as Prometheus text on
/// `http://HOST:PORT/metrics` by `MetricsServer`. Every metric is declared in Metrics.swift and
/// listed in the Operations article.
///
/// `Telemetry.start()` bootstraps swift-metrics once per process; metrics recorded before it
/// (or in a process that never calls it) go nowhere, as swift-metrics' no-op handlers do.
public enum Telemetry {
    public static let registry = PrometheusCollectorRegistry()

    /// Histogram buckets of the duration metrics that are slower than a web request.
    static let slowBuckets: [Duration] = [.milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2),
                                          .seconds(5), .seconds(10), .seconds(20), .seconds(30), .seconds(60), .seconds(120), .seconds(300)]

    private static let started = Mutex(false)

    /// Bootstraps swift-metrics with the Prometheus factory (once; later calls do nothing).
    public static func start() {
        started.withLock { done in
            guard !done else { return }
            var factory = PrometheusMetricsFactory(registry: registry)
            for metric: DurationMetric in [.learnerStepSeconds, .samplerRequestSeconds, .weightFetchSeconds, .weightPublishSeconds,
                                           .executionSeconds, .executorJobSeconds] {
                factory.durationHistogramBuckets[metric.rawValue] = slowBuckets
            }
            factory.valueHistogramBuckets[ValueMetric.policyLag.rawValue] = [0, 1, 2, 3, 4, 6, 8, 16]
            MetricsSystem.bootstrap(factory)
            done = true
        }
    }

    public static var isStarted: Bool { started.withLock { $0 } }

    // Shorthands: each makes (or finds) the metric of that name and labels and records once.
    // The metrics are the catalogue's (Metrics.swift); `named:` takes any name (tests).

    public static func count(_ metric: CounterMetric, _ labels: [(String, String)] = [], by amount: Int = 1) {
        count(named: metric.rawValue, labels, by: amount)
    }

    public static func gauge(_ metric: GaugeMetric, _ value: Double, _ labels: [(String, String)] = []) {
        gauge(named: metric.rawValue, value, labels)
    }

    public static func seconds(_ metric: DurationMetric, _ value: Double, _ labels: [(String, String)] = []) {
        seconds(named: metric.rawValue, value, labels)
    }

    public static func observe(_ metric: ValueMetric, _ value: Double, _ labels: [(String, String)] = []) {
        Recorder(label: metric.rawValue, dimensions: labels, aggregate: true).record(value)
    }

    public static func count(named name: String, _ labels: [(String, String)] = [], by amount: Int = 1) {
        guard amount > 0 else { return }
        Counter(label: name, dimensions: labels).increment(by: amount)
    }

    public static func gauge(named name: String, _ value: Double, _ labels: [(String, String)] = []) {
        Gauge(label: name, dimensions: labels).record(value)
    }

    public static func seconds(named name: String, _ value: Double, _ labels: [(String, String)] = []) {
        CoreMetrics.Timer(label: name, dimensions: labels).recordNanoseconds(Int64(max(0, value) * 1e9))
    }

    /// The metrics in Prometheus' text format.
    public static func exposition() -> String { registry.emitToString() }
}

/// The HTTP server for `GET /metrics` (and `/` with a pointer to it), on swift-nio: one event
/// loop thread serves every connection at once, so a slow client holds up no other. Each
/// connection gets at most 5 seconds in all and one request; a request that is not HTTP, too
/// large (NIO's parser limits headers to 80 KiB) or not a GET gets an error status. Binds
/// 127.0.0.1 unless told otherwise: the metrics are served without authentication.
public final class MetricsServer: Sendable {
    public let port: Int
    private let group: MultiThreadedEventLoopGroup
    private let channel: any Channel

    /// Seconds a connection may stay open, whatever it sends.
    static let connectionSeconds: Int64 = 5

    /// Binds `host:port` (port 0: any free port, see `port`).
    public init(host: String = "127.0.0.1", port: Int) throws {
        Telemetry.start()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(MetricsHandler())
                }
            }
            .childChannelOption(.maxMessagesPerRead, value: 4)
        do {
            channel = try bootstrap.bind(host: host, port: port).wait()
        } catch {
            try? group.syncShutdownGracefully()
            throw RuntimeError("metrics: cannot listen on \(host):\(port): \(error)")
        }
        self.group = group
        self.port = channel.localAddress?.port ?? port
    }

    /// Stops serving (the listening socket and every connection close).
    public func stop() {
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
    }

    /// Status line, content type and body for a request's method and target.
    static func response(method: HTTPMethod, uri: String) -> (HTTPResponseStatus, String, String) {
        guard method == .GET || method == .HEAD else { return (.methodNotAllowed, "text/plain", "only GET\n") }
        let path = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        switch path {
        case "/metrics":
            return (.ok, "text/plain; version=0.0.4; charset=utf-8", Telemetry.exposition())
        case "/":
            return (.ok, "text/plain", "CodeRL metrics: GET /metrics\n")
        default:
            return (.notFound, "text/plain", "no such path; GET /metrics\n")
        }
    }
}

/// One connection: answers its first request, then closes; closes anyway after
/// `MetricsServer.connectionSeconds`.
final class MetricsHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    private var request: HTTPRequestHead?
    private var answered = false

    func channelActive(context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: .seconds(MetricsServer.connectionSeconds)) { loopBound.value.close(promise: nil) }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): request = head
        case .body: break                  // a GET has none; whatever comes is dropped
        case .end:
            guard let head = request, !answered else { return }
            answered = true
            let (status, type, body) = MetricsServer.response(method: head.method, uri: head.uri)
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: type)
            headers.add(name: "Content-Length", value: "\(body.utf8.count)")
            headers.add(name: "Connection", value: "close")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
            if head.method != .HEAD {
                context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
            }
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in loopBound.value.close(promise: nil) }
        }
    }
}

public struct RuntimeError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
