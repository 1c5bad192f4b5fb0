import Foundation
import LMDB
import Schema
import Synchronization

extension Ledger {
    /// Checks what the learner relies on: per-token arrays line up with the program tokens.
    static func validate(_ rollout: Rollout, key: String) throws {
        func fail(_ reason: String) throws -> Never {
            throw LedgerError.invalidRecord(table: "rollouts", key: key, reason: reason)
        }
        if rollout.problemID.isEmpty { try fail("problem_id is empty") }
        let n = rollout.programTokens.count
        if !rollout.logprobs.isEmpty && rollout.logprobs.count != n {
            try fail("\(rollout.logprobs.count) log-probs for \(n) program tokens")
        }
        if !rollout.criticWeights.isEmpty && rollout.criticWeights.count != n {
            try fail("\(rollout.criticWeights.count) critic weights for \(n) program tokens")
        }
        if rollout.logprobs.contains(where: { !$0.isFinite && $0 != -.infinity }) { try fail("a log-prob is NaN or +inf") }
        if !rollout.reward.isFinite || !rollout.advantage.isFinite { try fail("reward or advantage is not finite") }
    }

    /// Appends rollouts under new, increasing sequence numbers (in one transaction, so a
    /// crash keeps all of them or none). Returns the numbers given.
    @discardableResult
    public func append(_ batch: [Rollout]) throws -> [UInt64] {
        try append(batch, request: nil) ?? []
    }

    /// Appends the rollouts answering one sample request, once: when `request` was appended
    /// before (a sampler resending after a lost acknowledgement, or a request re-issued to a
    /// second sampler), nothing is written and nil is returned.
    public func append(_ batch: [Rollout], request: String?) throws -> [UInt64]? {
        let now = UInt64(Date().timeIntervalSince1970 * 1000)
        var records = batch
        var newPrompts = PromptSet()
        for i in records.indices {
            try Ledger.validate(records[i], key: "(new #\(i))")
            records[i].schemaVersion = recordSchemaVersion
            if records[i].createdUnixMs == 0 { records[i].createdUnixMs = now }
            if records[i].state == .unspecified { records[i].state = .generated }
            Ledger.detachPrompt(&records[i], into: &newPrompts)
        }
        return try environment.write { txn -> [UInt64]? in
            if let request, let requests {
                if try txn.withValue(requests, Array(request.utf8), { _ in true }) != nil { return nil }
            }
            try storePrompts(newPrompts, txn)
            var next = try txn.withValue(meta, MetaKey.nextSequence) { raw in
                UInt64(sortableKey: raw) ?? 0
            } ?? 1
            guard next > 0 else { throw LedgerError.corruptRecord(table: "meta", key: "next-sequence", reason: "expected 8 bytes") }
            var sequences: [UInt64] = []
            sequences.reserveCapacity(records.count)
            for var record in records {
                record.sequence = next
                try txn.put(rollouts, next.sortableKey, try record.serializedBytes() as [UInt8], flags: .append)
                sequences.append(next)
                next += 1
            }
            try txn.put(meta, MetaKey.nextSequence, next.sortableKey)
            if let request, let requests {
                try txn.put(requests, Array(request.utf8), (sequences.first ?? 0).sortableKey + UInt64(sequences.count).sortableKey)
            }
            return sequences
        }
    }

    /// The first sequence and the number of rollouts appended for a sample request.
    public func requestRollouts(_ request: String) throws -> (first: UInt64, count: Int)? {
        guard let requests else { return nil }
        return try environment.read { txn in
            try txn.withValue(requests, Array(request.utf8)) { raw -> (UInt64, Int)? in
                guard raw.count == 16, let first = UInt64(sortableKey: UnsafeRawBufferPointer(rebasing: raw[0..<8])),
                      let count = UInt64(sortableKey: UnsafeRawBufferPointer(rebasing: raw[8..<16])) else { return nil }
                return (first, Int(count))
            } ?? nil
        }
    }

    /// Whether rollouts of this sample request were appended.
    public func hasRequest(_ request: String) throws -> Bool { try requestRollouts(request) != nil }

    public func rollout(sequence: UInt64) throws -> Rollout? {
        try environment.read { txn in
            guard var rollout = try txn.withValue(rollouts, sequence.sortableKey, {
                try RecordCodec.decodeVersioned(Rollout.self, $0, table: "rollouts", key: "\(sequence)")
            }) else { return nil }
            var cache: [Data: [UInt32]] = [:]
            try attachPrompt(&rollout, txn, cache: &cache)
            return rollout
        }
    }

    /// Prompts met while appending a batch, by a fast checksum of their tokens.
    struct PromptSet {
        var byChecksum: [UInt64: [(tokens: [UInt32], hash: [UInt8])]] = [:]
        var all: [(tokens: [UInt32], hash: [UInt8])] { byChecksum.values.flatMap { $0 } }
    }

    /// Moves a rollout's prompt tokens out into `prompts` (keyed by their SHA-256) and leaves
    /// the hash in the record. Samples of one prompt are hashed once per batch.
    static func detachPrompt(_ rollout: inout Rollout, into prompts: inout PromptSet) {
        guard !rollout.promptTokens.isEmpty else { return }
        let tokens = rollout.promptTokens
        #if _endian(little)
        let bytes = tokens
        #else
        let bytes = tokens.map { $0.littleEndian }
        #endif
        let checksum = bytes.withUnsafeBytes { XXH64.hash($0) }
        let hash: [UInt8]
        if let known = prompts.byChecksum[checksum]?.first(where: { $0.tokens == tokens }) {
            hash = known.hash
        } else {
            hash = bytes.withUnsafeBytes { SHA256.hash($0) }
            prompts.byChecksum[checksum, default: []].append((tokens, hash))
        }
        rollout.promptHash = Data(hash)
        rollout.promptTokens = []
    }

