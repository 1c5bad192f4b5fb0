import CZeroMQ
import Foundation

/// A CURVE key pair in Z85 text (40 characters each), as ZeroMQ and its tools print them.
public struct CurveKeyPair: Sendable, Equatable, Codable {
    public let publicKey: String
    public let secretKey: String

    public init(publicKey: String, secretKey: String) throws {
        for (name, key) in [("public", publicKey), ("secret", secretKey)] where !CurveKeyPair.isValidKey(key) {
            throw CurveError.badKey(name: "\(name) key", key: key)
        }
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    public static func generate() throws -> CurveKeyPair {
        guard Context.has("curve") else { throw CurveError.unavailable }
        var publicKey = [CChar](repeating: 0, count: 41)
        var secretKey = [CChar](repeating: 0, count: 41)
        if zmq_curve_keypair(&publicKey, &secretKey) != 0 {
            throw ZMQError.last("zmq_curve_keypair", "a new key pair")
        }
        func text(_ chars: [CChar]) -> String { String(decoding: chars.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        return try CurveKeyPair(publicKey: text(publicKey), secretKey: text(secretKey))
    }

    /// 40 characters of the Z85 alphabet that decode to 32 bytes.
    public static func isValidKey(_ key: String) -> Bool {
        decode(key) != nil
    }

    /// The 32 raw bytes of a Z85 key.
    public static func decode(_ key: String) -> [UInt8]? {
        guard key.utf8.count == 40 else { return nil }
        var out = [UInt8](repeating: 0, count: 32)
        guard zmq_z85_decode(&out, key) != nil else { return nil }
        return out
    }

    public static func encode(_ raw: [UInt8]) -> String? {
        guard raw.count == 32 else { return nil }
        var text = [CChar](repeating: 0, count: 41)
        guard zmq_z85_encode(&text, raw, 32) != nil else { return nil }
        return String(decoding: text.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

public enum CurveError: Error, CustomStringConvertible, Equatable, Sendable {
    case unavailable
    case badKey(name: String, key: String)
    case keyFile(path: String, reason: String)

    public var description: String {
        switch self {
        case .unavailable: return "this libzmq was built without CURVE security (zmq_has(\"curve\") is false)"
        case let .badKey(name, key): return "the \(name) '\(key)' is not a 40-character Z85 CURVE key"
        case let .keyFile(path, reason): return "key file \(path): \(reason)"
        }
    }
}

extension Socket {
    /// Makes this (binding) socket a CURVE server: peers must complete the handshake, and a
    /// `ZAPAuthenticator` on the same context decides which client keys get in.
    public func makeCurveServer(keys: CurveKeyPair, domain: String = "coderl") throws {
        try setOption(ZMQ_CURVE_SERVER, 1, name: "ZMQ_CURVE_SERVER")
        try setOption(ZMQ_CURVE_SECRETKEY, Array(keys.secretKey.utf8), name: "ZMQ_CURVE_SECRETKEY")
        try setOption(ZMQ_ZAP_DOMAIN, Array(domain.utf8), name: "ZMQ_ZAP_DOMAIN")
    }

    /// Makes this (connecting) socket a CURVE client that talks only to the server holding
    /// the secret key for `serverKey`.
    public func makeCurveClient(keys: CurveKeyPair, serverKey: String) throws {
        guard CurveKeyPair.isValidKey(serverKey) else { throw CurveError.badKey(name: "server key", key: serverKey) }
        try setOption(ZMQ_CURVE_SERVERKEY, Array(serverKey.utf8), name: "ZMQ_CURVE_SERVERKEY")
        try setOption(ZMQ_CURVE_PUBLICKEY, Array(keys.publicKey.utf8), name: "ZMQ_CURVE_PUBLICKEY")
        try setOption(ZMQ_CURVE_SECRETKEY, Array(keys.secretKey.utf8), name: "ZMQ_CURVE_SECRETKEY")
    }
}
