import CZeroMQ
import Foundation

/// The handshake events of one socket, through libzmq's socket monitor.
///
/// A client needs these to recover from a refusal: after a handshake that the server refused
/// (a CURVE key not on its allow-list) or that broke the protocol, libzmq closes the
/// connection for good and never reconnects, so the owner must notice and make a new socket.
/// Same thread rules as `Socket`: the monitor lives on the thread of the socket it watches.
public final class HandshakeMonitor {
    public enum Event: Equatable, Sendable, CustomStringConvertible {
        case succeeded
        /// The server's ZAP handler answered with this status (300, 400 or 500).
        case refused(status: UInt32)
        /// A protocol error (`ZMQ_PROTOCOL_ERROR_*`) or a system error (errno) in the handshake.
        case failed(String)

        public var description: String {
            switch self {
            case .succeeded: "handshake succeeded"
            case .refused(let status): "refused with ZAP status \(status)"
            case .failed(let why): why
            }
        }
    }

    let target: Socket
    let pair: Socket
    /// Poll this with the watched socket; `events()` then drains it.
    public var pollable: Socket { pair }

    public init(watching target: Socket) throws {
        let endpoint = "inproc://handshake-monitor-\(UUID().uuidString)"
        let events = ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
            | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL
        guard zmq_socket_monitor(target.handle, endpoint, events) == 0 else {
            throw ZMQError.last("zmq_socket_monitor", "\(target.type) socket")
        }
        self.target = target
        pair = try Socket(target.context, .pair)
        try pair.connect(endpoint)
    }

    deinit {
        zmq_socket_monitor(target.handle, nil, 0)
    }

    /// The events waiting, oldest first; never blocks.
    public func events() -> [Event] {
        var out: [Event] = []
        while let frames = try? pair.receive(dontWait: true) {
            guard let (id, value, _) = Self.decode(frames) else { continue }
            switch id {
            case ZMQ_EVENT_HANDSHAKE_SUCCEEDED: out.append(.succeeded)
            case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH: out.append(.refused(status: value))
            case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL: out.append(.failed("protocol error 0x\(String(value, radix: 16))"))
            case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL: out.append(.failed(String(cString: strerror(Int32(bitPattern: value)))))
            default: break
            }
        }
        return out
    }

    /// A monitor message: frame 1 holds a 16-bit event id and a 32-bit value (little-endian),
    /// frame 2 the endpoint.
    static func decode(_ frames: [[UInt8]]) -> (id: Int32, value: UInt32, address: String)? {
        guard frames.count >= 2, frames[0].count >= 6 else { return nil }
        let bytes = frames[0]
        let id = Int32(UInt16(bytes[0]) | UInt16(bytes[1]) << 8)
        let value = UInt32(bytes[2]) | UInt32(bytes[3]) << 8 | UInt32(bytes[4]) << 16 | UInt32(bytes[5]) << 24
        return (id, value, String(decoding: frames[1], as: UTF8.self))
    }
}
