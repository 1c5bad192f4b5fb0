/// Key encodings whose byte order is their numeric order, as LMDB sorts keys bytewise.
extension UInt64 {
    /// Eight big-endian bytes.
    public var sortableKey: [UInt8] {
        withUnsafeBytes(of: bigEndian) { Array($0) }
    }

    /// Reads eight big-endian bytes; nil when `bytes` is not exactly 8 long.
    public init?(sortableKey bytes: UnsafeRawBufferPointer) {
        guard bytes.count == 8 else { return nil }
        var value: UInt64 = 0
        withUnsafeMutableBytes(of: &value) { $0.copyMemory(from: bytes) }
        self = UInt64(bigEndian: value)
    }
}
