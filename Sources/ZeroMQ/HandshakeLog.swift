import CZeroMQ
import Foundation
import Synchronization

/// Logs the clients a server's sockets turned away in the handshake, which the ZAP handler
/// never sees: a plain (unencrypted) client of a CURVE server fails on the mechanism before
/// any key is asked for. Refusals by key are logged by `ZAPAuthenticator`.
///
/// The monitors are set up on the caller's thread (where the watched sockets live); a thread of
/// its own reads their events from then on, until `stop()` or the context ends.
public final class HandshakeLog: Sendable {
    final class State: Sendable {
        let running = Atomic<Bool>(true)
        let finished = DispatchSemaphore(value: 0)
    }
    private let state = State()

    /// `sockets`: each watched socket with the name its log lines use (the link).
    public init(context: Context, watching sockets: [(Socket, String)], log: @escaping @Sendable (String) -> Void) throws {
        var pairs: [(SocketHandoff, String)] = []
        let events = ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL
        for (socket, name) in sockets {
            let endpoint = "inproc://handshake-log-\(UUID().uuidString)"
            guard zmq_socket_monitor(socket.handle, endpoint, events) == 0 else {
                throw ZMQError.last("zmq_socket_monitor", "\(socket.type) socket of \(name)")
            }
            let pair = try Socket(context, .pair)
            try pair.connect(endpoint)
            pairs.append((SocketHandoff(pair), name))
        }
        let state = state, handoffs = pairs
        Thread.detachNewThread {
            let watched = handoffs.compactMap { box, name in box.take().map { ($0, name) } }
            HandshakeLog.serve(watched, state, log)
            state.finished.signal()
        }
    }

    deinit { stop() }

    /// Stops the thread; returns once it has.
    public func stop() {
        if state.running.exchange(false, ordering: .acquiringAndReleasing) { state.finished.wait() }
    }

    private static func serve(_ watched: [(Socket, String)], _ state: State, _ log: @Sendable (String) -> Void) {
        let sockets = watched.map(\.0)
        while state.running.load(ordering: .acquiring) {
            guard let ready = try? Poller.poll(sockets, timeout: .milliseconds(100)) else { return }
            for (index, isReady) in ready.enumerated() where isReady {
                while let frames = try? sockets[index].receive(dontWait: true) {
                    guard let (id, value, address) = HandshakeMonitor.decode(frames) else { continue }
                    let why: String
                    if id == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL {
                        why = value == UInt32(ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
                            ? "not a CURVE client (a plain connection to an encrypted link)"
                            : "protocol error 0x\(String(value, radix: 16))"
                    } else {
                        why = "\(String(cString: strerror(Int32(bitPattern: value)))) (a plain client of an encrypted link, or a connection dropped mid-handshake)"
                    }
                    log("refused a client of \(watched[index].1) in the handshake (\(address)): \(why)")
                }
            }
        }
    }
}
