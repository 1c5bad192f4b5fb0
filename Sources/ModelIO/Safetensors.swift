import Foundation
import Tensor

/// A Hugging Face safetensors file, memory-mapped read-only.
///
/// Layout: `u64` little-endian header length N, then N bytes of JSON
/// `{"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}}`,
/// then the data, offsets relative to its start. Every entry is checked when the file opens:
/// its dtype is one we can convert (F32, F16, BF16), its byte range lies inside the file and
/// matches its shape.
public final class SafetensorsFile: @unchecked Sendable {  // immutable after init; the mapping is read-only
    public struct Entry: Sendable, Equatable {
        public let name: String
        public let dtype: String
        public let shape: [Int]
        public let begin: Int
        public let end: Int
        public var count: Int { shape.reduce(1, *) }
    }

    public static let elementSizes = ["F32": 4, "F16": 2, "BF16": 2]

    public let path: String
    public let metadata: [String: String]
    public let entries: [String: Entry]
    public let fileSize: Int
    private let base: UnsafeRawPointer
    /// Where the data starts: 8 bytes of header length, then the header.
    public let dataStart: Int

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw SafetensorsError.cannotOpen(path: path, errno: errno) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw SafetensorsError.cannotOpen(path: path, errno: errno) }
        fileSize = Int(st.st_size)
        guard fileSize >= 8 else {
            throw SafetensorsError.malformed(path: path, reason: "file has \(fileSize) bytes, too short for the 8-byte header length")
        }
        guard let map = mmap(nil, fileSize, PROT_READ, MAP_PRIVATE, fd, 0), map != MAP_FAILED else {
            throw SafetensorsError.cannotOpen(path: path, errno: errno)
        }
        base = UnsafeRawPointer(map)
        do {
            let headerLength = UInt64(littleEndian: base.loadUnaligned(as: UInt64.self))
            guard headerLength <= UInt64(fileSize - 8) else {
                throw SafetensorsError.malformed(path: path, reason: "header length \(headerLength) exceeds the file size \(fileSize) (truncated file?)")
            }
            dataStart = 8 + Int(headerLength)
            let header = Data(bytes: base + 8, count: Int(headerLength))
            guard let json = try? JSONSerialization.jsonObject(with: header), let object = json as? [String: Any] else {
                throw SafetensorsError.malformed(path: path, reason: "the header is not a JSON object")
            }
            var meta: [String: String] = [:]
            var found: [String: Entry] = [:]
            let dataSize = fileSize - dataStart
            for (name, value) in object {
                if name == "__metadata__" {
                    guard let m = value as? [String: Any] else {
                        throw SafetensorsError.malformed(path: path, reason: "__metadata__ is not an object")
                    }
                    for (k, v) in m { meta[k] = "\(v)" }
                    continue
                }
                guard let e = value as? [String: Any], let dtype = e["dtype"] as? String,
                      let shape = (e["shape"] as? [Any])?.compactMap({ ($0 as? NSNumber)?.intValue }),
                      let offsets = (e["data_offsets"] as? [Any])?.compactMap({ ($0 as? NSNumber)?.intValue }),
                      offsets.count == 2, shape.count == (e["shape"] as? [Any])?.count else {
                    throw SafetensorsError.malformed(path: path, reason: "tensor '\(name)' lacks dtype, shape or data_offsets")
                }
                guard let size = Self.elementSizes[dtype] else {
                    throw SafetensorsError.unsupportedDType(path: path, tensor: name, dtype: dtype)
                }
                guard shape.allSatisfy({ $0 >= 0 && $0 < 1 << 40 }) else {
                    throw SafetensorsError.malformed(path: path, reason: "tensor '\(name)' has shape \(shape)")
                }
                let entry = Entry(name: name, dtype: dtype, shape: shape, begin: offsets[0], end: offsets[1])
                guard entry.begin >= 0, entry.end >= entry.begin, entry.end - entry.begin == entry.count * size else {
                    throw SafetensorsError.malformed(path: path, reason: "tensor '\(name)' data_offsets \(offsets) do not hold \(shape) \(dtype) values")
                }
                guard entry.end <= dataSize else {
                    throw SafetensorsError.truncated(path: path, tensor: name, end: dataStart + entry.end, fileSize: fileSize)
                }
                found[name] = entry
            }
            metadata = meta
            entries = found
        } catch {
            munmap(UnsafeMutableRawPointer(mutating: base), fileSize)
            throw error
        }
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: base), fileSize) }

    public var names: [String] { entries.keys.sorted() }

    /// Converts tensor `name` to fp32 into `out`, checking it has `shape`.
    public func read(_ name: String, shape: [Int], into out: UnsafeMutablePointer<Float>) throws {
        guard let e = entries[name] else { throw SafetensorsError.missingTensor(path: path, tensor: name) }
        guard e.shape == shape else {
            throw SafetensorsError.wrongShape(path: path, tensor: name, expected: shape, found: e.shape)
        }
        let src = base + dataStart + e.begin
        switch e.dtype {
        case "F32":
            for i in 0..<e.count { out[i] = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
        case "F16":
            for i in 0..<e.count { out[i] = Dequantize.half(src + 2 * i) }
        default:  // BF16, the only other dtype admitted at open
            for i in 0..<e.count { out[i] = Dequantize.bfloat(src + 2 * i) }
        }
    }

    /// The stored bytes of tensor `name` (for checksums).
    public func rawBytes(_ name: String) throws -> UnsafeRawBufferPointer {
        guard let e = entries[name] else { throw SafetensorsError.missingTensor(path: path, tensor: name) }
        return UnsafeRawBufferPointer(start: base + dataStart + e.begin, count: e.end - e.begin)
    }

    /// The whole tensor as an array (for tests and small tensors).
    public func array(_ name: String) throws -> (shape: [Int], values: [Float]) {
        guard let e = entries[name] else { throw SafetensorsError.missingTensor(path: path, tensor: name) }
        var values = [Float](repeating: 0, count: e.count)
        try values.withUnsafeMutableBufferPointer { try read(name, shape: e.shape, into: $0.baseAddress!) }
        return (e.shape, values)
    }
}

