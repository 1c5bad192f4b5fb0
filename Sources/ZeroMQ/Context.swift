import CZeroMQ

/// A ZeroMQ context. Sockets hold a strong reference to it, so `zmq_ctx_term` (which blocks
/// while any socket is open) only runs in `deinit`, after the last socket has closed; and
/// sockets are created with linger 0 unless told otherwise, so it never waits on unsent data.
///
/// `@unchecked Sendable`: libzmq contexts are thread-safe; sockets are not, and `Socket` is
/// not `Sendable`.
public final class Context: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer

    public init(ioThreads: Int = 1) throws {
        guard let handle = zmq_ctx_new() else { throw ZMQError.last("zmq_ctx_new", "a new context") }
        self.handle = handle
        if zmq_ctx_set(handle, ZMQ_IO_THREADS, Int32(ioThreads)) != 0 {
            let error = ZMQError.last("zmq_ctx_set(ZMQ_IO_THREADS)", "\(ioThreads) threads")
            zmq_ctx_term(handle)
            throw error
        }
    }

    /// Makes every blocking call on this context's sockets, on any thread, fail with
    /// `.terminated` so their owners can close them and leave.
    public func shutdown() {
        zmq_ctx_shutdown(handle)
    }

    deinit {
        while zmq_ctx_term(handle) != 0 && zmq_errno() == EINTR {}
    }

    /// Whether libzmq was built with the named capability (`curve`, `ipc`, ...).
    public static func has(_ capability: String) -> Bool { zmq_has(capability) != 0 }

    public static var version: String {
        var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        return "\(major).\(minor).\(patch)"
    }
}
