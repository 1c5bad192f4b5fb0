import Foundation
import Schema
import SwiftProtobuf
import XCTest
import Wire

/// One valid example of every body type.
func exampleBodies() -> [(Envelope.OneOf_Body, [UInt8]?)] {
    let hash = [UInt8](repeating: 0xAB, count: 32)
    let suite = TestSuite.with {
        $0.format = .stdio
        $0.cases = [TestCase.with { $0.input = "1 2\n"; $0.expected = "3\n" }]
    }
    let rollout = Rollout.with {
        $0.problemID = "mbpp/11"
        $0.programTokens = [1, 2, 3]
        $0.logprobs = [-0.1, -2, -0.5]
        $0.policyVersion = 4
    }
    return [
        (.job(ExecutionJob.with { $0.jobID = "j1"; $0.problemID = "apps/0"; $0.program = "print(3)"; $0.suite = suite; $0.leaseMs = 30_000 }), nil),
        (.result(ExecutionResult.with { $0.jobID = "j1"; $0.verdict = Verdict.with { $0.outcome = .passed } }), nil),
        (.result(ExecutionResult.with { $0.jobID = "j2"; $0.infrastructureError = "sandbox could not start" }), nil),
        (.workRequest(WorkRequest.with { $0.worker = "exec-1"; $0.capacity = 2 }), nil),
        (.heartbeat(Heartbeat.with { $0.role = "executor"; $0.instance = "exec-1"; $0.jobIds = ["j1"] }), nil),
        (.sampleRequest(SampleRequest.with {
            $0.requestID = "r1"; $0.problemIds = ["mbpp/11"]; $0.samplesPerProblem = 8
            $0.sampling = SamplingSettings.with { $0.temperature = 0.8; $0.topP = 0.95 }
        }), nil),
        (.rollouts(RolloutBatch.with { $0.requestID = "r1"; $0.rollouts = [rollout] }), nil),
        (.weightManifest(WeightManifest.with {
            $0.model = "actor"; $0.version = 3; $0.totalBytes = 10; $0.chunkBytes = 4
            $0.chunkXxh64 = [1, 2, 3]; $0.sha256 = Data(hash)
        }), nil),
        (.weightRequest(WeightRequest.with { $0.model = "actor"; $0.version = 3; $0.chunkIndex = 1 }), nil),
        (.weightChunk(WeightChunk.with { $0.model = "actor"; $0.version = 3; $0.index = 1; $0.xxh64 = XXH64.hash([1, 2, 3, 4]) }), [1, 2, 3, 4]),
        (.announcement(VersionAnnouncement.with { $0.model = "actor"; $0.version = 3 }), nil),
        (.ack(Ack.with { $0.messageID = "m1" }), nil),
        (.error(ErrorReply.with { $0.code = "unknown-version"; $0.detail = "no actor version 9" }), nil),
    ]
}

final class CodecTests: XCTestCase {
    func testEveryBodyRoundTrips() throws {
        for (body, payload) in exampleBodies() {
            let frames = try WireCodec.encode(body, id: "m-1", sender: "test", payload: payload)
            let message = try WireCodec.decode(frames)
            XCTAssertEqual(message.body, body)
            XCTAssertEqual(message.payload, payload)
            XCTAssertEqual(message.envelope.messageID, "m-1")
            XCTAssertEqual(message.envelope.protocolVersion, WireCodec.protocolVersion)
        }
    }

    func testInPlaceDecodingChecksTheSameRules() throws {
        for (body, payload) in exampleBodies() {
            let frames = try WireCodec.encode(body, id: "m-1", sender: "test", payload: payload)
            let message = try frames[0].withUnsafeBytes { head in
                try (frames.count == 2 ? frames[1] : []).withUnsafeBytes { tail in
                    try WireCodec.decode(inPlace: frames.count == 2 ? [head, tail] : [head])
                }
            }
            XCTAssertEqual(message.body, body)
            XCTAssertNil(message.payload)
        }
        let ack = try WireCodec.encode(.ack(Ack.with { $0.messageID = "m" }), id: "1", sender: "t")[0]
        XCTAssertThrowsError(try ack.withUnsafeBytes { try WireCodec.decode(inPlace: [$0, $0]) }) {
            XCTAssertEqual($0 as? WireError, .unexpectedPayload(body: "Ack"))
        }
    }

    func testEveryTruncationIsRefused() throws {
        for (body, payload) in exampleBodies() {
            let frames = try WireCodec.encode(body, id: "m-1", sender: "test", payload: payload)
            for cut in 0..<frames[0].count {
                var truncated = frames
                truncated[0] = Array(frames[0].prefix(cut))
                XCTAssertThrowsError(try WireCodec.decode(truncated), "\(WireCodec.bodyName(body)) cut at \(cut) of \(frames[0].count)")
            }
        }
    }

