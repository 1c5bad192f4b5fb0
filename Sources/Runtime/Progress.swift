import Foundation

/// A progress line on standard error: redrawn in place on a terminal (bar, counts, rate,
/// ETA), and printed as plain lines at most every `plainInterval` seconds otherwise (logs, CI).
/// From its first update (`0/N` as soon as the work starts) until `finish()`, a heartbeat
/// keeps it alive while nothing is done: the clock on a terminal advances every second, and
/// in a pipe the last line is printed again (with the time gone by) every `plainInterval`
/// seconds (30 when that is 0), so a long first step never looks like a hang.
/// Safe to use from several threads (a process's output readers and its supervisor).
public final class ProgressLine: @unchecked Sendable {   // state behind `lock`
    private let lock = NSRecursiveLock()
    public let total: Int
    let isTerminal: Bool
    let plainInterval: Double
    public let started = Date()
    var lastPlain = Date.distantPast
    var drawn = false
    var finished = false
    var last: (done: Int, unit: String, detail: String, rateDone: Int?, rateSeconds: Double?)?
    private let write: @Sendable (String) -> Void
    private var heartbeat: DispatchSourceTimer?

    /// `write` receives every piece of output (standard error by default).
    public init(total: Int, plainInterval: Double = 30, terminal: Bool? = nil,
                write: @escaping @Sendable (String) -> Void = { FileHandle.standardError.write(Data($0.utf8)) }) {
        self.total = total
        self.plainInterval = plainInterval
        isTerminal = terminal ?? (isatty(2) != 0)
        self.write = write
    }

    deinit { heartbeat?.cancel() }

    /// The heartbeat's period: a second on a terminal, the plain interval (30 s when 0) otherwise.
    var heartbeatSeconds: Double { isTerminal ? 1 : (plainInterval > 0 ? plainInterval : 30) }

    private func startHeartbeat() {
        guard heartbeat == nil, !finished else { return }
        let timer = DispatchSource.makeTimerSource(queue: .global(qos: .utility))
        let period = heartbeatSeconds
        timer.schedule(deadline: .now() + period, repeating: period, leeway: .milliseconds(100))
        timer.setEventHandler { [weak self] in self?.beat() }
        heartbeat = timer
        timer.resume()
    }

    private func beat() {
        lock.lock()
        defer { lock.unlock() }
        guard !finished else { return }
        if isTerminal || Date().timeIntervalSince(lastPlain) >= heartbeatSeconds * 0.99 { draw(force: true) }
    }

    /// Reports `done` of `total` units; `detail` follows the counts. `rateDone` units were done
    /// in `rateSeconds` (by default: `done` since this line was created) and give the ETA.
    /// A `total` of 0 means unknown: counts and rate, no bar fraction or ETA.
    public func update(done: Int, unit: String, detail: String = "", rateDone: Int? = nil, rateSeconds: Double? = nil) {
        lock.lock()
        defer { lock.unlock() }
        last = (done, unit, detail, rateDone, rateSeconds)
        draw(force: false)
        startHeartbeat()
    }

    /// Draws the last update (nothing before the first); `force` prints a plain line whatever
    /// the interval.
    private func draw(force: Bool) {
        guard let last else { return }
        let (done, unit, detail, rateDone, rateSeconds) = last
        let elapsed = Date().timeIntervalSince(started)
        let workDone = rateDone ?? done, seconds = rateSeconds ?? elapsed
        var eta = ""
        if workDone > 0, total > 0, done < total {
            eta = " | ETA " + Self.duration(seconds / Double(workDone) * Double(total - done))
        }
        let rate = seconds > 0 && workDone > 0 ? " | " + Self.rate(Double(workDone) / seconds, unit) : ""
        let counts = (total > 0 ? "\(done)/\(total) \(unit)" : "\(done) \(unit)") + (detail.isEmpty ? "" : " | " + detail) + rate + " | " + Self.duration(elapsed) + eta
        if isTerminal {
            let width = 24, filled = total > 0 ? min(width, width * done / total) : 0
            let bar = "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] "
            write("\r\u{1B}[K" + bar + counts)
            drawn = true
        } else if force || Date().timeIntervalSince(lastPlain) >= plainInterval || (total > 0 && done == total) {
            write("progress: " + counts + "\n")
            lastPlain = Date()
        }
    }

    /// Prints `line` on standard output without garbling the bar (which is drawn again under it).
    public func note(_ line: String) {
        lock.lock()
        defer { lock.unlock() }
        if isTerminal && drawn { write("\r\u{1B}[K") }
        print(line)
        fflush(nil)
        if isTerminal && drawn { draw(force: false) }
    }

    /// "12.3 problems/s", or per minute or hour when slower.
    public static func rate(_ perSecond: Double, _ unit: String) -> String {
        if perSecond >= 1 { return String(format: "%.1f %@/s", perSecond, unit) }
        if perSecond * 60 >= 1 { return String(format: "%.1f %@/min", perSecond * 60, unit) }
        return String(format: "%.1f %@/h", perSecond * 3600, unit)
    }

    /// Ends the line (on a terminal the bar stays visible).
    public func finish() {
        lock.lock()
        defer { lock.unlock() }
        if isTerminal && drawn { write("\n") }
        drawn = false
        finished = true
        heartbeat?.cancel()
        heartbeat = nil
    }

    /// "42s", "3m 05s", "2h 01m".
    public static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        if s < 60 { return "\(s)s" }
        if s < 3600 { return String(format: "%dm %02ds", s / 60, s % 60) }
        return String(format: "%dh %02dm", s / 3600, (s % 3600) / 60)
    }
}
