import Foundation
import Runtime
import ZeroMQ

/// CURVE on the pipeline's links. Every server socket of the head (the param-store's requests
/// and announcements, the learner's sample requests, the labeler's rollouts and executors)
/// holds the head's key pair and names its link as its ZAP domain; each process's ZAP handler
/// lets a client in only if its public key is on that link's list:
///
/// | link (domain) | server | clients accepted |
/// | --- | --- | --- |
/// | `params` | param-store (ROUTER and PUB) | learner, labeler, samplers |
/// | `samples` | learner | samplers |
/// | `rollouts` | labeler | samplers |
/// | `executors` | labeler | executors |
///
/// Samplers and executors are the run's local ones (their keys are in the keys directory) and
/// those listed in `security.sampler_allow` and `endpoints.executor_allow` (files re-read when
/// they change). A plain client, or one whose key is not listed, gets no connection, and the
/// server's log says who was refused. On top of the handshake, the param-store takes new
/// versions only from the learner's key.
///
/// The keys directory (RUN/keys by default) holds one key pair per file: `head.key` (every
/// server socket), `learner.key`, `labeler.key`, `sampler.key` and `local-executor.key` (the
/// local processes' client keys), and `head.pub`, the head's public key alone. `coderl run`
/// makes them once; a role started by hand makes what is missing.
public struct LinkSecurity: Sendable {
    public enum Link: String, Sendable, CaseIterable {
        case params, samples, rollouts, executors
    }

    public enum Role: String, Sendable {
        case paramStore = "param-store", learner, labeler, sampler
    }

    /// The key pair of this process's server sockets (nil: it serves nothing, or CURVE is off).
    public var serverKeys: CurveKeyPair?
    /// The key pair of the executor link's server, when it differs from the head's
    /// (`endpoints.executor_key_file`).
    public var executorServerKeys: CurveKeyPair?
    /// This process's key pair as a client.
    public var clientKeys: CurveKeyPair?
    /// The public key of the head's server sockets.
    public var serverPublicKey: String?
    /// Who may connect to each link this process serves.
    public var clients: [Link: ZAPAuthenticator.Clients] = [:]
    /// The learner's public key: the only client the param-store takes new versions from.
    public var learnerKey: String?

    /// No CURVE: plain TCP on every socket.
    public static let plain = LinkSecurity()

    public init() {}

    public var isOn: Bool { clientKeys != nil || serverKeys != nil }

    static func keyFile(_ directory: String, _ name: String) -> String { directory + "/" + name + ".key" }

    /// Makes every key pair of a run that is missing (`coderl run` calls this before starting
    /// the roles).
    public static func makeKeys(_ config: PipelineConfig) throws {
        guard config.security.curve else { return }
        for name in ["head", "learner", "labeler", "sampler", "local-executor"] {
            _ = try CurveKeyPair.loadOrCreate(file: keyFile(config.keysPath, name))
        }
        // The head's public key alone, for the machines that join (executors, samplers).
        let head = try CurveKeyPair.read(file: keyFile(config.keysPath, "head"))
        try (head.publicKey + "\n").write(toFile: config.keysPath + "/head.pub", atomically: true, encoding: .utf8)
        if !config.endpoints.executorKeyFile.isEmpty {
            _ = try CurveKeyPair.loadOrCreate(file: config.endpoints.executorKeyFile)
        }
    }

    /// The local executors' key file and the public key they must see on the executor link.
    public static func localExecutor(_ config: PipelineConfig) throws -> (keyFile: String, serverKey: String)? {
        guard config.security.curve else { return nil }
        let server = config.endpoints.executorKeyFile.isEmpty ? keyFile(config.keysPath, "head") : config.endpoints.executorKeyFile
        return (keyFile(config.keysPath, "local-executor"), try CurveKeyPair.loadOrCreate(file: server).publicKey)
    }