public enum SafetensorsError: Error, CustomStringConvertible, Equatable {
    case cannotOpen(path: String, errno: Int32)
    case cannotWrite(path: String, errno: Int32)
    case malformed(path: String, reason: String)
    case truncated(path: String, tensor: String, end: Int, fileSize: Int)
    case unsupportedDType(path: String, tensor: String, dtype: String)
    case missingTensor(path: String, tensor: String)
    case wrongShape(path: String, tensor: String, expected: [Int], found: [Int])

    public var description: String {
        switch self {
        case let .cannotOpen(path, errno):
            return "\(path): cannot open safetensors file: \(String(cString: strerror(errno))) (errno \(errno))"
        case let .cannotWrite(path, errno):
            return "\(path): cannot write: \(String(cString: strerror(errno))) (errno \(errno))"
        case let .malformed(path, reason):
            return "\(path): malformed safetensors file: \(reason)"
        case let .truncated(path, tensor, end, fileSize):
            return "\(path): tensor '\(tensor)' data ends at byte \(end) but the file has \(fileSize) bytes (truncated file?)"
        case let .unsupportedDType(path, tensor, dtype):
            return "\(path): tensor '\(tensor)' has dtype \(dtype) (supported: F32, F16, BF16)"
        case let .missingTensor(path, tensor):
            return "\(path): tensor '\(tensor)' is missing"
        case let .wrongShape(path, tensor, expected, found):
            return "\(path): tensor '\(tensor)' has shape \(found), expected \(expected)"
        }
    }
}

