import Foundation
import Schema
import TestSupport
import XCTest
import Ledger

/// A child process appends rollouts and is killed with SIGKILL at random moments, many times.
/// After every kill the ledger must open, and hold exactly the batches the child reported as
/// committed (plus, at most, the one batch whose commit finished before the report was
/// printed), each record intact.
final class CrashSafetyTests: XCTestCase {
    final class Acknowledged: @unchecked Sendable {  // written by the pipe's handler thread under `lock`
        let lock = NSLock()
        var buffer = ""
        var last: UInt64 = 0
        var errors: [String] = []
    }

    func testCommittedRolloutsSurviveSIGKILL() throws {
        let helper = productsDirectory.appendingPathComponent("LedgerStress").path
        guard FileManager.default.isExecutableFile(atPath: helper) else {
            return XCTFail("\(helper) is missing: `swift build` builds it with the tests")
        }
        let path = temporaryDirectory("ledger-crash")
        defer { try? FileManager.default.removeItem(atPath: path) }
        var generator = SystemRandomNumberGenerator()
        var staleReaders = 0
        let rounds = 40
        for round in 0..<rounds {
            let batch = [1, 7, 64][round % 3]
            var before: UInt64 = 0
            var child: (reported: UInt64, errors: [String], reason: Process.TerminationReason)
            do {
                // An observer shares the environment while the child runs, as a learner would;
                // it keeps the reader table alive so the dead child's slots can be seen.
                let observer = try Ledger(path: path)
                before = try observer.lastSequence()
                child = try runAndKill(helper, [path, "\(batch)"],
                                       after: UInt32.random(in: 30_000...250_000, using: &generator))
                staleReaders += try observer.environment.clearStaleReaders()
            }
            XCTAssertEqual(child.reason, .uncaughtSignal, "round \(round): the child exited by itself")
            XCTAssertEqual(child.errors, [], "round \(round)")

            let ledger = try Ledger(path: path)  // the reopen, alone, as after a crash
            let last = try ledger.lastSequence()
            let reported = max(child.reported, before)
            XCTAssertTrue(last == reported || last == reported + UInt64(batch),
                          "round \(round): \(last) records, child reported \(reported) committed (batch \(batch))")
            XCTAssertEqual(UInt64(try ledger.counts().rollouts), last, "round \(round): sequence counter and table disagree")
            XCTAssertEqual((last - before) % UInt64(batch), 0, "round \(round): a batch was torn")
        }
        // Every record of every round, checked against what the child wrote.
        let ledger = try Ledger(path: path)
        var expected: UInt64 = 1
        try ledger.scanRollouts { rollout in
            XCTAssertEqual(rollout.sequence, expected)
            XCTAssertEqual(rollout.problemID, "stress/\(expected)")
            XCTAssertEqual(rollout.programTokens, (0..<UInt32(expected % 97)).map { UInt32(expected) &+ $0 })
            XCTAssertEqual(rollout.program.count, Int(expected % 500))
            expected += 1
            return true
        }
        XCTAssertGreaterThan(expected, 100, "the child should have committed many rollouts over \(rounds) rounds")
        XCTAssertGreaterThan(staleReaders, 0, "killed readers should have left stale slots that start-up cleared")
    }

    /// Starts the helper, kills it with SIGKILL after `microseconds`, and returns the last
    /// sequence it reported as committed and any other line it printed.
    func runAndKill(_ helper: String, _ arguments: [String], after microseconds: UInt32)
        throws -> (reported: UInt64, errors: [String], reason: Process.TerminationReason) {
        let acked = Acknowledged()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: helper)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        @Sendable func take(_ text: String) {
            acked.lock.withLock {
                acked.buffer += text
                while let newline = acked.buffer.firstIndex(of: "\n") {
                    let line = acked.buffer[..<newline]
                    if line.hasPrefix("committed "), let n = UInt64(line.dropFirst(10)) { acked.last = n }
                    else { acked.errors.append(String(line)) }
                    acked.buffer = String(acked.buffer[acked.buffer.index(after: newline)...])
                }
            }
        }
        pipe.fileHandleForReading.readabilityHandler = { take(String(decoding: $0.availableData, as: UTF8.self)) }
        try process.run()
        usleep(microseconds)
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        pipe.fileHandleForReading.readabilityHandler = nil
        take(String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
        return acked.lock.withLock { (acked.last, acked.errors, process.terminationReason) }
    }
}