    func storePrompts(_ prompts: PromptSet, _ txn: borrowing Transaction) throws {
        for (tokens, hash) in prompts.all {
            let bytes: [UInt8] = try TokenList.with { $0.tokens = tokens }.serializedBytes()
            try txn.put(self.prompts, hash, bytes, flags: .noOverwrite)
        }
    }

    /// Fills in the prompt tokens of a stored rollout from `prompts`.
    func attachPrompt(_ rollout: inout Rollout, _ txn: borrowing Transaction, cache: inout [Data: [UInt32]]) throws {
        guard !rollout.promptHash.isEmpty, rollout.promptTokens.isEmpty else { return }
        if let tokens = cache[rollout.promptHash] { rollout.promptTokens = tokens; return }
        let hash = Array(rollout.promptHash)
        guard let list = try txn.withValue(prompts, hash, {
            try RecordCodec.decode(TokenList.self, $0, table: "prompts", key: hash.hex)
        }) else {
            throw LedgerError.corruptRecord(table: "rollouts", key: "\(rollout.sequence)", reason: "its prompt \(hash.hex) is missing from 'prompts'")
        }
        cache[rollout.promptHash] = list.tokens
        rollout.promptTokens = list.tokens
    }

    /// Changes stored rollouts in one transaction (lifecycle state, verdict, reward, critic
    /// weights...). The sequence number cannot change.
    public func update(sequences: [UInt64], _ change: (inout Rollout) throws -> Void) throws {
        try environment.write { txn in
            for sequence in sequences {
                let key = sequence.sortableKey
                guard var record = try txn.withValue(rollouts, key, {
                    try RecordCodec.decodeVersioned(Rollout.self, $0, table: "rollouts", key: "\(sequence)")
                }) else { throw LedgerError.unknownRollout(sequence) }
                try change(&record)
                record.sequence = sequence
                record.schemaVersion = recordSchemaVersion
                try Ledger.validate(record, key: "\(sequence)")
                var changedPrompt = PromptSet()
                Ledger.detachPrompt(&record, into: &changedPrompt)
                try storePrompts(changedPrompt, txn)
                try txn.put(rollouts, key, try record.serializedBytes() as [UInt8])
            }
        }
    }

    /// Visits rollouts in sequence order from `start`, until `body` returns false. Reads in
    /// snapshots of `pageSize` records so a long replay does not hold one reader open, and
    /// decodes each page on all cores (decoding, not LMDB, is what limits replay).
    public func scanRollouts(from start: UInt64 = 1, pageSize: Int = 4096,
                             _ body: (Rollout) throws -> Bool) throws {
        var cursor = start
        var promptCache: [Data: [UInt32]] = [:]
        while true {
            var page: [Rollout] = []
            var last: UInt64 = 0
            var count = 0
            try environment.read { txn in
                // Values are decoded straight from the map, on all cores, while the snapshot
                // is open; worker threads only read memory and make no LMDB calls.
                var raw: [(UInt64, UnsafeRawBufferPointer)] = []
                raw.reserveCapacity(pageSize)
                try txn.forEach(rollouts, from: cursor.sortableKey) { key, value in
                    raw.append((UInt64(sortableKey: key) ?? 0, value))
                    return raw.count < pageSize
                }
                count = raw.count
                last = raw.last?.0 ?? 0
                page = try Ledger.decodePage(raw)
                if page.contains(where: { !$0.promptHash.isEmpty }) {
                    if promptCache.count > 10_000 { promptCache.removeAll(keepingCapacity: true) }
                    for i in page.indices { try attachPrompt(&page[i], txn, cache: &promptCache) }
                }
            }
            for rollout in page where try !body(rollout) { return }
            guard count == pageSize else { return }
            cursor = last + 1
        }
    }

    /// Values lent from the map: valid while their read transaction is open, which outlasts
    /// `decodePage` (concurrentPerform returns only when every worker has finished).
    struct MappedValues: @unchecked Sendable {
        let items: [(UInt64, UnsafeRawBufferPointer)]
    }

    static func decodePage(_ values: [(UInt64, UnsafeRawBufferPointer)]) throws -> [Rollout] {
        let mapped = MappedValues(items: values)
        let parts = values.count < 256 ? 1 : min(ProcessInfo.processInfo.activeProcessorCount, 8)
        let results = Mutex<[Int: Result<[Rollout], any Error>]>([:])
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            let raw = mapped.items
            let range = raw.count * part / parts..<raw.count * (part + 1) / parts
            let result = Result { () throws -> [Rollout] in
                try raw[range].map { sequence, bytes in
                    try RecordCodec.decodeVersioned(Rollout.self, bytes, table: "rollouts", key: "\(sequence)")
                }
            }
            results.withLock { $0[part] = result }
        }
        return try results.withLock { all in try (0..<parts).flatMap { try all[$0]!.get() } }
    }

    /// The highest sequence number given so far (0 when none).
    public func lastSequence() throws -> UInt64 {
        try environment.read { txn in
            guard let next = try txn.withValue(meta, MetaKey.nextSequence, { UInt64(sortableKey: $0) ?? 0 }) else { return 0 }
            guard next > 0 else { throw LedgerError.corruptRecord(table: "meta", key: "next-sequence", reason: "expected 8 bytes") }
            return next - 1
        }
    }
}
