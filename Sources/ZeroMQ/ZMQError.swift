import CZeroMQ
import Foundation

/// A failed libzmq call, with the errno kept as a number and the three cases a caller must
/// treat differently named: `wouldBlock` (timeout or nothing to read: try later),
/// `interrupted` (a signal: retry), `terminated` (the context is shutting down: stop).
public struct ZMQError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Kind: Sendable, Equatable {
        case wouldBlock, interrupted, terminated, other
    }

    public let code: Int32
    public let operation: String
    public let context: String

    public init(code: Int32, operation: String, context: String) {
        self.code = code
        self.operation = operation
        self.context = context
    }

    public var kind: Kind {
        switch code {
        case EAGAIN: .wouldBlock
        case EINTR: .interrupted
        case ETERM: .terminated
        default: .other
        }
    }

    public var description: String {
        let message = String(cString: zmq_strerror(code))
        var text = "\(operation) failed for \(context): \(message) (errno \(code))"
        switch kind {
        case .wouldBlock: text += "; no peer answered in time, or nothing was ready"
        case .terminated: text += "; the messaging context is shutting down"
        default: break
        }
        return text
    }

    static func last(_ operation: @autoclosure () -> String, _ context: @autoclosure () -> String) -> ZMQError {
        ZMQError(code: zmq_errno(), operation: operation(), context: context())
    }
}

/// Calls a libzmq function returning -1 on failure, retrying on EINTR (the one place that
/// does so, so a signal never surfaces as an error elsewhere).
@discardableResult
func retrying(_ operation: @autoclosure () -> String, _ context: @autoclosure () -> String,
              _ call: () -> Int32) throws(ZMQError) -> Int32 {
    while true {
        let rc = call()
        if rc >= 0 { return rc }
        let error = ZMQError.last(operation(), context())
        if error.kind != .interrupted { throw error }
    }
}
