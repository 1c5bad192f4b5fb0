import Foundation

/// A progress line on standard error: redrawn in place on a terminal (bar, counts, rate,
/// ETA), and printed as plain lines at most every `plainInterval` seconds otherwise (logs, CI).
/// Safe to use from several threads (a process's output readers and its supervisor).
public final class ProgressLine: @unchecked Sendable {   // state behind `lock`
    private let lock = NSRecursiveLock()
    public let total: Int
    let isTerminal: Bool
    let plainInterval: Double
    public let started = Date()
    var lastPlain = Date.distantPast
    var drawn = false
    var last: (done: Int, unit: String, detail: String, rateDone: Int?, rateSeconds: Double?)?

    public init(total: Int, plainInterval: Double = 30, terminal: Bool? = nil) {
        self.total = total
        self.plainInterval = plainInterval
        isTerminal = terminal ?? (isatty(2) != 0)
    }

    /// Reports `done` of `total` units; `detail` follows the counts. `rateDone` units were done
    /// in `rateSeconds` (by default: `done` since this line was created) and give the ETA.
    /// A `total` of 0 means unknown: counts and rate, no bar fraction or ETA.
    public func update(done: Int, unit: String, detail: String = "", rateDone: Int? = nil, rateSeconds: Double? = nil) {
        lock.lock()
        defer { lock.unlock() }
        let elapsed = Date().timeIntervalSince(started)
        let workDone = rateDone ?? done, seconds = rateSeconds ?? elapsed
        var eta = ""
        if workDone > 0, total > 0, done < total {
            eta = " | ETA " + Self.duration(seconds / Double(workDone) * Double(total - done))
        }
        let rate = seconds > 0 && workDone > 0 ? " | " + Self.rate(Double(workDone) / seconds, unit) : ""
        let counts = (total > 0 ? "\(done)/\(total) \(unit)" : "\(done) \(unit)") + (detail.isEmpty ? "" : " | " + detail) + rate + " | " + Self.duration(elapsed) + eta
        last = (done, unit, detail, rateDone, rateSeconds)
        if isTerminal {
            let width = 24, filled = total > 0 ? min(width, width * done / total) : 0
            let bar = "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] "
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + bar + counts).utf8))
            drawn = true
        } else if Date().timeIntervalSince(lastPlain) >= plainInterval || (total > 0 && done == total) {
            FileHandle.standardError.write(Data(("progress: " + counts + "\n").utf8))
            lastPlain = Date()
        }
    }

    /// Prints `line` on standard output without garbling the bar (which is drawn again under it).
    public func note(_ line: String) {
        lock.lock()
        defer { lock.unlock() }
        if isTerminal && drawn { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        print(line)
        fflush(nil)
        if isTerminal && drawn, let last { update(done: last.done, unit: last.unit, detail: last.detail, rateDone: last.rateDone, rateSeconds: last.rateSeconds) }
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
        if isTerminal && drawn { FileHandle.standardError.write(Data("\n".utf8)) }
        drawn = false
    }

    /// "42s", "3m 05s", "2h 01m".
    public static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        if s < 60 { return "\(s)s" }
        if s < 3600 { return String(format: "%dm %02ds", s / 60, s % 60) }
        return String(format: "%dh %02dm", s / 3600, (s % 3600) / 60)
    }
}
