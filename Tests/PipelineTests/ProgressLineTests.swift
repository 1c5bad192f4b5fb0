import Foundation
import Runtime
import XCTest

/// The progress line in a pipe (logs, CI): 0/N at once, counts with rate and ETA, at most one
/// line per interval, the last one always, and a heartbeat while nothing is done.
final class ProgressLineTests: XCTestCase {
    final class Sink: @unchecked Sendable {
        private let lock = NSLock()
        private var text = ""
        func append(_ s: String) { lock.lock(); text += s; lock.unlock() }
        var lines: [String] { lock.lock(); defer { lock.unlock() }; return text.split(separator: "\n").map(String.init) }
    }

    func testPlainLinesThrottleAndEndWithTheLastCount() {
        let sink = Sink()
        let line = ProgressLine(total: 10, plainInterval: 3600, terminal: false, write: sink.append)
        line.update(done: 0, unit: "problems", detail: "starting")
        for done in 1...9 { line.update(done: done, unit: "problems") }
        XCTAssertEqual(sink.lines.count, 1, "one line per interval: \(sink.lines)")
        XCTAssertTrue(sink.lines[0].hasPrefix("progress: 0/10 problems | starting"), sink.lines[0])
        line.update(done: 10, unit: "problems")
        line.finish()
        XCTAssertEqual(sink.lines.count, 2, "\(sink.lines)")
        XCTAssertTrue(sink.lines[1].hasPrefix("progress: 10/10 problems"), sink.lines[1])
    }

    /// While nothing is done, the last line is printed again every interval with the time gone
    /// by; nothing after `finish()`.
    func testTheHeartbeatRepeatsTheLastLineUntilFinished() throws {
        let sink = Sink()
        let line = ProgressLine(total: 4, plainInterval: 0.2, terminal: false, write: sink.append)
        line.update(done: 1, unit: "steps", detail: "warm-start 3/20")
        let deadline = Date().addingTimeInterval(10)
        while sink.lines.count < 3 && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        XCTAssertGreaterThanOrEqual(sink.lines.count, 3, "no heartbeat: \(sink.lines)")
        XCTAssertTrue(sink.lines.allSatisfy { $0.hasPrefix("progress: 1/4 steps | warm-start 3/20") }, "\(sink.lines)")
        line.finish()
        let after = sink.lines.count
        Thread.sleep(forTimeInterval: 0.6)
        XCTAssertEqual(sink.lines.count, after, "a line after finish(): \(sink.lines)")
    }

    /// The heartbeat keeps beating while the process's work holds every libdispatch worker
    /// thread (as the model's parallel loops do during a long first problem).
    func testTheHeartbeatBeatsWhileDispatchWorkersAreBusy() throws {
        let sink = Sink()
        let line = ProgressLine(total: 4, plainInterval: 0.2, terminal: false, write: sink.append)
        line.update(done: 0, unit: "problems")
        let busyUntil = Date().addingTimeInterval(2)
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            DispatchQueue.concurrentPerform(iterations: 8 * ProcessInfo.processInfo.activeProcessorCount) { _ in
                var x = 0.0
                while Date() < busyUntil { x += 1 }
                if x < 0 { print(x) }
            }
            done.signal()
        }
        done.wait()
        line.finish()
        XCTAssertGreaterThanOrEqual(sink.lines.count, 4, "the heartbeat was starved: \(sink.lines)")
    }

    /// On a terminal the bar is redrawn in place (carriage return, erase line) and ends with a
    /// newline; a note goes above it without garbling it.
    func testTerminalRedrawsInPlace() {
        let sink = Sink()
        let line = ProgressLine(total: 2, plainInterval: 30, terminal: true, write: sink.append)
        line.update(done: 1, unit: "steps")
        line.finish()
        let text = sink.lines.joined(separator: "\n")
        XCTAssertTrue(text.hasPrefix("\r\u{1B}[K[############............] 1/2 steps"), text.debugDescription)
    }
}
