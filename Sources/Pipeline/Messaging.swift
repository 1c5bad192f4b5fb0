import Foundation
import Schema
import Wire
import ZeroMQ

/// Sends envelopes with ids `<sender>-<n>` on one socket (ROUTER replies name their peer).
public struct Sender {
    public let name: String
    private var counter = 0

    public init(name: String) { self.name = name }

    @discardableResult
    public mutating func send(_ socket: Socket, _ body: Envelope.OneOf_Body, to peer: [UInt8]? = nil,
                              payload: [UInt8]? = nil, id: String? = nil) throws -> String {
        counter += 1
        let messageID = id ?? "\(name)-\(counter)"
        let frames = try WireCodec.encode(body, id: messageID, sender: name, payload: payload)
        try socket.send(peer.map { [$0] + frames } ?? frames)
        return messageID
    }
}

/// A received message: who sent it (ROUTER sockets) and the decoded body, or why it was refused.
public enum Incoming {
    case message(peer: [UInt8]?, WireCodec.Message)
    case rejected(peer: [UInt8]?, reason: String)
}

extension Socket {
    /// Receives one message without waiting (nil when none is queued). On a ROUTER the first
    /// frame is the peer's routing id. Malformed input is returned as `.rejected`, never thrown.
    public func receiveMessage(router: Bool, limits: WireCodec.Limits = WireCodec.Limits()) throws -> Incoming? {
        let frames: [[UInt8]]
        do {
            frames = try receive(dontWait: true)
        } catch let error as ZMQError where error.kind == .wouldBlock {
            return nil
        } catch let error as FrameLimitExceeded {
            return .rejected(peer: nil, reason: "\(error)")
        }
        var body = frames[...]
        var peer: [UInt8]? = nil
        if router {
            guard let first = body.first else { return .rejected(peer: nil, reason: "no frames") }
            peer = first
            body = body.dropFirst()
        }
        do {
            return .message(peer: peer, try WireCodec.decode(Array(body), limits: limits))
        } catch {
            return .rejected(peer: peer, reason: "\(error)")
        }
    }
}

extension Duration {
    /// The duration in seconds, for messages and rates.
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// The monotonic clock in milliseconds, for leases and deadlines.
public func nowMs() -> UInt64 { DispatchTime.now().uptimeNanoseconds / 1_000_000 }

/// A stop flag set from signal handlers or other threads.
public final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    public init() {}
    public var isSet: Bool { lock.withLock { value } }
    public func set() { lock.withLock { value = true } }
}

/// Errors of pipeline roles, each naming what failed and why.
public struct PipelineError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
