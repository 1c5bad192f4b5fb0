import Foundation
import Tensor

/// Builds a GGUF (version 3 by default) file in memory and writes it atomically.
/// Used to export weights and, in tests, to make small files of every kind.
public struct GGUFWriter {
    public var version: UInt32
    public var alignment: Int
    private var metadata: [(String, GGUFValue)] = []
    private var tensors: [(info: GGUFTensorInfo, data: [UInt8])] = []
    /// Tensors added so far.
    public var tensorCount: Int { tensors.count }
    private var dataSize = 0

    public init(version: UInt32 = 3, alignment: Int = 32) {
        self.version = version
        self.alignment = alignment
    }

    public mutating func add(_ key: String, _ value: GGUFValue) {
        metadata.append((key, value))
    }

    /// Adds a tensor of GGUF shape `shape` (fastest dimension first) encoded as `type`.
    public mutating func addTensor(_ name: String, shape: [Int], values: [Float], type: GGMLType = .f32) {
        require(shape.reduce(1, *) == values.count, "tensor \(name): shape \(shape) does not hold \(values.count) values")
        let bytes = values.withUnsafeBufferPointer { Quantize.run($0.baseAddress!, count: values.count, type: type) }
        addRawTensor(name, shape: shape, typeID: type.rawValue, bytes: bytes)
    }

    /// Adds a tensor from already-encoded bytes (any type id, for testing unsupported types).
    public mutating func addRawTensor(_ name: String, shape: [Int], typeID: UInt32, bytes: [UInt8]) {
        let offset = (dataSize + alignment - 1) / alignment * alignment
        tensors.append((GGUFTensorInfo(name: name, shape: shape, typeID: typeID, offset: offset), bytes))
        dataSize = offset + bytes.count
    }

    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func str(_ s: String) { u64(UInt64(s.utf8.count)); out.append(contentsOf: s.utf8) }
        func value(_ v: GGUFValue) {
            switch v {
            case let .uint8(x): out.append(x)
            case let .int8(x): out.append(UInt8(bitPattern: x))
            case let .uint16(x): withUnsafeBytes(of: x.littleEndian) { out.append(contentsOf: $0) }
            case let .int16(x): withUnsafeBytes(of: x.littleEndian) { out.append(contentsOf: $0) }
            case let .uint32(x): u32(x)
            case let .int32(x): u32(UInt32(bitPattern: x))
            case let .uint64(x): u64(x)
            case let .int64(x): u64(UInt64(bitPattern: x))
            case let .float32(x): u32(x.bitPattern)
            case let .float64(x): u64(x.bitPattern)
            case let .bool(x): out.append(x ? 1 : 0)
            case let .string(x): str(x)
            case let .array(t, items):
                u32(t.rawValue)
                u64(UInt64(items.count))
                for item in items { value(item) }
            }
        }
        u32(GGUFFile.magic)
        u32(version)
        u64(UInt64(tensors.count))
        var meta = metadata
        if alignment != 32 && !meta.contains(where: { $0.0 == "general.alignment" }) {
            meta.append(("general.alignment", .uint32(UInt32(alignment))))
        }
        u64(UInt64(meta.count))
        for (k, v) in meta {
            str(k)
            u32(v.type.rawValue)
            value(v)
        }
        for (info, _) in tensors {
            str(info.name)
            u32(UInt32(info.shape.count))
            for d in info.shape { u64(UInt64(d)) }
            u32(info.typeID)
            u64(UInt64(info.offset))
        }
        let dataStart = (out.count + alignment - 1) / alignment * alignment
        out.append(contentsOf: [UInt8](repeating: 0, count: dataStart - out.count))
        for (info, data) in tensors {
            out.append(contentsOf: [UInt8](repeating: 0, count: dataStart + info.offset - out.count))
            out.append(contentsOf: data)
        }
        return out
    }

    /// Writes to `path` through a temporary file and a rename, so readers never see half a file.
    public func write(to path: String) throws {
        let tmp = path + ".tmp-\(getpid())"
        try Data(serialized()).write(to: URL(fileURLWithPath: tmp))
        guard rename(tmp, path) == 0 else {
            let e = errno
            unlink(tmp)
            throw GGUFError.cannotOpen(path: path, errno: e)
        }
    }
}
