import Foundation
import Schema
import Wire
import ZeroMQ
import Runtime

/// The requester's side of the samplers: the ROUTER socket they connect to, the queue of
/// sample requests, which sampler holds which request, and their liveness. The learner and
/// `coderl eval --samplers` both hand out work through it.
///
/// Samplers announce themselves with a `WorkRequest` when they hold nothing, saying how many
/// requests they take at once (they generate them as one batch; queued requests are dealt to
/// the idle samplers in turn, one each), and heart-beat the requests
/// they hold. A request goes back to the front of the queue when its sampler falls silent
/// (`heartbeatTimeoutMs`), restarts (asks for work while holding it) or refuses it; a
/// sampler restarted on the requester's side keeps working on what it held (its heartbeat
/// names the requests, which are adopted from the queue).
public final class SamplerPool {
    struct SamplerInfo {
        /// Requests it may still be given (its `WorkRequest`'s capacity less those sent since).
        var free = 0
        var lastSeenMs: UInt64
        /// Requests it holds.
        var held: Set<String> = []
    }

    /// What happened to a request.
    public enum Event {
        /// Programs returned to the requester (`reply_to_requester`); already acknowledged.
        case batch(RolloutBatch, sampler: String)
        /// The sampler finished the request (its programs went where the request said).
        case done(requestID: String, sampler: String)
        /// The sampler could not do it; the request was queued again.
        case refused(SampleRequest, sampler: String, code: String, detail: String)
    }

    public let socket: Socket
    public let endpoint: String
    public var heartbeatTimeoutMs: UInt64
    private var samplers: [String: SamplerInfo] = [:]
    public private(set) var pending: [SampleRequest] = []
    public private(set) var assigned: [String: (sampler: String, request: SampleRequest)] = [:]
    private var sender: Sender
    private let log: Log

    public init(context: Context, endpoint: String, heartbeatTimeoutMs: UInt64, name: String,
                security: LinkSecurity = .plain, log: Log) throws {
        socket = try Socket(context, .router)
        try socket.setLinger(.zero)
        try socket.setMaxMessageSize(MessageSizeLimit.requests)
        try security.serve(socket, .samples)
        try socket.bind(endpoint)
        self.endpoint = endpoint
        self.heartbeatTimeoutMs = heartbeatTimeoutMs
        self.log = log
        sender = Sender(name: name)
    }

    public var samplerCount: Int { samplers.count }

    /// Called just before a request is sent to a sampler, with the sampler's name and CURVE
    /// key (the learner records the request as issued, so that the labeler stores only
    /// answers to it). An error keeps the request queued.
    public var onAssign: ((SampleRequest, _ sampler: String, _ key: String?) throws -> Void)?
    /// The CURVE key each sampler last spoke with.
    private var keys: [String: String] = [:]

    /// Whether `id` is queued or held by a sampler.
    public func knows(_ id: String) -> Bool {
        assigned[id] != nil || pending.contains { $0.requestID == id }
    }

    public func enqueue(_ request: SampleRequest, front: Bool = false) {
        if front { pending.insert(request, at: 0) } else { pending.append(request) }
    }

    /// Counts every sampler as just heard from (after this process was busy elsewhere).
    public func touchAll(nowMs now: UInt64) {
        for name in samplers.keys { samplers[name]!.lastSeenMs = now }
    }

    /// Handles every message waiting on the socket.
    public func receive() throws -> [Event] {
        var events: [Event] = []
        while let incoming = try socket.receiveMessage(router: true) {
            if case .message(let peer?, _) = incoming, let key = socket.lastPeerKey {
                keys[String(decoding: peer, as: UTF8.self)] = key
            }
            if let e = try handle(incoming) { events.append(e) }
        }
        return events
    }

