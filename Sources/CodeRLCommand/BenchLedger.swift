import ArgumentParser
import Foundation
import Ledger
import Schema

struct BenchLedger: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ledger",
        abstract: "Rollout append and replay-read rates of the ledger, against the targets (50,000 appends/s, 200,000 reads/s).",
        discussion: """
            Examples:
              coderl bench ledger
              coderl bench ledger --count 50000
            """)

    @Option(help: "Rollouts to write.") var count = 200_000
    @Option(help: "Rollouts per write transaction.") var batch = 1_000
    @Option(help: "Program tokens per rollout (prompt tokens are twice as many).") var tokens = 128
    @Option(help: "Ledger directory to use (default: a temporary one, removed afterwards).") var ledger: String?

    func validate() throws {
        guard count > 0, batch > 0, tokens >= 0 else { throw ValidationError("--count and --batch must be positive") }
    }

    func run() throws {
        let path = ledger ?? NSTemporaryDirectory() + "coderl-bench-ledger-\(getpid())"
        defer { if ledger == nil { try? FileManager.default.removeItem(atPath: path) } }
        let store = try Ledger(path: path)
        var template = Rollout()
        template.problemID = "mbpp/601"
        template.promptTokens = (0..<UInt32(2 * tokens)).map { $0 * 7 % 49152 }
        template.programTokens = (0..<UInt32(tokens)).map { $0 * 13 % 49152 }
        template.logprobs = (0..<tokens).map { -Float($0 % 17) / 5 }
        template.program = String(repeating: "for i in range(n):\n    total += a[i]\n", count: max(1, tokens / 12))
        template.policyVersion = 7
        template.sampler = "sampler-0"
        let recordBytes = (try template.serializedBytes() as [UInt8]).count
        print("ledger \(path); \(count) rollouts of \(recordBytes) bytes as sent (\(2 * tokens) prompt + \(tokens) program tokens, 8 samples per prompt), \(batch) per transaction, fsync on commit")

        var batchRecords = [Rollout](repeating: template, count: batch)
        let t0 = DispatchTime.now().uptimeNanoseconds
        var written = 0
        while written < count {
            let n = min(batch, count - written)
            if n < batchRecords.count { batchRecords = Array(batchRecords.prefix(n)) }
            for i in 0..<n {
                batchRecords[i].sampleIndex = UInt32(truncatingIfNeeded: written + i)  // each record distinct
                // Eight samples per prompt, as a sampler sends them; the ledger stores each prompt once.
                batchRecords[i].promptTokens[0] = UInt32((written + i) / 8)
            }
            try store.append(batchRecords)
            written += n
        }
        let appendSeconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        let appendRate = Double(count) / appendSeconds

        // Replay three times and keep the best: shared machines are noisy.
        var read = 0
        var tokenSum = 0
        var readSeconds = Double.infinity
        for _ in 0..<3 {
            read = 0
            tokenSum = 0
            let t1 = DispatchTime.now().uptimeNanoseconds
            try store.scanRollouts { rollout in
                read += 1
                tokenSum += rollout.programTokens.count + rollout.promptTokens.count
                return true
            }
            readSeconds = min(readSeconds, Double(DispatchTime.now().uptimeNanoseconds - t1) / 1e9)
        }
        let readRate = Double(read) / readSeconds
        guard read == count, tokenSum == count * 3 * tokens else {
            throw CLIError("read back \(read) rollouts with \(tokenSum) tokens, wrote \(count) with \(count * 3 * tokens)")
        }
        let fileMB = Double((try? FileManager.default.attributesOfItem(atPath: path + "/data.mdb")[.size] as? Int) ?? 0) / 1e6
        print(String(format: "append  %10.0f rollouts/s  (%.2f s, %.0f MB/s)   target 50000: %@", appendRate, appendSeconds,
                     Double(count * recordBytes) / appendSeconds / 1e6, appendRate >= 50_000 ? "met" : "MISSED"))
        print(String(format: "replay  %10.0f rollouts/s  (%.2f s, decoded on all cores, best of 3)   target 200000: %@", readRate, readSeconds,
                     readRate >= 200_000 ? "met" : "MISSED"))
        print(String(format: "file    %.0f MB for %d rollouts", fileMB, count))
    }
}
