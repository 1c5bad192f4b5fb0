import Foundation
import Tensor

/// A GGUF file (versions 2 and 3), memory-mapped read-only.
///
/// The header (metadata and tensor infos) is parsed eagerly and checked against the file
/// size; tensor data stays in the mapping and is dequantized to fp32 on request. The mapping
/// is released when the value is deallocated, so load the weights you need and drop it.
public final class GGUFFile: @unchecked Sendable {  // immutable after init; the mapping is read-only
    public static let magic: UInt32 = 0x4655_4747  // "GGUF" little-endian

    public let path: String
    public let version: UInt32
    public let metadata: [String: GGUFValue]
    /// Metadata keys in file order (the dictionary loses it).
    public let metadataKeys: [String]
    public let tensors: [GGUFTensorInfo]
    public let alignment: Int
    public let dataOffset: Int
    public let fileSize: Int
    private let base: UnsafeRawPointer
    private let tensorIndex: [String: Int]

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw GGUFError.cannotOpen(path: path, errno: errno) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw GGUFError.cannotOpen(path: path, errno: errno) }
        fileSize = Int(st.st_size)
        guard fileSize >= 4 else {
            throw GGUFError.truncated(path: path, reading: "magic", offset: 0, fileSize: fileSize)
        }
        guard let map = mmap(nil, fileSize, PROT_READ, MAP_PRIVATE, fd, 0), map != MAP_FAILED else {
            throw GGUFError.cannotOpen(path: path, errno: errno)
        }
        base = UnsafeRawPointer(map)
        do {
            var r = ByteReader(base: base, size: fileSize, path: path)
            let magic = try r.u32("magic")
            guard magic == Self.magic else { throw GGUFError.badMagic(path: path, found: magic) }
            version = try r.u32("version")
            guard version == 2 || version == 3 else {
                throw GGUFError.unsupportedVersion(path: path, version: version)
            }
            let tensorCount = try r.count("tensor count", minBytesEach: 24)
            let kvCount = try r.count("metadata count", minBytesEach: 12)
            var meta: [String: GGUFValue] = [:]
            var keys: [String] = []
            keys.reserveCapacity(kvCount)
            for _ in 0..<kvCount {
                let key = try r.string("metadata key")
                let type = try r.u32("type of '\(key)'")
                meta[key] = try r.value(ofType: type, key: key)
                keys.append(key)
            }
            metadata = meta
            metadataKeys = keys
            if let a = meta["general.alignment"] {
                guard let v = a.int, v > 0, v & (v - 1) == 0 else {
                    throw GGUFError.malformed(path: path, reason: "general.alignment \(a) is not a power of two")
                }
                alignment = v
            } else {
                alignment = 32
            }
            var infos: [GGUFTensorInfo] = []
            infos.reserveCapacity(tensorCount)
            for _ in 0..<tensorCount {
                let name = try r.string("tensor name")
                let nDims = Int(try r.u32("dimension count of '\(name)'"))
                guard nDims >= 1 && nDims <= 4 else {
                    throw GGUFError.malformed(path: path, reason: "tensor '\(name)' has \(nDims) dimensions (1 to 4 allowed)")
                }
                var shape: [Int] = []
                for d in 0..<nDims {
                    let v = try r.u64("dimension \(d) of '\(name)'")
                    guard v > 0, v < 1 << 40 else {
                        throw GGUFError.malformed(path: path, reason: "tensor '\(name)' dimension \(d) is \(v)")
                    }
                    shape.append(Int(v))
                }
                // Whatever its type, a tensor's element count must be a number we can allocate
                // for (a corrupt shape must not overflow, or reach the allocator as 100 TB).
                let count = shape.dropFirst().reduce((shape[0], false)) { acc, d in
                    let (p, o) = acc.0.multipliedReportingOverflow(by: d)
                    return (p, acc.1 || o)
                }
                guard !count.1, count.0 <= 1 << 40 else {
                    throw GGUFError.malformed(path: path, reason: "tensor '\(name)' shape \(shape) has too many elements")
                }
                let type = try r.u32("type of '\(name)'")
                let offset = try r.u64("offset of '\(name)'")
                guard offset < UInt64(fileSize) else {
                    throw GGUFError.tensorOutOfBounds(path: path, tensor: name, end: Int(clamping: offset), fileSize: fileSize)
                }
                infos.append(GGUFTensorInfo(name: name, shape: shape, typeID: type, offset: Int(offset)))
            }
            tensors = infos
            dataOffset = (r.offset + alignment - 1) / alignment * alignment
            var index: [String: Int] = [:]
            for (i, t) in infos.enumerated() {
                guard index[t.name] == nil else {
                    throw GGUFError.malformed(path: path, reason: "tensor '\(t.name)' appears twice")
                }
                index[t.name] = i
                // Check that every tensor whose size we know lies inside the file now, so a
                // truncated download fails at open with the first tensor it cuts off.
                if let layout = t.type?.blockLayout {
                    guard t.shape[0] % layout.elements == 0 else {
                        throw GGUFError.malformed(path: path, reason: "tensor '\(t.name)' row of \(t.shape[0]) is not a multiple of the \(t.type!) block size \(layout.elements)")
                    }
                    let end = dataOffset + t.offset + t.elementCount / layout.elements * layout.bytes
                    guard end <= fileSize else {
                        throw GGUFError.tensorOutOfBounds(path: path, tensor: t.name, end: end, fileSize: fileSize)
                    }
                }
            }
            tensorIndex = index
        } catch {
            munmap(UnsafeMutableRawPointer(mutating: base), fileSize)
            throw error
        }
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: base), fileSize) }

    public func tensorInfo(_ name: String) -> GGUFTensorInfo? {
        tensorIndex[name].map { tensors[$0] }
    }

    /// Raw bytes of a tensor inside the mapping.
    public func rawData(_ info: GGUFTensorInfo) throws -> UnsafeRawBufferPointer {
        guard let type = info.type, let layout = type.blockLayout else {
            throw GGUFError.unsupportedTensorType(path: path, tensor: info.name, type: info.typeID)
        }
        let bytes = info.elementCount / layout.elements * layout.bytes
        return UnsafeRawBufferPointer(start: base + dataOffset + info.offset, count: bytes)
    }

    /// Dequantizes tensor `name` into `destination` (elementCount floats).
    public func dequantize(_ name: String, into destination: UnsafeMutablePointer<Float>) throws {
        guard let info = tensorInfo(name) else { throw GGUFError.missingTensor(path: path, tensor: name) }
        let raw = try rawData(info)
        try Dequantize.run(raw, type: info.type!, count: info.elementCount, into: destination,
                           path: path, tensor: name)
    }

    /// Dequantizes tensor `name`, checking its GGUF shape when `shape` is given.
    public func load(_ name: String, shape: [Int]? = nil) throws -> FloatBuffer {
        guard let info = tensorInfo(name) else { throw GGUFError.missingTensor(path: path, tensor: name) }
        if let shape, shape != info.shape {
            throw GGUFError.wrongShape(path: path, tensor: name, expected: shape, found: info.shape)
        }
        _ = try rawData(info)   // an unsupported type is an error before anything is allocated
        let out = FloatBuffer(count: info.elementCount)
        try dequantize(name, into: out.pointer)
        return out
    }

    // MARK: typed metadata access

    public func value(_ key: String) throws -> GGUFValue {
        guard let v = metadata[key] else { throw GGUFError.missingKey(path: path, key: key) }
        return v
    }

    public func int(_ key: String) throws -> Int { try typed(key, "an integer") { $0.int } }
    public func float(_ key: String) throws -> Double { try typed(key, "a number") { $0.double } }
    public func string(_ key: String) throws -> String { try typed(key, "a string") { $0.string } }

    public func strings(_ key: String) throws -> [String] {
        try typed(key, "an array of strings") { v in
            if case let .array(.string, items) = v { items.compactMap(\.string) } else { nil }
        }
    }

    public func ints(_ key: String) throws -> [Int] {
        try typed(key, "an array of integers") { v in
            guard let items = v.array else { return nil }
            let ints = items.compactMap(\.int)
            return ints.count == items.count ? ints : nil
        }
    }

    /// The value of `key` converted by `extract`, or an error naming the key, the type
    /// expected and the type found.
    private func typed<T>(_ key: String, _ expected: String, _ extract: (GGUFValue) -> T?) throws -> T {
        let v = try value(key)
        guard let result = extract(v) else {
            throw GGUFError.wrongKeyType(path: path, key: key, expected: expected, found: v.typeName)
        }
        return result
    }
}

