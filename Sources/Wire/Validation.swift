import Schema

/// Semantic checks on a decoded body: what protobuf accepts but no sender of ours would
/// produce (missing ids, counts that do not line up, numbers out of range).
extension WireCodec {
    static let maxSamplesPerRequest: UInt32 = 4096
    static let maxProblemsPerRequest = 100_000
    static let maxTokensPerRollout = 1 << 20

    static func validate(_ body: Envelope.OneOf_Body, hasPayload: Bool) throws(WireError) {
        let name = bodyName(body)
        func fail(_ field: String, _ reason: String) throws(WireError) -> Never {
            throw .invalid(body: name, field: field, reason: reason)
        }
        func requireID(_ field: String, _ value: String) throws(WireError) {
            if value.isEmpty { try fail(field, "must not be empty") }
            if value.utf8.count > 256 { try fail(field, "is \(value.utf8.count) bytes; ids are at most 256") }
        }
        func requireHash(_ field: String, _ count: Int) throws(WireError) {
            if count != 32 { try fail(field, "is \(count) bytes; a SHA-256 is 32") }
        }
        if case .weightChunk = body {
            if !hasPayload { throw .missingPayload(body: name) }
        } else if hasPayload {
            throw .unexpectedPayload(body: name)
        }

        switch body {
        case .job(let job):
            try requireID("job_id", job.jobID)
            try requireID("problem_id", job.problemID)
            if !job.hasSuite && job.suiteHash.isEmpty { try fail("suite", "a job needs its test suite or the suite's hash") }
            if !job.suiteHash.isEmpty { try requireHash("suite_hash", job.suiteHash.count) }
            if job.leaseMs == 0 { try fail("lease_ms", "must be positive") }
            let seconds = job.limits.secondsPerTest
            if !seconds.isFinite || seconds < 0 { try fail("limits.seconds_per_test", "\(seconds) is not a time limit") }
        case .result(let result):
            try requireID("job_id", result.jobID)
            if result.hasVerdict == !result.infrastructureError.isEmpty {
                try fail("verdict", "exactly one of verdict and infrastructure_error must be set")
            }
            if result.hasVerdict && result.verdict.outcome == .unspecified { try fail("verdict.outcome", "is unspecified") }
        case .workRequest(let request):
            try requireID("worker", request.worker)
        case .heartbeat(let heartbeat):
            try requireID("role", heartbeat.role)
            try requireID("instance", heartbeat.instance)
        case .sampleRequest(let request):
            try requireID("request_id", request.requestID)
            if request.problemIds.isEmpty { try fail("problem_ids", "must name at least one problem") }
            if request.problemIds.count > maxProblemsPerRequest { try fail("problem_ids", "more than \(maxProblemsPerRequest)") }
            if request.samplesPerProblem > maxSamplesPerRequest || (request.samplesPerProblem == 0 && !request.includeBaseline) {
                try fail("samples_per_problem", "\(request.samplesPerProblem) is outside 1...\(maxSamplesPerRequest) (0 only with include_baseline)")
            }
            if !request.problems.isEmpty {
                if request.problems.map(\.problemID) != request.problemIds { try fail("problems", "do not match problem_ids one to one") }
                for (i, p) in request.problems.enumerated() where p.promptTokens.isEmpty || p.promptTokens.count > maxTokensPerRollout {
                    try fail("problems[\(i)].prompt_tokens", "\(p.promptTokens.count) tokens; expected 1...\(maxTokensPerRollout)")
                }
            }
            if request.use == nil { try fail("purpose", "\"\(request.purpose.prefix(64))\" is not a purpose (train, eval)") }
            let sampling = request.sampling
            if !sampling.temperature.isFinite || sampling.temperature < 0 { try fail("sampling.temperature", "\(sampling.temperature) is not >= 0") }
            if !(sampling.topP >= 0 && sampling.topP <= 1) { try fail("sampling.top_p", "\(sampling.topP) is outside [0, 1]") }
        case .rollouts(let batch):
            try requireID("request_id", batch.requestID)
            for (i, rollout) in batch.rollouts.enumerated() {
                let n = rollout.programTokens.count
                if rollout.problemID.isEmpty { try fail("rollouts[\(i)].problem_id", "must not be empty") }
                if rollout.use == nil { try fail("rollouts[\(i)].purpose", "\"\(rollout.purpose.prefix(64))\" is not a purpose (train, eval)") }
                if n + rollout.promptTokens.count > maxTokensPerRollout { try fail("rollouts[\(i)]", "more than \(maxTokensPerRollout) tokens") }
                if rollout.logprobs.count != n { try fail("rollouts[\(i)].logprobs", "\(rollout.logprobs.count) values for \(n) program tokens") }
                if rollout.logprobs.contains(where: { $0.isNaN || $0 > 0 }) { try fail("rollouts[\(i)].logprobs", "a log-probability is NaN or positive") }
            }
        case .weightManifest(let manifest):
            try requireID("model", manifest.model)
            if manifest.chunkBytes == 0 { try fail("chunk_bytes", "must be positive") }
            let expected = (manifest.totalBytes + manifest.chunkBytes - 1) / manifest.chunkBytes
            if UInt64(manifest.chunkXxh64.count) != expected {
                try fail("chunk_xxh64", "\(manifest.chunkXxh64.count) checksums for \(expected) chunks of \(manifest.totalBytes) bytes")
            }
            try requireHash("sha256", manifest.sha256.count)
        case .weightRequest(let request):
            try requireID("model", request.model)
        case .weightChunk(let chunk):
            try requireID("model", chunk.model)
        case .announcement(let announcement):
            try requireID("model", announcement.model)
        case .ack(let ack):
            try requireID("message_id", ack.messageID)
        case .error(let reply):
            if reply.code.isEmpty { try fail("code", "must not be empty") }
        }
    }

    public static func bodyName(_ body: Envelope.OneOf_Body) -> String {
        switch body {
        case .job: "ExecutionJob"
        case .result: "ExecutionResult"
        case .workRequest: "WorkRequest"
        case .heartbeat: "Heartbeat"
        case .sampleRequest: "SampleRequest"
        case .rollouts: "RolloutBatch"
        case .weightManifest: "WeightManifest"
        case .weightRequest: "WeightRequest"
        case .weightChunk: "WeightChunk"
        case .announcement: "VersionAnnouncement"
        case .ack: "Ack"
        case .error: "ErrorReply"
        }
    }
}
