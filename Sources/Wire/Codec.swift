import Foundation
import Schema
import SwiftProtobuf

/// The one codec for pipeline messages (`Sources/Schema/proto/wire.proto`): frame 0 is an
/// `Envelope`, frame 1 a raw payload for the bodies that carry one (`WeightChunk`).
/// `decode` never traps on any input: it returns a checked message or throws `WireError`.
public enum WireCodec {
    public static let protocolVersion: UInt32 = 1

    public struct Limits: Sendable {
        public var envelopeBytes = 16 << 20
        public var payloadBytes = 256 << 20
        public var nestingDepth = 32
        public init() {}
    }

    /// A decoded, validated message.
    public struct Message: Sendable {
        public var envelope: Envelope
        public var payload: [UInt8]?

        public var body: Envelope.OneOf_Body { envelope.body! }
    }

    /// Frames for one message. `id` identifies it for acknowledgements and duplicates.
    public static func encode(_ body: Envelope.OneOf_Body, id: String, sender: String,
                              payload: [UInt8]? = nil) throws -> [[UInt8]] {
        var envelope = Envelope()
        envelope.protocolVersion = protocolVersion
        envelope.messageID = id
        envelope.sender = sender
        envelope.sentUnixMs = UInt64(Date().timeIntervalSince1970 * 1000)
        envelope.body = body
        let head: [UInt8] = try envelope.serializedBytes()
        return payload.map { [head, $0] } ?? [head]
    }

    public static func decode(_ frames: [[UInt8]], limits: Limits = Limits()) throws(WireError) -> Message {
        guard let head = frames.first else { throw .noFrames }
        let envelope = try decodeEnvelope(head, frameCount: frames.count, payloadBytes: frames.count == 2 ? frames[1].count : nil, limits: limits)
        return Message(envelope: envelope, payload: frames.count == 2 ? frames[1] : nil)
    }

    /// Decodes and checks the envelope of frames lent in place (`Socket.receive(_:)`), leaving
    /// the payload frame, if any, where it is; `payload` is nil in the result.
    public static func decode(inPlace frames: [UnsafeRawBufferPointer], limits: Limits = Limits()) throws(WireError) -> Message {
        guard let head = frames.first else { throw .noFrames }
        guard head.count <= limits.envelopeBytes else {
            throw .oversized(frame: "envelope", bytes: head.count, limit: limits.envelopeBytes)
        }
        let envelope = try decodeEnvelope(Array(head), frameCount: frames.count, payloadBytes: frames.count == 2 ? frames[1].count : nil, limits: limits)
        return Message(envelope: envelope, payload: nil)
    }

    static func decodeEnvelope(_ head: [UInt8], frameCount: Int, payloadBytes: Int?, limits: Limits) throws(WireError) -> Envelope {
        guard frameCount <= 2 else { throw .tooManyFrames(count: frameCount, limit: 2) }
        guard head.count <= limits.envelopeBytes else {
            throw .oversized(frame: "envelope", bytes: head.count, limit: limits.envelopeBytes)
        }
        var options = BinaryDecodingOptions()
        options.messageDepthLimit = limits.nestingDepth
        let envelope: Envelope
        do {
            envelope = try Envelope(serializedBytes: head, options: options)
        } catch {
            throw .undecodable(reason: "\(error)")
        }
        guard envelope.protocolVersion == protocolVersion else {
            throw .unsupportedVersion(found: envelope.protocolVersion, supported: protocolVersion)
        }
        guard envelope.unknownFields.data.isEmpty else { throw .unknownFields(message: "Envelope") }
        guard let body = envelope.body else { throw .unknownBody }
        if let payloadBytes, payloadBytes > limits.payloadBytes {
            throw .oversized(frame: "payload", bytes: payloadBytes, limit: limits.payloadBytes)
        }
        try validate(body, hasPayload: payloadBytes != nil)
        return envelope
    }
}