/// Bounds-checked little-endian reader over the mapping; every read names what it reads.
struct ByteReader {
    let base: UnsafeRawPointer
    let size: Int
    let path: String
    var offset = 0

    private mutating func take(_ n: Int, _ what: @autoclosure () -> String) throws -> UnsafeRawPointer {
        guard n >= 0, offset <= size - n else {
            throw GGUFError.truncated(path: path, reading: what(), offset: offset, fileSize: size)
        }
        defer { offset += n }
        return base + offset
    }

    private mutating func scalar<T: FixedWidthInteger>(_ t: T.Type, _ what: @autoclosure () -> String) throws -> T {
        T(littleEndian: try take(MemoryLayout<T>.size, what()).loadUnaligned(as: T.self))
    }

    mutating func u32(_ what: @autoclosure () -> String) throws -> UInt32 { try scalar(UInt32.self, what()) }
    mutating func u64(_ what: @autoclosure () -> String) throws -> UInt64 { try scalar(UInt64.self, what()) }

    /// A uint64 element count, rejected when that many elements could not fit in the rest of the file.
    mutating func count(_ what: String, minBytesEach: Int) throws -> Int {
        let n = try u64(what)
        guard n <= UInt64(max(0, size - offset) / minBytesEach) else {
            throw GGUFError.malformed(path: path, reason: "\(what) \(n) cannot fit in the remaining \(size - offset) bytes of the file (at byte \(offset - 8)): truncated or corrupt")
        }
        return Int(n)
    }

