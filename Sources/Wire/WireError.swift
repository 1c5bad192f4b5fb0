/// Why an incoming message was refused. The receiver logs it, answers with an `ErrorReply`
/// when it can, and keeps serving.
public enum WireError: Error, CustomStringConvertible, Equatable, Sendable {
    case noFrames
    case tooManyFrames(count: Int, limit: Int)
    case oversized(frame: String, bytes: Int, limit: Int)
    case undecodable(reason: String)
    case unsupportedVersion(found: UInt32, supported: UInt32)
    case unknownBody
    case unknownFields(message: String)
    case missingPayload(body: String)
    case unexpectedPayload(body: String)
    case invalid(body: String, field: String, reason: String)

    public var description: String {
        switch self {
        case .noFrames: return "empty message (no frames)"
        case let .tooManyFrames(count, limit): return "message has \(count) frames; at most \(limit) are allowed"
        case let .oversized(frame, bytes, limit): return "\(frame) frame is \(bytes) bytes; the limit is \(limit)"
        case let .undecodable(reason): return "envelope does not decode as protobuf: \(reason)"
        case let .unsupportedVersion(found, supported):
            return "protocol version \(found) is not supported (this build speaks version \(supported)); upgrade the older side"
        case .unknownBody: return "envelope carries no body this build knows (a newer message type, or none)"
        case let .unknownFields(message): return "\(message) has fields this protocol version does not define"
        case let .missingPayload(body): return "\(body) must be followed by a payload frame"
        case let .unexpectedPayload(body): return "\(body) takes no payload frame, but one was sent"
        case let .invalid(body, field, reason): return "\(body).\(field): \(reason)"
        }
    }
}
