// Test helper for LedgerTests.testCommittedRolloutsSurviveSIGKILL: appends rollouts with
// content derived from their sequence number, in batches, forever, and prints
// "committed N" after each commit; a second thread keeps read transactions open so that a
// kill also leaves stale reader slots behind. Not installed; the test kills it.
import Foundation
import Ledger
import Schema

let arguments = CommandLine.arguments
guard arguments.count == 3, let batchSize = Int(arguments[2]), batchSize > 0 else {
    FileHandle.standardError.write(Data("usage: LedgerStress LEDGER_DIR BATCH_SIZE\n".utf8))
    exit(2)
}
/// One unbuffered write per line, so the test sees each report as soon as it is made.
func say(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }

/// What the rollout with sequence `n` holds; the test recomputes it to check every record.
func expectedRollout(_ n: UInt64) -> Rollout {
    var rollout = Rollout()
    rollout.problemID = "stress/\(n)"
    rollout.programTokens = (0..<UInt32(n % 97)).map { UInt32(n) &+ $0 }
    rollout.logprobs = rollout.programTokens.map { -Float($0 % 13) / 7 }
    rollout.program = String(repeating: "x", count: Int(n % 500))
    rollout.policyVersion = n / 10
    rollout.reward = -0.3
    return rollout
}

do {
    let ledger = try Ledger(path: arguments[1])
    Thread.detachNewThread {
        while true { try? ledger.scanRollouts(pageSize: 64) { _ in true } }
    }
    var next = try ledger.lastSequence() + 1
    while true {
        let batch = (0..<UInt64(batchSize)).map { expectedRollout(next + $0) }
        let sequences = try ledger.append(batch)
        guard sequences.first == next else {
            say("error: expected sequence \(next), got \(sequences.first ?? 0)")
            exit(1)
        }
        next += UInt64(batchSize)
        say("committed \(next - 1)")
    }
} catch {
    say("error: \(error)")
    exit(1)
}
