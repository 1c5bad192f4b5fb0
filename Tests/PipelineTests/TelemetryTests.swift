import CodeRL
import Foundation
import Logging
import Runtime
import XCTest

/// Sums the samples of `name` in Prometheus text whose labels include every `labels` pair.
func metricValue(_ text: String, _ name: String, _ labels: [String: String] = [:]) -> Double? {
    var total: Double? = nil
    for line in text.split(separator: "\n") where !line.hasPrefix("#") {
        let parts = line.split(separator: " ")
        guard parts.count >= 2, let value = Double(parts[parts.count - 1]) else { continue }
        let series = String(parts[0])
        let metric = series.split(separator: "{", maxSplits: 1).first.map(String.init) ?? series
        guard metric == name else { continue }
        let labelText = series.contains("{") ? String(series.split(separator: "{", maxSplits: 1)[1].dropLast()) : ""
        guard labels.allSatisfy({ labelText.contains("\($0.key)=\"\($0.value)\"") }) else { continue }
        total = (total ?? 0) + value
    }
    return total
}

/// Fetches `path` from 127.0.0.1:`port` with a raw request; returns the status line and body.
func httpGet(port: Int, raw: String) throws -> (status: String, body: String) {
    var none = timeval(tv_sec: 0, tv_usec: 0)
    return try httpGet(port: port, raw: raw, timeout: &none)
}

/// The same with a receive timeout (zero: none).
func httpGet(port: Int, raw: String, timeout: inout timeval) throws -> (status: String, body: String) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    if timeout.tv_sec > 0 || timeout.tv_usec > 0 {
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
    let connected = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    guard connected == 0 else { throw RuntimeError("cannot connect to \(port)") }
    _ = Array(raw.utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    shutdown(fd, Int32(SHUT_WR))
    var response: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n <= 0 { break }
        response += buffer[0..<n]
    }
    let text = String(decoding: response, as: UTF8.self)
    let status = text.split(separator: "\r\n", maxSplits: 1).first.map(String.init) ?? ""
    let body = text.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\r\n\r\n")
    return (status, body)
}

