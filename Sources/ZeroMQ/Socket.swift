import CZeroMQ
import Foundation

public enum SocketType: Int32, Sendable {
    case pair = 0, pub = 1, sub = 2, req = 3, rep = 4, dealer = 5, router = 6, pull = 7, push = 8
}

/// One ZeroMQ socket. Owns its handle and keeps its context alive.
///
/// Not `Sendable`: libzmq sockets must stay on the thread that uses them (libzmq's rule), so the
/// compiler refuses to move one to another task or thread.
public final class Socket {
    public let context: Context
    public let type: SocketType
    let handle: UnsafeMutableRawPointer
    private var label: String
    /// The CURVE public key (Z85) of the peer that sent the last message received, as this
    /// context's ZAP handler accepted it; nil on a socket without CURVE.
    public private(set) var lastPeerKey: String?

    /// A socket with linger 0 (pending messages are dropped at close, so shutdown never waits).
    public init(_ context: Context, _ type: SocketType) throws {
        guard let handle = zmq_socket(context.handle, type.rawValue) else {
            throw ZMQError.last("zmq_socket", "\(type) socket")
        }
        self.context = context
        self.type = type
        self.handle = handle
        self.label = "\(type) socket"
        try setOption(ZMQ_LINGER, Int32(0), name: "ZMQ_LINGER")
    }

    deinit {
        zmq_close(handle)
    }

    // MARK: Endpoints

    public func bind(_ endpoint: String) throws {
        try retrying("zmq_bind", "\(label) at \(endpoint)") { zmq_bind(handle, endpoint) }
        label = "\(type) socket bound to \(lastEndpoint ?? endpoint)"
    }

    public func connect(_ endpoint: String) throws {
        try retrying("zmq_connect", "\(label) to \(endpoint)") { zmq_connect(handle, endpoint) }
        label = "\(type) socket connected to \(endpoint)"
    }

    public func unbind(_ endpoint: String) throws {
        try retrying("zmq_unbind", "\(label) from \(endpoint)") { zmq_unbind(handle, endpoint) }
    }

    public func disconnect(_ endpoint: String) throws {
        try retrying("zmq_disconnect", "\(label) from \(endpoint)") { zmq_disconnect(handle, endpoint) }
    }

    /// The endpoint actually bound (resolves `tcp://127.0.0.1:*` to its port).
    public var lastEndpoint: String? {
        guard let text = try? stringOption(ZMQ_LAST_ENDPOINT, name: "ZMQ_LAST_ENDPOINT"), !text.isEmpty else { return nil }
        return text
    }

    // MARK: Sending and receiving

    /// Sends one multipart message. With `dontWait`, throws `.wouldBlock` instead of waiting
    /// when the peer's queue is full; otherwise waits up to the send timeout.
    public func send(_ frames: [[UInt8]], dontWait: Bool = false) throws {
        precondition(!frames.isEmpty, "a ZeroMQ message has at least one frame")
        for (index, frame) in frames.enumerated() {
            try send(frame: frame, more: index < frames.count - 1, dontWait: dontWait)
        }
    }

    /// Sends one frame from any contiguous bytes (no intermediate array for bulk payloads).
    public func send(frame: some ContiguousBytes, more: Bool, dontWait: Bool = false) throws {
        var flags: Int32 = 0
        if more { flags |= ZMQ_SNDMORE }
        if dontWait { flags |= ZMQ_DONTWAIT }
        try frame.withUnsafeBytes { raw in
            _ = try retrying("zmq_send", label) { zmq_send(handle, raw.baseAddress, raw.count, flags) }
        }
    }

    /// Receives one whole multipart message through `zmq_msg_t` (any frame size), or throws
    /// `.wouldBlock` when the receive timeout passes (or at once, with `dontWait`). A message
    /// with more than `maxFrames` frames is read to its end and refused.
    public func receive(dontWait: Bool = false, maxFrames: Int = 64) throws -> [[UInt8]] {
        try receive(dontWait: dontWait, maxFrames: maxFrames) { frames in frames.map { Array($0) } }
    }

    /// Receives one whole multipart message and lends its frames to `body` in place, without
    /// copying them (for bulk payloads). The buffers are valid only during `body`.
    public func receive<R>(dontWait: Bool = false, maxFrames: Int = 64,
                           _ body: ([UnsafeRawBufferPointer]) throws -> R) throws -> R {
        // zmq_msg_t keeps small frames inline, so the messages must not move while lent.
        // One slot more than kept: frames past the limit are received there and dropped.
        try withUnsafeTemporaryAllocation(of: zmq_msg_t.self, capacity: maxFrames + 1) { buffer in
            let messages = buffer.baseAddress!
            var count = 0
            defer {
                for i in 0..<count { zmq_msg_close(&messages[i]) }
            }
            // Only the first frame may time out: once it has arrived, the rest is already here.
            var flags: Int32 = dontWait ? ZMQ_DONTWAIT : 0
            var dropped = 0
            var more = true
            lastPeerKey = nil
            while more {
                let slot = messages + min(count, maxFrames)
                zmq_msg_init(slot)
                do {
                    try retrying("zmq_msg_recv", label) { zmq_msg_recv(slot, handle, flags) }
                } catch {
                    zmq_msg_close(slot)
                    throw error
                }
                // A ROUTER's first frame (the routing id) carries no metadata: the first
                // frame that does names the peer.
                if count + dropped <= 1, lastPeerKey == nil, let id = zmq_msg_gets(slot, "User-Id"), id.pointee != 0 {
                    lastPeerKey = String(cString: id)
                }
                flags = 0
                more = zmq_msg_more(slot) != 0
                if count < maxFrames { count += 1 } else { dropped += 1; zmq_msg_close(slot) }
            }
            if dropped > 0 { throw FrameLimitExceeded(frames: count + dropped, limit: maxFrames, socket: label) }
            let frames = (0..<count).map { UnsafeRawBufferPointer(start: zmq_msg_data(&messages[$0]), count: zmq_msg_size(&messages[$0])) }
            return try body(frames)
        }
    }