    /// What `role` needs from the configuration (key pairs are made when missing).
    public init(config: PipelineConfig, role: Role) throws {
        guard config.security.curve else { return }
        let directory = config.keysPath
        func pair(_ name: String) throws -> CurveKeyPair { try CurveKeyPair.loadOrCreate(file: Self.keyFile(directory, name)) }
        func allowFile(_ path: String) -> String? { path.isEmpty ? nil : path }
        switch role {
        case .sampler:
            clientKeys = try CurveKeyPair.loadOrCreate(file: config.security.keyFile.isEmpty ? Self.keyFile(directory, "sampler") : config.security.keyFile)
            if !config.security.serverKey.isEmpty {
                guard CurveKeyPair.isValidKey(config.security.serverKey) else {
                    throw CurveError.badKey(name: "security.server_key", key: config.security.serverKey)
                }
                serverPublicKey = config.security.serverKey
            } else {
                let head = Self.keyFile(directory, "head")
                guard FileManager.default.fileExists(atPath: head) else {
                    throw CurveError.keyFile(path: head, reason: "missing: a sampler on another machine needs the head's public key (--set security.server_key=...) or security.curve=false on every machine")
                }
                serverPublicKey = try CurveKeyPair.read(file: head).publicKey
            }
            return
        case .paramStore, .learner, .labeler:
            let head = try pair("head")
            serverKeys = head
            serverPublicKey = head.publicKey
        }
        let sampler = try pair("sampler").publicKey
        let samplers = ZAPAuthenticator.Clients(keys: [sampler], file: allowFile(config.security.samplerAllowList))
        switch role {
        case .paramStore:
            let learner = try pair("learner").publicKey
            learnerKey = learner
            clients[.params] = ZAPAuthenticator.Clients(keys: [learner, try pair("labeler").publicKey, sampler],
                                                        file: allowFile(config.security.samplerAllowList))
        case .learner:
            clientKeys = try pair("learner")
            clients[.samples] = samplers
        case .labeler:
            clientKeys = try pair("labeler")
            clients[.rollouts] = samplers
            clients[.executors] = ZAPAuthenticator.Clients(keys: [try pair("local-executor").publicKey],
                                                           file: allowFile(config.endpoints.executorAllowList))
            if !config.endpoints.executorKeyFile.isEmpty {
                executorServerKeys = try CurveKeyPair.loadOrCreate(file: config.endpoints.executorKeyFile)
            }
        case .sampler:
            break
        }
    }

    /// The ZAP handler for this process's server sockets (nil when it serves nothing with
    /// CURVE). Keep it for as long as the sockets serve.
    public func authenticator(context: Context, log: @escaping @Sendable (String) -> Void) throws -> ZAPAuthenticator? {
        guard serverKeys != nil, !clients.isEmpty else { return nil }
        var domains: [String: ZAPAuthenticator.Clients] = [:]
        for (link, allowed) in clients { domains[link.rawValue] = allowed }
        return try ZAPAuthenticator(context: context, domains: domains, log: log)
    }

    /// Logs the clients this process's server sockets turn away in the handshake (plain
    /// clients; refusals by key are logged by the authenticator). Keep it while they serve.
    public func watch(context: Context, _ sockets: [(Socket, Link)], log: @escaping @Sendable (String) -> Void) throws -> HandshakeLog? {
        guard serverKeys != nil else { return nil }
        return try HandshakeLog(context: context, watching: sockets.map { ($0.0, "link '\($0.1.rawValue)'") }, log: log)
    }

    /// Makes a binding socket the CURVE server of `link` (before it binds).
    public func serve(_ socket: Socket, _ link: Link) throws {
        let keys = link == .executors ? (executorServerKeys ?? serverKeys) : serverKeys
        guard let keys else { return }
        try socket.makeCurveServer(keys: keys, domain: link.rawValue)
    }

    /// Makes a connecting socket a CURVE client of the head (before it connects).
    public func connect(_ socket: Socket) throws {
        guard let clientKeys, let serverPublicKey else { return }
        try socket.makeCurveClient(keys: clientKeys, serverKey: serverPublicKey)
    }

    /// One line for the log: what this process's links use.
    public var summary: String {
        guard isOn else { return "links: plain TCP (security.curve is false): any local user can join this run" }
        var parts: [String] = []
        if let serverKeys { parts.append("head key \(serverKeys.publicKey)") }
        if let clientKeys { parts.append("client key \(clientKeys.publicKey)") }
        return "links: CURVE (\(parts.joined(separator: ", ")))"
    }
}

/// The largest message each kind of socket accepts (libzmq drops a peer that sends more).
public enum MessageSizeLimit {
    /// A server socket taking requests, rollouts, verdicts and heartbeats.
    public static let requests: Int64 = 16 << 20
    /// The param-store's request socket: requests and announcements only.
    public static let paramRequests: Int64 = 1 << 20
    /// A client receiving weight chunks or execution jobs (suites can be large).
    public static let replies: Int64 = 300 << 20
}
