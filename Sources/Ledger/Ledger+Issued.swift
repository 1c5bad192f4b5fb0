import Foundation
import LMDB

/// A sample request as the learner handed it out: which samplers were given it (a request is
/// handed to another when its sampler falls silent) and what an answer may hold. The labeler
/// stores a rollout batch only when it answers a request recorded here, from a sampler that was
/// given it, for the request's problems and within its number of programs.
public struct IssuedRequest: Codable, Sendable, Equatable {
    public struct Holder: Codable, Sendable, Equatable {
        /// The sampler's name (its routing id).
        public var sampler: String
        /// Its CURVE public key, when the link has CURVE.
        public var key: String?
        public init(sampler: String, key: String?) {
            self.sampler = sampler
            self.key = key
        }
    }

    public var holders: [Holder]
    public var problems: [String]
    /// Programs an answer may hold: samples (and the greedy baseline) per problem.
    public var maxRollouts: Int

    public init(holders: [Holder], problems: [String], maxRollouts: Int) {
        self.holders = holders
        self.problems = problems
        self.maxRollouts = maxRollouts
    }

    /// Why a batch from `sender` (its name and key) with these problems is not an answer to
    /// this request, or nil when it is.
    public func refusal(sampler: String, key: String?, problems batchProblems: [String]) -> String? {
        let given = holders.contains { holder in
            if let expected = holder.key { return expected == key }
            return holder.sampler == sampler
        }
        if !given { return "it was not given to this sampler (\(key.map { "key \($0)" } ?? sampler))" }
        if batchProblems.count > maxRollouts { return "\(batchProblems.count) programs, the request asks for at most \(maxRollouts)" }
        let allowed = Set(problems)
        if let other = batchProblems.first(where: { !allowed.contains($0) }) { return "problem \(other) is not one it asks for" }
        return nil
    }
}

extension Ledger {
    /// Records that `request` was handed to `holder` (added to the samplers given it before).
    public func recordIssued(_ requestID: String, holder: IssuedRequest.Holder, problems: [String], maxRollouts: Int) throws {
        guard let issuedTable else { throw LMDBError(code: EACCES, operation: "record an issued request", context: "\(path) (opened read-only)") }
        try environment.write { txn in
            let key = Array(requestID.utf8)
            var record = try txn.get(issuedTable, key).flatMap { try? JSONDecoder().decode(IssuedRequest.self, from: Data($0)) }
                ?? IssuedRequest(holders: [], problems: problems, maxRollouts: maxRollouts)
            if !record.holders.contains(holder) { record.holders.append(holder) }
            record.problems = problems
            record.maxRollouts = maxRollouts
            try txn.put(issuedTable, key, Array(try JSONEncoder().encode(record)))
        }
    }

    /// The request as it was issued, or nil when it never was.
    public func issued(_ requestID: String) throws -> IssuedRequest? {
        guard let issuedTable else { return nil }
        return try environment.read { txn in
            try txn.get(issuedTable, Array(requestID.utf8)).flatMap { try? JSONDecoder().decode(IssuedRequest.self, from: Data($0)) }
        }
    }
}