    /// Waits up to `timeout` (nil: forever) for a message; returns whether one can be read.
    public func waitForMessage(timeout: Duration?) throws -> Bool {
        try Poller.poll([self], timeout: timeout)[0]
    }

    // MARK: Options

    /// How long a blocking receive waits before failing with `.wouldBlock`; nil waits forever.
    public func setReceiveTimeout(_ timeout: Duration?) throws {
        try setOption(ZMQ_RCVTIMEO, timeout.map(Socket.milliseconds) ?? -1, name: "ZMQ_RCVTIMEO")
    }

    /// How long a blocking send waits for queue space before failing with `.wouldBlock`.
    public func setSendTimeout(_ timeout: Duration?) throws {
        try setOption(ZMQ_SNDTIMEO, timeout.map(Socket.milliseconds) ?? -1, name: "ZMQ_SNDTIMEO")
    }

    /// How long close keeps unsent messages (default here: 0, drop them).
    public func setLinger(_ duration: Duration) throws {
        try setOption(ZMQ_LINGER, Socket.milliseconds(duration), name: "ZMQ_LINGER")
    }

    /// Queue limits in messages (0: unlimited).
    public func setHighWaterMarks(send: Int32, receive: Int32) throws {
        try setOption(ZMQ_SNDHWM, send, name: "ZMQ_SNDHWM")
        try setOption(ZMQ_RCVHWM, receive, name: "ZMQ_RCVHWM")
    }

    /// Peers sending a frame larger than this are disconnected by libzmq.
    public func setMaxMessageSize(_ bytes: Int64) throws {
        var value = bytes
        try retrying("zmq_setsockopt(ZMQ_MAXMSGSIZE)", label) {
            zmq_setsockopt(handle, ZMQ_MAXMSGSIZE, &value, MemoryLayout<Int64>.size)
        }
    }

    /// The identity a ROUTER peer sees for this socket.
    public func setRoutingID(_ id: [UInt8]) throws {
        try setOption(ZMQ_ROUTING_ID, id, name: "ZMQ_ROUTING_ID")
    }

    /// ROUTER: fail with EHOSTUNREACH instead of silently dropping messages to unknown peers.
    public func setRouterMandatory(_ on: Bool) throws {
        try setOption(ZMQ_ROUTER_MANDATORY, on ? 1 : 0, name: "ZMQ_ROUTER_MANDATORY")
    }

    /// Queue messages only to completed connections.
    public func setImmediate(_ on: Bool) throws {
        try setOption(ZMQ_IMMEDIATE, on ? 1 : 0, name: "ZMQ_IMMEDIATE")
    }

    /// ZMTP heartbeats: a peer silent for `timeout` is disconnected.
    public func setHeartbeat(interval: Duration, timeout: Duration) throws {
        try setOption(ZMQ_HEARTBEAT_IVL, Socket.milliseconds(interval), name: "ZMQ_HEARTBEAT_IVL")
        try setOption(ZMQ_HEARTBEAT_TIMEOUT, Socket.milliseconds(timeout), name: "ZMQ_HEARTBEAT_TIMEOUT")
    }

    /// SUB: receive messages starting with `prefix` (empty: all).
    public func subscribe(_ prefix: [UInt8] = []) throws {
        try setOption(ZMQ_SUBSCRIBE, prefix, name: "ZMQ_SUBSCRIBE")
    }

    func setOption(_ option: Int32, _ value: Int32, name: String) throws {
        var value = value
        try retrying("zmq_setsockopt(\(name))", label) { zmq_setsockopt(handle, option, &value, MemoryLayout<Int32>.size) }
    }

    func setOption(_ option: Int32, _ bytes: [UInt8], name: String) throws {
        try bytes.withUnsafeBytes { raw in
            _ = try retrying("zmq_setsockopt(\(name))", label) { zmq_setsockopt(handle, option, raw.baseAddress, raw.count) }
        }
    }

    func intOption(_ option: Int32, name: String) throws -> Int32 {
        var value: Int32 = 0
        var size = MemoryLayout<Int32>.size
        try retrying("zmq_getsockopt(\(name))", label) { zmq_getsockopt(handle, option, &value, &size) }
        return value
    }

    func stringOption(_ option: Int32, name: String) throws -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        var size = buffer.count
        try retrying("zmq_getsockopt(\(name))", label) { zmq_getsockopt(handle, option, &buffer, &size) }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func milliseconds(_ duration: Duration) -> Int32 {
        let (seconds, attoseconds) = duration.components
        return Int32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000)
    }
}

/// A multipart message with more frames than the receiver accepts; it was read and dropped.
public struct FrameLimitExceeded: Error, CustomStringConvertible, Sendable {
    public let frames: Int
    public let limit: Int
    public let socket: String
    public var description: String { "message of \(frames) frames on \(socket) exceeds the limit of \(limit); it was dropped" }
}

public enum Poller {
    /// Waits until one of `sockets` can be read, or `timeout` passes (nil: forever); returns
    /// which are readable.
    public static func poll(_ sockets: [Socket], timeout: Duration?) throws -> [Bool] {
        var items = sockets.map { zmq_pollitem_t(socket: $0.handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0) }
        let ms = timeout.map { Int(Socket.milliseconds($0)) } ?? -1
        try retrying("zmq_poll", "\(sockets.count) sockets") { zmq_poll(&items, Int32(items.count), ms) }
        return items.map { $0.revents & Int16(ZMQ_POLLIN) != 0 }
    }
}
