import Foundation

/// A progress line on standard error: redrawn in place on a terminal (bar, counts, rate,
/// ETA), and printed as plain lines at most every `plainInterval` seconds otherwise (logs, CI).
public final class ProgressLine {
    public let total: Int
    let isTerminal: Bool
    let plainInterval: Double
    let started = Date()
    var lastPlain = Date.distantPast
    var drawn = false

    public init(total: Int, plainInterval: Double = 30, terminal: Bool? = nil) {
        self.total = total
        self.plainInterval = plainInterval
        isTerminal = terminal ?? (isatty(2) != 0)
    }

    /// Reports `done` of `total` units; `detail` follows the counts. `rateDone` units were done
    /// in `rateSeconds` (by default: `done` since this line was created) and give the ETA.
    public func update(done: Int, unit: String, detail: String = "", rateDone: Int? = nil, rateSeconds: Double? = nil) {
        let elapsed = Date().timeIntervalSince(started)
        let workDone = rateDone ?? done, seconds = rateSeconds ?? elapsed
        var eta = ""
        if workDone > 0, done < total {
            eta = " | ETA " + Self.duration(seconds / Double(workDone) * Double(total - done))
        }
        let counts = "\(done)/\(total) \(unit)" + (detail.isEmpty ? "" : " | " + detail) + " | " + Self.duration(elapsed) + eta
        if isTerminal {
            let width = 24, filled = total > 0 ? min(width, width * done / total) : width
            let bar = "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] "
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + bar + counts).utf8))
            drawn = true
        } else if Date().timeIntervalSince(lastPlain) >= plainInterval || done == total {
            FileHandle.standardError.write(Data(("progress: " + counts + "\n").utf8))
            lastPlain = Date()
        }
    }

    /// Ends the line (on a terminal the bar stays visible).
    public func finish() {
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
