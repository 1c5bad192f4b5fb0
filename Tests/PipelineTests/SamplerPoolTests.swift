import Foundation
import Pipeline
import Runtime
import Schema
import XCTest
import ZeroMQ

/// The requester's side of batched sampling, against a sampler played by a DEALER socket: a
/// sampler is given as many requests as its WorkRequest's capacity, its heartbeat keeps them,
/// and a WorkRequest while holding them (a restarted sampler) puts them back in the queue.
final class SamplerPoolTests: XCTestCase {
    func request(_ i: Int) -> SampleRequest {
        SampleRequest.with {
            $0.requestID = "train-\(i)"
            $0.problemIds = ["p\(i)"]
            $0.problems = [SampleProblem.with { $0.problemID = "p\(i)"; $0.promptTokens = [1, 2, 3] }]
            $0.samplesPerProblem = 2
        }
    }

    /// Receives the sample requests the pool sent within `ms`.
    func received(_ socket: Socket, _ pool: SamplerPool, ms: UInt64 = 500) throws -> [String] {
        var ids: [String] = []
        let deadline = nowMs() + ms
        while nowMs() < deadline {
            _ = try pool.receive()
            try pool.maintain(nowMs: nowMs())
            guard try Poller.poll([socket], timeout: .milliseconds(20))[0] else { continue }
            while let incoming = try socket.receiveMessage(router: false) {
                if case .message(_, let m) = incoming, case .sampleRequest(let r) = m.body { ids.append(r.requestID) }
            }
        }
        return ids
    }

    func testASamplerGetsAsManyRequestsAsItsCapacityAndARestartReturnsThem() throws {
        let context = try Context()
        defer { context.shutdown() }
        let endpoint = "inproc://sampler-pool-test"
        let pool = try SamplerPool(context: context, endpoint: endpoint, heartbeatTimeoutMs: 60_000, name: "requester", log: Log(role: "test", instance: "0"))
        var issued: [(String, String)] = []
        pool.onAssign = { request, sampler, _ in issued.append((request.requestID, sampler)) }
        for i in 0..<5 { pool.enqueue(request(i)) }
        let sampler = try Socket(context, .dealer)
        try sampler.setRoutingID(Array("sampler-a".utf8))
        try sampler.connect(endpoint)
        var sender = Sender(name: "sampler-a")
        try sender.send(sampler, .workRequest(WorkRequest.with { $0.worker = "sampler-a"; $0.capacity = 3 }))

        XCTAssertEqual(try received(sampler, pool), ["train-0", "train-1", "train-2"])
        XCTAssertEqual(pool.pending.map(\.requestID), ["train-3", "train-4"])
        XCTAssertEqual(Set(pool.assigned.keys), ["train-0", "train-1", "train-2"])
        XCTAssertEqual(issued.map(\.0), ["train-0", "train-1", "train-2"])
        XCTAssertTrue(issued.allSatisfy { $0.1 == "sampler-a" })

        // It finishes one (acknowledges it) and heart-beats the other two: nothing new is sent.
        try sender.send(sampler, .ack(Ack.with { $0.messageID = "train-1" }))
        try sender.send(sampler, .heartbeat(Heartbeat.with { $0.role = "sampler"; $0.instance = "sampler-a"; $0.jobIds = ["train-0", "train-2"] }))
        XCTAssertEqual(try received(sampler, pool, ms: 300), [])
        XCTAssertEqual(Set(pool.assigned.keys), ["train-0", "train-2"])

        // It asks for work while the pool thinks it holds two: it restarted. Both go back to
        // the front of the queue, and it is given requests again, up to its new capacity.
        try sender.send(sampler, .workRequest(WorkRequest.with { $0.worker = "sampler-a"; $0.capacity = 2 }))
        XCTAssertEqual(try received(sampler, pool), ["train-0", "train-2"])
        XCTAssertEqual(pool.pending.map(\.requestID), ["train-3", "train-4"])

        // A refusal puts the request at the back of the queue; a rollouts batch settles one.
        try sender.send(sampler, .error(ErrorReply.with { $0.messageID = "train-0"; $0.code = "sampling-failed"; $0.detail = "test" }))
        try sender.send(sampler, .rollouts(RolloutBatch.with { $0.requestID = "train-2" }))
        XCTAssertEqual(try received(sampler, pool, ms: 300), [])
        XCTAssertEqual(pool.pending.map(\.requestID), ["train-3", "train-4", "train-0"])
        XCTAssertTrue(pool.assigned.isEmpty)
    }

    /// Queued requests are dealt to idle samplers in turn: one that asked first does not take
    /// everything while another waits.
    func testQueuedRequestsAreSpreadOverIdleSamplers() throws {
        let context = try Context()
        defer { context.shutdown() }
        let endpoint = "inproc://sampler-pool-spread"
        let pool = try SamplerPool(context: context, endpoint: endpoint, heartbeatTimeoutMs: 60_000, name: "requester", log: Log(role: "test", instance: "0"))
        var samplers: [Socket] = []
        for name in ["sampler-a", "sampler-b"] {
            let socket = try Socket(context, .dealer)
            try socket.setRoutingID(Array(name.utf8))
            try socket.connect(endpoint)
            var sender = Sender(name: name)
            try sender.send(socket, .workRequest(WorkRequest.with { $0.worker = name; $0.capacity = 16 }))
            samplers.append(socket)
        }
        let deadline = nowMs() + 5_000
        while pool.samplerCount < 2 && nowMs() < deadline {
            _ = try pool.receive()
            usleep(5_000)
        }
        XCTAssertEqual(pool.samplerCount, 2)
        for i in 0..<5 { pool.enqueue(request(i)) }
        try pool.maintain(nowMs: nowMs())
        XCTAssertEqual(try received(samplers[0], pool, ms: 200), ["train-0", "train-2", "train-4"])
        XCTAssertEqual(try received(samplers[1], pool, ms: 200), ["train-1", "train-3"])
        XCTAssertTrue(pool.pending.isEmpty)
    }
}
