import CoreMetrics
import Foundation
import Prometheus
import Synchronization

/// Metrics of a process: recorded through swift-metrics (`Counter`, `Gauge`, `Timer`,
/// `Recorder`), kept by swift-prometheus, and served as Prometheus text on
/// `http://HOST:PORT/metrics` by `MetricsServer`. Every metric name is listed in the README.
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
            for name in ["coderl_learner_step_seconds", "coderl_sampler_request_seconds", "coderl_weight_fetch_seconds",
                         "coderl_weight_publish_seconds", "coderl_execution_seconds", "coderl_executor_job_seconds"] {
                factory.durationHistogramBuckets[name] = slowBuckets
            }
            factory.valueHistogramBuckets["coderl_policy_lag"] = [0, 1, 2, 3, 4, 6, 8, 16]
            MetricsSystem.bootstrap(factory)
            done = true
        }
    }

    public static var isStarted: Bool { started.withLock { $0 } }

    // Shorthands: each makes (or finds) the metric of that name and labels and records once.

    public static func count(_ name: String, _ labels: [(String, String)] = [], by amount: Int = 1) {
        guard amount > 0 else { return }
        Counter(label: name, dimensions: labels).increment(by: amount)
    }

    public static func gauge(_ name: String, _ value: Double, _ labels: [(String, String)] = []) {
        Gauge(label: name, dimensions: labels).record(value)
    }

    public static func seconds(_ name: String, _ value: Double, _ labels: [(String, String)] = []) {
        CoreMetrics.Timer(label: name, dimensions: labels).recordNanoseconds(Int64(max(0, value) * 1e9))
    }

    public static func observe(_ name: String, _ value: Double, _ labels: [(String, String)] = []) {
        Recorder(label: name, dimensions: labels, aggregate: true).record(value)
    }

    /// The metrics in Prometheus' text format.
    public static func exposition() -> String { registry.emitToString() }
}

/// A minimal HTTP/1.1 server for `GET /metrics` (and `/` with a pointer to it), on a thread of
/// its own. A request larger than 8 KiB, slower than 2 s or not a GET gets an error status;
/// nothing a client sends can stop the server.
public final class MetricsServer: @unchecked Sendable {   // the file descriptor is owned by the accept thread
    public let port: Int
    private let fd: Int32
    private let stopped = Mutex(false)

    /// Binds `host:port` (port 0: any free port, see `port`).
    public init(host: String = "0.0.0.0", port: Int) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw RuntimeError("metrics: socket(): \(String(cString: strerror(errno)))") }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
            close(fd)
            throw RuntimeError("metrics: '\(host)' is not an IPv4 address")
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw RuntimeError("metrics: cannot listen on \(host):\(port): \(reason)")
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        self.port = Int(UInt16(bigEndian: actual.sin_port))
        self.fd = fd
        Telemetry.start()
        let server = self
        Thread { server.serve() }.start()
    }

    /// Stops accepting (the listening socket closes).
    public func stop() {
        let first = stopped.withLock { s -> Bool in defer { s = true }; return !s }
        if first { shutdown(fd, Int32(SHUT_RDWR)) }
    }

    private func serve() {
        defer { close(fd) }
        while !stopped.withLock({ $0 }) {
            let client = accept(fd, nil, nil)
            if client < 0 {
                if errno == EINTR { continue }
                return
            }
            answer(client)
            close(client)
        }
    }

    private func answer(_ client: Int32) {
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var request: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 2048)
        while request.count < 8192 && !Self.headersEnd(request) {
            let n = buffer.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            request += buffer[0..<n]
        }
        let (status, type, body) = Self.response(to: request)
        let head = "HTTP/1.1 \(status)\r\nContent-Type: \(type)\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n"
        var bytes = Array((head + body).utf8)[...]
        while !bytes.isEmpty {
            let n = bytes.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { break }
            bytes = bytes.dropFirst(n)
        }
    }

    static func headersEnd(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 4 && bytes.indices.dropLast(3).contains { bytes[$0] == 13 && bytes[$0 + 1] == 10 && bytes[$0 + 2] == 13 && bytes[$0 + 3] == 10 }
    }

    /// Status line, content type and body for a raw request.
    static func response(to request: [UInt8]) -> (String, String, String) {
        guard headersEnd(request) else { return ("400 Bad Request", "text/plain", "incomplete or oversized request\n") }
        let line = String(decoding: request.prefix { $0 != 13 }, as: UTF8.self).split(separator: " ")
        guard line.count == 3, line[2].hasPrefix("HTTP/1.") else { return ("400 Bad Request", "text/plain", "not an HTTP/1.x request line\n") }
        guard line[0] == "GET" || line[0] == "HEAD" else { return ("405 Method Not Allowed", "text/plain", "only GET\n") }
        let path = line[1].split(separator: "?", maxSplits: 1).first.map(String.init) ?? ""
        switch path {
        case "/metrics":
            return ("200 OK", "text/plain; version=0.0.4; charset=utf-8", Telemetry.exposition())
        case "/":
            return ("200 OK", "text/plain", "CodeRL metrics: GET /metrics\n")
        default:
            return ("404 Not Found", "text/plain", "no such path; GET /metrics\n")
        }
    }
}

public struct RuntimeError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