/// Writes a safetensors file: tensors in the order added, the header padded with spaces to
/// `alignment` bytes, streamed from the given memory (no copy of the whole file is built) into a
/// temporary file that is flushed and renamed into place. The pointers must stay valid until
/// `write` returns.
///
/// A large `alignment` keeps every tensor at the same file offset while the header's metadata
/// changes a little (a training step's state, checksums): two versions of a model then differ
/// only in the chunks of the tensors that changed, which is what lets the param-store's clients
/// fetch a new version as a delta of one they hold.
public struct SafetensorsWriter {
    public enum DType: String, Sendable, CaseIterable { case f32 = "F32", f16 = "F16", bf16 = "BF16" }

    struct Pending {
        let name: String
        let shape: [Int]
        let dtype: DType
        let values: UnsafePointer<Float>
        var count: Int { shape.reduce(1, *) }
        var bytes: Int { count * (dtype == .f32 ? 4 : 2) }
    }

    private var tensors: [Pending] = []
    public var metadata: [String: String] = ["format": "pt"]
    /// The data starts at a multiple of this many bytes from the start of the file (a multiple of 8).
    public var alignment = 8

    public init(alignment: Int = 8) {
        require(alignment > 0 && alignment % 8 == 0, "safetensors header alignment must be a positive multiple of 8")
        self.alignment = alignment
    }

    public mutating func add(_ name: String, shape: [Int], values: UnsafePointer<Float>, dtype: DType = .f32) {
        tensors.append(Pending(name: name, shape: shape, dtype: dtype, values: values))
    }

    /// The encoded bytes of one tensor's values.
    public static func encode(_ values: UnsafePointer<Float>, count n: Int, dtype: DType, into out: UnsafeMutableRawPointer) {
        switch dtype {
        case .f32:
            for i in 0..<n { out.storeBytes(of: values[i].bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self) }
        case .f16:
            for i in 0..<n { out.storeBytes(of: Float16(values[i]).bitPattern.littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
        case .bf16:  // round to nearest even
            for i in 0..<n {
                let b = values[i].bitPattern
                let r = UInt16(truncatingIfNeeded: (b &+ 0x7FFF &+ ((b >> 16) & 1)) >> 16)
                out.storeBytes(of: r.littleEndian, toByteOffset: 2 * i, as: UInt16.self)
            }
        }
    }

    /// Where each tensor's data begins and ends, relative to the data start.
    public var layout: [(name: String, begin: Int, end: Int)] {
        var offset = 0
        return tensors.map { t in
            defer { offset += t.bytes }
            return (t.name, offset, offset + t.bytes)
        }
    }

    /// Whether `file` has this writer's header length and every tensor at the same place with
    /// the same dtype and shape (and no others): then `overwrite` can turn it into this file.
    public func layoutMatches(_ file: SafetensorsFile) -> Bool {
        guard file.dataStart == headerBytes().count, file.entries.count == tensors.count else { return false }
        var offset = 0
        for t in tensors {
            guard let e = file.entries[t.name], e.begin == offset, e.dtype == t.dtype.rawValue, e.shape == t.shape else { return false }
            offset += t.bytes
        }
        return file.fileSize == file.dataStart + offset
    }

    /// Writes the header and the tensors named in `tensors` into the existing file at `path`,
    /// in place, not flushed: the file (whose layout must match, see `layoutMatches`) becomes
    /// this writer's file while only the bytes that differ are written.
    public func overwrite(_ path: String, tensors names: Set<String>) throws {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SafetensorsError.cannotWrite(path: path, errno: errno) }
        defer { close(fd) }
        func put(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws {
            var done = 0
            while done < bytes.count {
                let n = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset + done))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw SafetensorsError.cannotWrite(path: path, errno: errno)
                }
                done += n
            }
        }
        let header = headerBytes()
        var offset = header.count
        for t in tensors {
            defer { offset += t.bytes }
            guard names.contains(t.name) else { continue }
            require(t.dtype == .f32 && UInt32(1).littleEndian == 1, "overwrite writes little-endian F32 tensors")
            try put(UnsafeRawBufferPointer(start: t.values, count: t.bytes), at: offset)
        }
        try header.withUnsafeBytes { try put($0, at: 0) }
    }

    func headerBytes() -> [UInt8] {
        func quote(_ s: String) -> String {
            let d = try! JSONSerialization.data(withJSONObject: [s])
            return String(decoding: d.dropFirst().dropLast(), as: UTF8.self)
        }
        var parts = ["\"__metadata__\":{" + metadata.sorted { $0.key < $1.key }.map { "\(quote($0.key)):\(quote($0.value))" }.joined(separator: ",") + "}"]
        var offset = 0
        for t in tensors {
            let shape = t.shape.map(String.init).joined(separator: ",")
            parts.append("\(quote(t.name)):{\"dtype\":\"\(t.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + t.bytes)]}")
            offset += t.bytes
        }
        var json = Array(("{" + parts.joined(separator: ",") + "}").utf8)
        let padded = (8 + json.count + alignment - 1) / alignment * alignment - 8
        json.append(contentsOf: repeatElement(0x20, count: padded - json.count))
        var out: [UInt8] = []
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        return out + json
    }

    /// `durable: false` skips flushing to disk (the file is still renamed into place whole):
    /// for files that are checked against checksums where they are used and can be made again.
    public func write(to path: String, durable: Bool = true) throws {
        try AtomicFile.write(to: path, durable: durable) { sink in
            try sink.write(headerBytes())
            let chunk = 1 << 20
            let staging = UnsafeMutableRawPointer.allocate(byteCount: 4 * chunk, alignment: 64)
            defer { staging.deallocate() }
            for t in tensors {
                if t.dtype == .f32 && UInt32(1).littleEndian == 1 {
                    try sink.write(UnsafeRawBufferPointer(start: t.values, count: t.bytes))
                    continue
                }
                var done = 0
                while done < t.count {
                    let n = min(chunk, t.count - done)
                    Self.encode(t.values + done, count: n, dtype: t.dtype, into: staging)
                    try sink.write(UnsafeRawBufferPointer(start: staging, count: n * (t.dtype == .f32 ? 4 : 2)))
                    done += n
                }
            }
        }
    }
}