final class TelemetryTests: XCTestCase {
    /// Metrics recorded through swift-metrics come out of the HTTP endpoint in Prometheus'
    /// format; malformed requests get errors and the server goes on serving.
    func testMetricsServerServesPrometheusTextAndSurvivesBadRequests() throws {
        Telemetry.start()
        let server = try MetricsServer(host: "127.0.0.1", port: 0)
        defer { server.stop() }
        XCTAssertGreaterThan(server.port, 0)
        Telemetry.count(named: "coderl_test_events_total", [("kind", "a")], by: 3)
        Telemetry.count(named: "coderl_test_events_total", [("kind", "a")], by: 2)
        Telemetry.gauge(named: "coderl_test_level", 0.25)
        Telemetry.seconds(named: "coderl_test_seconds", 0.3)

        let ok = try httpGet(port: server.port, raw: "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(ok.status, "HTTP/1.1 200 OK")
        XCTAssertEqual(metricValue(ok.body, "coderl_test_events_total", ["kind": "a"]), 5)
        XCTAssertEqual(metricValue(ok.body, "coderl_test_level"), 0.25)
        XCTAssertEqual(metricValue(ok.body, "coderl_test_seconds_count"), 1)
        XCTAssertEqual(metricValue(ok.body, "coderl_test_seconds_bucket", ["le": "0.5"]), 1)
        XCTAssertEqual(metricValue(ok.body, "coderl_test_seconds_bucket", ["le": "0.25"]), 0)
        XCTAssertTrue(ok.body.contains("# TYPE coderl_test_events_total counter"), ok.body)

        XCTAssertEqual(try httpGet(port: server.port, raw: "POST /metrics HTTP/1.1\r\n\r\n").status, "HTTP/1.1 405 Method Not Allowed")
        XCTAssertEqual(try httpGet(port: server.port, raw: "GET /nothing HTTP/1.1\r\n\r\n").status, "HTTP/1.1 404 Not Found")
        XCTAssertEqual(try httpGet(port: server.port, raw: "\u{1}\u{2}garbage").status, "HTTP/1.1 400 Bad Request")
        XCTAssertEqual(try httpGet(port: server.port, raw: String(repeating: "A", count: 20000)).status, "HTTP/1.1 400 Bad Request")
        XCTAssertEqual(try httpGet(port: server.port, raw: "GET /metrics HTTP/1.0\r\n\r\n").status, "HTTP/1.1 200 OK")

        // A second server on a taken port is refused with the reason, not a crash.
        XCTAssertThrowsError(try MetricsServer(host: "127.0.0.1", port: server.port)) {
            XCTAssertTrue("\($0)".contains("cannot listen on 127.0.0.1:\(server.port)"), "\($0)")
        }
    }

    /// A client trickling a byte every 200 ms holds up no one: another client is answered
    /// while it trickles, and the server closes the trickler after its connection time.
    func testASlowClientHoldsUpNoOtherAndIsCutOff() throws {
        let server = try MetricsServer(host: "127.0.0.1", port: 0)
        defer { server.stop() }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(server.port).bigEndian)
        inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
        let connected = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        XCTAssertEqual(connected, 0)
        let trickler = Thread {
            for byte in Array("GET /metrics HTTP/1.1\r\nX-Slow: ".utf8) + Array(repeating: UInt8(ascii: "a"), count: 200) {
                var b = byte
                if send(fd, &b, 1, Int32(MSG_NOSIGNAL)) != 1 { return }
                usleep(200_000)
            }
        }
        trickler.start()
        usleep(300_000)
        // Answered while the trickler is connected (a server serving one connection at a time
        // would not answer before the trickler's 40 s are over).
        var timeout = timeval(tv_sec: 3, tv_usec: 0)
        let other = try httpGet(port: server.port, raw: "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", timeout: &timeout)
        XCTAssertEqual(other.status, "HTTP/1.1 200 OK")
        // The trickler is cut off: its connection ends (recv returns 0 or an error) well before
        // it would have finished.
        var receiveTimeout = timeval(tv_sec: 15, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &receiveTimeout, socklen_t(MemoryLayout<timeval>.size))
        var buffer = [UInt8](repeating: 0, count: 256)
        var ended = false
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) { ended = true; break }
            if n < 0 { break }                  // 15 s without the server closing
        }
        XCTAssertTrue(ended, "the server closes a connection that takes too long")
        shutdown(fd, Int32(SHUT_RDWR))
        while !trickler.isFinished { usleep(10_000) }
    }

    func testCalibrationErrorByHand() {
        // Bin 0.9-1.0: confidences 0.92 and 0.96, one right -> |0.5 - 0.94| * 2/4;
        // bin 0.6-0.7: confidences 0.62 and 0.66, both right -> |1 - 0.64| * 2/4.
        let p: [[Float]] = [[0.92, 0.08], [0.04, 0.96], [0.62, 0.38], [0.34, 0.66]]
        let ece = Calibration.expectedError(probabilities: p, labels: [0, 0, 0, 1])
        XCTAssertEqual(ece, 0.44 * 0.5 + 0.36 * 0.5, accuracy: 1e-6)
        XCTAssertEqual(Calibration.expectedError(probabilities: [[1, 0], [0, 1]], labels: [0, 1]), 0, accuracy: 1e-9)
        XCTAssertEqual(Calibration.expectedError(probabilities: [], labels: []), 0)
    }

    func testLogLinesCarryRoleInstanceAndLevelInTextAndJSON() throws {
        let date = Date(timeIntervalSince1970: 1_800_000_000)
        let text = RoleLogHandler(role: "sampler", instance: "3", format: .text)
            .render(level: .warning, message: "slow", metadata: ["request": "r1"], date: date)
        XCTAssertTrue(text.hasSuffix(" warning [sampler 3] slow request=r1"), text)
        let json = RoleLogHandler(role: "learner", instance: "0", format: .json)
            .render(level: .info, message: "step \"1\"", metadata: [:], date: date)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: String])
        XCTAssertEqual(object["role"], "learner")
        XCTAssertEqual(object["instance"], "0")
        XCTAssertEqual(object["level"], "info")
        XCTAssertEqual(object["msg"], "step \"1\"")
        XCTAssertEqual(object["ts"], "2027-01-15T08:00:00.000Z")

        // The configured level filters: debug lines are dropped at info, kept at debug.
        Log.configure(level: .info)
        XCTAssertFalse(Log(role: "x", instance: "0").logger.logLevel <= .debug)
        Log.configure(level: .debug)
        XCTAssertTrue(Log(role: "x", instance: "0").logger.logLevel <= .debug)
        Log.configure(level: .info)
    }

    func testLogLevelsPerRoleComeFromTheConfig() throws {
        let (config, _) = try PipelineConfig.load(files: [], assignments: ["logging.level=warning", "logging.sampler=debug", "logging.format=json"])
        XCTAssertEqual(config.logging.level(of: "sampler"), .debug)
        XCTAssertEqual(config.logging.level(of: "learner"), .warning)
        XCTAssertEqual(config.logging.format, .json)
        XCTAssertThrowsError(try PipelineConfig.load(files: [], assignments: ["logging.critic_labeler=loud"])) {
            XCTAssertTrue("\($0)".contains("logging.critic_labeler") && "\($0)".contains("'loud' is not one of"), "\($0)")
        }
        // Ports by role, as `coderl run` hands them out.
        let (ports, _) = try PipelineConfig.load(files: [], assignments: ["metrics.port=9000", "roles.samplers=2"])
        XCTAssertEqual(["param-store", "critic-labeler", "learner"].map { Observability.defaultPort(ports, role: $0, instance: 0) }, [9000, 9001, 9002])
        XCTAssertEqual(Observability.defaultPort(ports, role: "sampler", instance: 1), 9004)
        XCTAssertEqual(Observability.defaultPort(ports, role: "executor", instance: 0), 9005)
    }

    /// The metric catalogue and the Operations article's table list the same names, and no
    /// product source spells a metric name outside the catalogue.
    func testEveryMetricIsInTheCatalogueAndDocumented() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardizedFileURL
        let article = try String(contentsOf: root.appendingPathComponent("Sources/Pipeline/Pipeline.docc/Operations.md"), encoding: .utf8)
        // The metric table's rows: `coderl_...` names in the first column.
        let rows = article.split(separator: "\n").filter { $0.hasPrefix("| `coderl_") }
        let documented = Set(rows.flatMap { row in
            row.split(separator: "|")[0].matches(of: /`(coderl_[a-z_]+)(\{[a-z]+\})?`/).map { String($0.output.1) }
        })
        let catalogue = MetricCatalogue.all.map(\.name)
        XCTAssertEqual(Set(catalogue).count, catalogue.count, "a name declared twice")
        XCTAssertEqual(Set(catalogue).subtracting(documented).sorted(), [], "in the catalogue, missing from Operations.md's metric table")
        XCTAssertEqual(documented.subtracting(catalogue).sorted(), [], "in Operations.md's table, not recorded by any process")
        // The documented kind agrees with the declared one.
        for (name, kind) in MetricCatalogue.all {
            guard let row = rows.first(where: { $0.split(separator: "|")[0].contains("`\(name)`") || $0.split(separator: "|")[0].contains("`\(name){") }) else { continue }
            XCTAssertTrue(row.split(separator: "|")[1].contains(kind), "\(name): documented as \(row.split(separator: "|")[1]), declared a \(kind)")
        }
        var literals: [String] = []
        let sources = root.appendingPathComponent("Sources")
        for case let url as URL in FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil)!
        where url.pathExtension == "swift" && url.lastPathComponent != "Metrics.swift" {
            let text = try String(contentsOf: url, encoding: .utf8)
            for m in text.matches(of: /"(coderl_[a-z_]+)(_sum|_count)?["{]/) { literals.append("\(url.lastPathComponent): \(m.output.1)") }
        }
        XCTAssertEqual(literals, [], "metric names belong in Metrics.swift")
    }
}
