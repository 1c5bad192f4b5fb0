import CZeroMQ
import Foundation
import Synchronization

/// A ZAP handler (RFC 27) for one context: answers libzmq's authentication requests on
/// `inproc://zeromq.zap.01`, letting in CURVE clients whose public key is on the allow-list
/// and refusing every other client and mechanism.
///
/// It runs on its own thread with its own socket; `stop()` (or deinit) ends it within one
/// poll interval. Start it before any CURVE server socket accepts connections: without a
/// handler libzmq lets every client with a valid handshake in.
public final class ZAPAuthenticator: Sendable {
    /// What the handler thread shares with the owner; the thread holds only this, so
    /// dropping the authenticator stops it.
    final class State: Sendable {
        let domain: String
        let allowed: Mutex<Set<String>>
        let running = Atomic<Bool>(true)
        let finished = DispatchSemaphore(value: 0)
        let log: (@Sendable (String) -> Void)?
        let tally = Mutex<(accepted: Int, refused: Int)>((0, 0))

        init(domain: String, allowed: Set<String>, log: (@Sendable (String) -> Void)?) {
            self.domain = domain
            self.allowed = Mutex(allowed)
            self.log = log
        }
    }

    private let state: State
    public var domain: String { state.domain }

    /// `allowedClientKeys` are Z85 public keys. `log` receives one line per refusal.
    public init(context: Context, domain: String = "coderl", allowedClientKeys: [String],
                log: (@Sendable (String) -> Void)? = nil) throws {
        for key in allowedClientKeys where !CurveKeyPair.isValidKey(key) {
            throw CurveError.badKey(name: "allowed client key", key: key)
        }
        // The socket is made and bound here so a failure (a second handler on the context) is
        // reported to the caller before anything starts; the handler thread then owns it.
        let socket = try Socket(context, .rep)
        try socket.bind(ZAPAuthenticator.endpoint)
        let state = State(domain: domain, allowed: Set(allowedClientKeys), log: log)
        self.state = state
        let box = SocketHandoff(socket)
        Thread.detachNewThread {
            ZAPAuthenticator.run(box, state)
            // Signalled only after `run` returned, so the socket is closed and the inproc
            // endpoint free when `stop()` returns.
            state.finished.signal()
        }
    }

    private static func run(_ box: SocketHandoff, _ state: State) {
        guard let socket = box.take() else { return }
        serve(socket, state)
        // zmq_close frees an inproc endpoint only when libzmq's reaper thread gets to the
        // socket, later; unbinding frees it now, so a new handler can bind at once.
        try? socket.unbind(endpoint)
    }

    static let endpoint = "inproc://zeromq.zap.01"

    deinit { stop() }

    public func allow(_ key: String) throws {
        guard CurveKeyPair.isValidKey(key) else { throw CurveError.badKey(name: "allowed client key", key: key) }
        _ = state.allowed.withLock { $0.insert(key) }
    }

    public func revoke(_ key: String) {
        _ = state.allowed.withLock { $0.remove(key) }
    }

    /// Decisions made so far, for tests and metrics.
    public var decisions: (accepted: Int, refused: Int) { state.tally.withLock { $0 } }

    /// Stops the handler thread and closes its socket; returns once it has.
    public func stop() {
        if state.running.exchange(false, ordering: .acquiringAndReleasing) {
            state.finished.wait()
        }
    }

    private static func serve(_ socket: Socket, _ state: State) {
        while state.running.load(ordering: .acquiring) {
            do {
                guard try socket.waitForMessage(timeout: .milliseconds(50)) else { continue }
                let request = try socket.receive()
                try socket.send(answer(request, state))
            } catch let error as ZMQError where error.kind == .terminated {
                return
            } catch {
                state.log?("ZAP handler: \(error)")
            }
        }
    }

    /// Request frames: version, request id, domain, address, identity, mechanism, credentials.
    private static func answer(_ request: [[UInt8]], _ state: State) -> [[UInt8]] {
        func reply(_ code: String, _ text: String, user: String = "") -> [[UInt8]] {
            [Array("1.0".utf8), request.count > 1 ? request[1] : [], Array(code.utf8), Array(text.utf8), Array(user.utf8), []]
        }
        guard request.count >= 6, String(decoding: request[0], as: UTF8.self) == "1.0" else {
            return reply("500", "malformed ZAP request")
        }
        let requestDomain = String(decoding: request[2], as: UTF8.self)
        let address = String(decoding: request[3], as: UTF8.self)
        let mechanism = String(decoding: request[5], as: UTF8.self)
        func refuse(_ why: String) -> [[UInt8]] {
            state.tally.withLock { $0.refused += 1 }
            state.log?("refused \(mechanism) client from \(address): \(why)")
            return reply("400", why)
        }
        guard requestDomain == state.domain else { return refuse("unknown domain '\(requestDomain)'") }
        guard mechanism == "CURVE", request.count >= 7, let key = CurveKeyPair.encode(request[6]) else {
            return refuse("only CURVE clients are accepted")
        }
        guard state.allowed.withLock({ $0.contains(key) }) else { return refuse("client key \(key) is not on the allow-list") }
        state.tally.withLock { $0.accepted += 1 }
        return reply("200", "OK", user: key)
    }
}

/// Hands a socket to the one thread that uses it from then on (libzmq allows moving a socket
/// between threads with a full memory barrier, which starting the thread provides). `take`
/// leaves no reference behind, so the socket closes when that thread lets go of it.
public final class SocketHandoff: @unchecked Sendable {  // `socket` is touched by the creator before the thread starts and once by the taker
    private var socket: Socket?
    public init(_ socket: Socket) { self.socket = socket }
    public func take() -> Socket? {
        defer { socket = nil }
        return socket
    }
}
