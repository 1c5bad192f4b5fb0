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
///
/// With an allow-list file, the file is watched: before each decision the handler compares
/// the file's inode, size and modification time with what it last read, and re-reads it when
/// they differ, so machines are added (or removed) while the server runs. A file that cannot
/// be read or has a bad line leaves the previous list in force, and the log says why. Keys
/// passed in `allowedClientKeys` or `allow(_:)` stay allowed whatever the file says. Removing
/// a key refuses that client's next handshake; a connection already made stays up.
public final class ZAPAuthenticator: Sendable {
    /// What the handler thread shares with the owner; the thread holds only this, so
    /// dropping the authenticator stops it.
    final class State: Sendable {
        let domains: [String: Domain]
        let running = Atomic<Bool>(true)
        let finished = DispatchSemaphore(value: 0)
        let log: (@Sendable (String) -> Void)?
        let tally = Mutex<(accepted: Int, refused: Int)>((0, 0))

        init(domains: [String: Domain], log: (@Sendable (String) -> Void)?) {
            self.domains = domains
            self.log = log
        }
    }

    /// One ZAP domain (a server socket, or several sharing an allow-list): keys given in code
    /// and an optional watched file.
    final class Domain: Sendable {
        let allowed: Mutex<Set<String>>
        let file: WatchedAllowList?

        init(allowed: Set<String>, file: WatchedAllowList?) {
            self.allowed = Mutex(allowed)
            self.file = file
        }

        func isAllowed(_ key: String, log: (@Sendable (String) -> Void)?) -> Bool {
            if allowed.withLock({ $0.contains(key) }) { return true }
            guard let file else { return false }
            file.refresh(log: log)
            return file.contains(key)
        }
    }

    /// Who may connect to the server sockets of one ZAP domain: these public keys, and those
    /// listed in `file` (read at start, where a bad file is an error, and watched).
    public struct Clients: Sendable {
        public var keys: [String]
        public var file: String?
        public init(keys: [String], file: String? = nil) {
            self.keys = keys
            self.file = file
        }
    }

    private let state: State
    /// The domain when there is one (the single-domain initialiser).
    public let domain: String

    /// `allowedClientKeys` are Z85 public keys; `allowListFile` (one key per line, see
    /// `CurveKeyPair.readAllowList`) is read now, where a bad file is an error, and watched
    /// from then on. `log` receives one line per refusal and per reload of the file.
    public convenience init(context: Context, domain: String = "coderl", allowedClientKeys: [String],
                            allowListFile: String? = nil, log: (@Sendable (String) -> Void)? = nil) throws {
        try self.init(context: context, domains: [domain: Clients(keys: allowedClientKeys, file: allowListFile)], log: log)
    }

    /// One handler for every CURVE server socket of the context, each naming its domain
    /// (`makeCurveServer(keys:domain:)`): a client gets in only if its key is allowed in the
    /// domain of the socket it connects to. A request for any other domain is refused.
    public init(context: Context, domains: [String: Clients], log: (@Sendable (String) -> Void)? = nil) throws {
        var built: [String: Domain] = [:]
        for (name, clients) in domains {
            for key in clients.keys where !CurveKeyPair.isValidKey(key) {
                throw CurveError.badKey(name: "allowed client key of domain '\(name)'", key: key)
            }
            built[name] = Domain(allowed: Set(clients.keys), file: try clients.file.map { try WatchedAllowList(path: $0) })
        }
        // The socket is made and bound here so a failure (a second handler on the context) is
        // reported to the caller before anything starts; the handler thread then owns it.
        let socket = try Socket(context, .rep)
        try socket.bind(ZAPAuthenticator.endpoint)
        let state = State(domains: built, log: log)
        self.state = state
        self.domain = domains.count == 1 ? domains.keys.first! : ""
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

    /// Allows `key` in `domain` (default: the only domain).
    public func allow(_ key: String, domain: String? = nil) throws {
        guard CurveKeyPair.isValidKey(key) else { throw CurveError.badKey(name: "allowed client key", key: key) }
        _ = state.domains[domain ?? self.domain]?.allowed.withLock { $0.insert(key) }
    }

    public func revoke(_ key: String, domain: String? = nil) {
        _ = state.domains[domain ?? self.domain]?.allowed.withLock { $0.remove(key) }
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
        guard let domain = state.domains[requestDomain] else { return refuse("unknown domain '\(requestDomain)'") }
        guard mechanism == "CURVE", request.count >= 7, let key = CurveKeyPair.encode(request[6]) else {
            return refuse("only CURVE clients are accepted (domain '\(requestDomain)')")
        }
        guard domain.isAllowed(key, log: state.log) else {
            return refuse("client key \(key) is not on the allow-list of domain '\(requestDomain)'")
        }
        state.tally.withLock { $0.accepted += 1 }
        return reply("200", "OK", user: key)
    }
}

/// An allow-list file and the keys last read from it, re-read when the file changes (a new
/// inode, size or modification time). Used by the handler thread only, but kept behind a lock
/// so that tests and owners may ask too.
final class WatchedAllowList: Sendable {
    struct Stamp: Equatable { var inode: UInt64; var size: Int64; var modified: Int64 }
    let path: String
    private let current: Mutex<(stamp: Stamp?, keys: Set<String>)>

    /// Reads the file; a missing file or a bad line is an error here (at start-up).
    init(path: String) throws {
        self.path = path
        let stamp = WatchedAllowList.stamp(path)
        current = Mutex((stamp, Set(try CurveKeyPair.readAllowList(file: path))))
    }

    static func stamp(_ path: String) -> Stamp? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return Stamp(inode: UInt64(info.st_ino), size: Int64(info.st_size),
                     modified: Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec))
    }

    func contains(_ key: String) -> Bool { current.withLock { $0.keys.contains(key) } }

    /// Re-reads the file if it changed since the last look. A failure keeps the old keys and
    /// is logged once per change of the file.
    func refresh(log: (@Sendable (String) -> Void)?) {
        let now = WatchedAllowList.stamp(path)
        let message: String? = current.withLock { state in
            guard now != state.stamp else { return nil }
            state.stamp = now
            guard now != nil else { return "allow-list \(path) is gone; keeping its last \(state.keys.count) key(s)" }
            do {
                let keys = Set(try CurveKeyPair.readAllowList(file: path))
                let added = keys.subtracting(state.keys).count, removed = state.keys.subtracting(keys).count
                state.keys = keys
                return "allow-list \(path) re-read: \(keys.count) key(s), \(added) added, \(removed) removed"
            } catch {
                return "allow-list \(path) not re-read (\(error)); keeping its last \(state.keys.count) key(s)"
            }
        }
        if let message { log?(message) }
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