    func testVersionUnknownBodyAndFramingAreChecked() throws {
        var envelope = Envelope()
        envelope.protocolVersion = 2
        envelope.body = .ack(Ack.with { $0.messageID = "x" })
        XCTAssertThrowsError(try WireCodec.decode([try envelope.serializedBytes()])) { error in
            XCTAssertEqual(error as? WireError, .unsupportedVersion(found: 2, supported: 1))
        }
        // Field 99 of the envelope: a body type from the future.
        envelope.protocolVersion = 1
        envelope.body = nil
        var future: [UInt8] = try envelope.serializedBytes()
        future += [0x9A, 0x06, 0x01, 0x00]  // tag (99 << 3 | 2), length 1, one byte
        XCTAssertThrowsError(try WireCodec.decode([future])) { error in
            XCTAssertEqual(error as? WireError, .unknownFields(message: "Envelope"))
        }
        let plain: [UInt8] = try envelope.serializedBytes()
        XCTAssertThrowsError(try WireCodec.decode([plain])) { XCTAssertEqual($0 as? WireError, .unknownBody) }
        XCTAssertThrowsError(try WireCodec.decode([])) { XCTAssertEqual($0 as? WireError, .noFrames) }

        let ack = try WireCodec.encode(.ack(Ack.with { $0.messageID = "m" }), id: "1", sender: "t")
        XCTAssertThrowsError(try WireCodec.decode(ack + [[1]])) { XCTAssertEqual($0 as? WireError, .unexpectedPayload(body: "Ack")) }
        XCTAssertThrowsError(try WireCodec.decode(ack + [[1], [2]])) { XCTAssertEqual($0 as? WireError, .tooManyFrames(count: 3, limit: 2)) }
        let chunk = exampleBodies().first { if case .weightChunk = $0.0 { true } else { false } }!
        XCTAssertThrowsError(try WireCodec.decode(try WireCodec.encode(chunk.0, id: "1", sender: "t"))) {
            XCTAssertEqual($0 as? WireError, .missingPayload(body: "WeightChunk"))
        }
        var limits = WireCodec.Limits()
        limits.envelopeBytes = 8
        XCTAssertThrowsError(try WireCodec.decode(ack, limits: limits)) { error in
            guard case .oversized(frame: "envelope", _, 8)? = error as? WireError else { return XCTFail("\(error)") }
        }
    }

    func testSemanticErrorsNameTheField() throws {
        let cases: [(Envelope.OneOf_Body, String)] = [
            (.job(ExecutionJob.with { $0.problemID = "p"; $0.leaseMs = 1; $0.suiteHash = Data(count: 32) }), "ExecutionJob.job_id"),
            (.job(ExecutionJob.with { $0.jobID = "j"; $0.problemID = "p"; $0.leaseMs = 1; $0.suiteHash = Data(count: 3) }), "ExecutionJob.suite_hash"),
            (.result(ExecutionResult.with { $0.jobID = "j" }), "ExecutionResult.verdict"),
            (.sampleRequest(SampleRequest.with { $0.requestID = "r"; $0.problemIds = ["p"]; $0.samplesPerProblem = 0 }), "SampleRequest.samples_per_problem"),
            (.sampleRequest(SampleRequest.with { $0.requestID = "r"; $0.problemIds = ["p"]; $0.samplesPerProblem = 1; $0.purpose = "warm" }), "SampleRequest.purpose"),
            (.sampleRequest(SampleRequest.with {
                $0.requestID = "r"; $0.problemIds = ["p"]; $0.samplesPerProblem = 1; $0.sampling.temperature = .nan
            }), "SampleRequest.sampling.temperature"),
            (.rollouts(RolloutBatch.with { $0.requestID = "r"; $0.rollouts = [Rollout.with { $0.problemID = "p"; $0.programTokens = [1, 2] }] }),
             "RolloutBatch.rollouts[0].logprobs"),
            (.rollouts(RolloutBatch.with { $0.requestID = "r"; $0.rollouts = [Rollout.with { $0.problemID = "p"; $0.purpose = "Eval" }] }),
             "RolloutBatch.rollouts[0].purpose"),
            (.weightManifest(WeightManifest.with { $0.model = "actor"; $0.totalBytes = 10; $0.chunkBytes = 4; $0.sha256 = Data(count: 32) }),
             "WeightManifest.chunk_xxh64"),
        ]
        for (body, field) in cases {
            XCTAssertThrowsError(try WireCodec.decode(try WireCodec.encode(body, id: "1", sender: "t"))) { error in
                XCTAssertTrue("\(error)".hasPrefix(field), "expected an error about \(field), got: \(error)")
            }
        }
    }
}