    mutating func string(_ what: @autoclosure () -> String) throws -> String {
        let n = try u64("length of \(what())")
        guard n <= UInt64(size - offset) else {
            throw GGUFError.truncated(path: path, reading: "\(what()) of \(n) bytes", offset: offset, fileSize: size)
        }
        let p = try take(Int(n), what())
        return String(decoding: UnsafeRawBufferPointer(start: p, count: Int(n)), as: UTF8.self)
    }

    mutating func value(ofType raw: UInt32, key: String, depth: Int = 0) throws -> GGUFValue {
        guard let type = GGUFValueType(rawValue: raw) else {
            throw GGUFError.malformed(path: path, reason: "metadata key '\(key)' has unknown value type \(raw)")
        }
        let what = "value of '\(key)'"
        switch type {
        case .uint8: return .uint8(try scalar(UInt8.self, what))
        case .int8: return .int8(try scalar(Int8.self, what))
        case .uint16: return .uint16(try scalar(UInt16.self, what))
        case .int16: return .int16(try scalar(Int16.self, what))
        case .uint32: return .uint32(try scalar(UInt32.self, what))
        case .int32: return .int32(try scalar(Int32.self, what))
        case .uint64: return .uint64(try scalar(UInt64.self, what))
        case .int64: return .int64(try scalar(Int64.self, what))
        case .float32: return .float32(Float(bitPattern: try scalar(UInt32.self, what)))
        case .float64: return .float64(Double(bitPattern: try scalar(UInt64.self, what)))
        case .bool:
            let b = try scalar(UInt8.self, what)
            guard b <= 1 else { throw GGUFError.malformed(path: path, reason: "metadata key '\(key)' has bool value \(b)") }
            return .bool(b == 1)
        case .string: return .string(try string(what))
        case .array:
            guard depth < 4 else { throw GGUFError.malformed(path: path, reason: "metadata key '\(key)' nests arrays too deeply") }
            let elemRaw = try u32("element type of '\(key)'")
            guard let elem = GGUFValueType(rawValue: elemRaw) else {
                throw GGUFError.malformed(path: path, reason: "metadata array '\(key)' has unknown element type \(elemRaw)")
            }
            let minBytes: Int = switch elem {
            case .uint8, .int8, .bool: 1
            case .uint16, .int16: 2
            case .uint32, .int32, .float32: 4
            case .uint64, .int64, .float64, .string: 8
            case .array: 12
            }
            let n = try count("length of array '\(key)'", minBytesEach: minBytes)
            var items: [GGUFValue] = []
            items.reserveCapacity(n)
            for _ in 0..<n { items.append(try value(ofType: elemRaw, key: key, depth: depth + 1)) }
            return .array(elem, items)
        }
    }
}