    /// Re-queues the requests of silent samplers and hands queued requests to idle ones;
    /// `prepare` may adjust a request just before it is sent (the learner sets the policy
    /// version of train requests).
    public func maintain(nowMs now: UInt64, prepare: (inout SampleRequest) -> Void = { _ in }) throws {
        for (name, info) in samplers where now > info.lastSeenMs + heartbeatTimeoutMs {
            log("sampler \(name) fell silent; its request goes to another")
            for id in info.held.sorted() {
                if let a = assigned.removeValue(forKey: id) { pending.insert(a.request, at: 0) }
            }
            samplers[name] = nil
            keys[name] = nil
        }
        // One request to each idle sampler in turn, so that work is spread over all of them
        // (a sampler that asks first must not take everything while another waits).
        var takers = samplers.keys.sorted().filter { samplers[$0]!.free > 0 }
        while !pending.isEmpty && !takers.isEmpty {
            for name in takers where !pending.isEmpty {
                var request = pending.removeFirst()
                prepare(&request)
                do {
                    try onAssign?(request, name, keys[name])
                } catch {
                    log("could not record \(request.requestID) as issued: \(error); it stays queued")
                    pending.insert(request, at: 0)
                    return
                }
                try sender.send(socket, .sampleRequest(request), to: Array(name.utf8))
                samplers[name]!.free -= 1
                samplers[name]!.held.insert(request.requestID)
                assigned[request.requestID] = (name, request)
            }
            takers.removeAll { samplers[$0]!.free == 0 }
        }
    }

    private func handle(_ incoming: Incoming) throws -> Event? {
        guard case .message(let peer, let message) = incoming else {
            if case .rejected(_, let reason) = incoming { log("bad message from a sampler: \(reason)") }
            return nil
        }
        let name = String(decoding: peer ?? [], as: UTF8.self)
        let now = nowMs()
        samplers[name, default: SamplerInfo(lastSeenMs: now)].lastSeenMs = now
        switch message.body {
        case .workRequest(let work):
            for id in samplers[name]!.held.sorted().reversed() {
                // It asks for work while we think it holds a request: it restarted.
                if let a = assigned[id], a.sampler == name {
                    assigned[id] = nil
                    pending.insert(a.request, at: 0)
                }
            }
            samplers[name]!.free = Int(min(work.capacity, 256))
            samplers[name]!.held = []
        case .heartbeat(let beat):
            for id in beat.jobIds where assigned[id] == nil {
                // A request from before a restart of ours, still being worked on: adopt it.
                if let i = pending.firstIndex(where: { $0.requestID == id }) {
                    assigned[id] = (name, pending.remove(at: i))
                }
                samplers[name]!.held.insert(id)
                samplers[name]!.free = 0
            }
        case .rollouts(let batch):
            // Acknowledged even when already settled: the first acknowledgement may have been lost.
            try sender.send(socket, .ack(Ack.with { $0.messageID = message.envelope.messageID }), to: peer)
            // A late answer from a sampler thought silent is as good as the re-issued one.
            let queued = pending.firstIndex { $0.requestID == batch.requestID }
            if let queued { pending.remove(at: queued) }
            if assigned.removeValue(forKey: batch.requestID) != nil || queued != nil {
                samplers[name]!.held.remove(batch.requestID)
                return .batch(batch, sampler: name)
            }
        case .ack(let ack):
            samplers[name]!.held.remove(ack.messageID)
            if assigned.removeValue(forKey: ack.messageID) != nil { return .done(requestID: ack.messageID, sampler: name) }
        case .error(let reply):
            guard reply.code != "busy", let a = assigned.removeValue(forKey: reply.messageID) else { return nil }
            log("sampler \(name) could not do \(reply.messageID): \(reply.code): \(reply.detail)")
            samplers[name]!.held.remove(reply.messageID)
            pending.append(a.request)
            return .refused(a.request, sampler: name, code: reply.code, detail: reply.detail)
        default:
            log("sampler \(name) sent \(WireCodec.bodyName(message.body)); ignored")
        }
        return nil
    }
}