/// Whole-file writes that readers never see half-done: a temporary file in the same
/// directory, flushed to disk, then renamed over the destination (and the directory flushed).
/// Without `durable`, nothing is flushed: a process that dies still leaves the old file or the
/// new one, but a machine that loses power may leave either damaged.
public enum AtomicFile {
    public struct Sink {
        let fd: Int32
        let path: String
        public func write(_ bytes: UnsafeRawBufferPointer) throws {
            var done = 0
            while done < bytes.count {
                let n = Foundation.write(fd, bytes.baseAddress! + done, bytes.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw SafetensorsError.cannotWrite(path: path, errno: errno)
                }
                done += n
            }
        }
        public func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try write($0) } }
    }

    public static func write(_ data: Data, to path: String, durable: Bool = true) throws {
        try write(to: path, durable: durable) { sink in try data.withUnsafeBytes { try sink.write($0) } }
    }

    public static func write(to path: String, durable: Bool = true, _ body: (Sink) throws -> Void) throws {
        let tmp = path + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SafetensorsError.cannotWrite(path: tmp, errno: errno) }
        do {
            try body(Sink(fd: fd, path: tmp))
            guard !durable || fsync(fd) == 0 else { throw SafetensorsError.cannotWrite(path: tmp, errno: errno) }
            close(fd)
        } catch {
            close(fd)
            unlink(tmp)
            throw error
        }
        guard rename(tmp, path) == 0 else {
            let e = errno
            unlink(tmp)
            throw SafetensorsError.cannotWrite(path: path, errno: e)
        }
        guard durable else { return }
        let dir = open((path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent, O_RDONLY | O_DIRECTORY)
        if dir >= 0 { fsync(dir); close(dir) }
    }
}
