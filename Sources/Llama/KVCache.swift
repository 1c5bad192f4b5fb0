import CIntrinsics
import Tensor

/// How cached keys and values of generated tokens are stored. The prompt prefix is always fp32.
public enum KVPrecision: String, Sendable, CaseIterable, Codable {
    /// Exact: the fixtures' reference (llama.cpp with an fp32 cache) is matched bit-for-bit in spirit.
    case f32
    /// Half the memory: a batch of 16 sequences of 1024 positions fits beside the fp32 model in 1 GiB.
    case f16

    var bytes: Int { self == .f32 ? 4 : 2 }
}

/// Keys and values of one shared prompt prefix, fp32, laid out `[L][NKV][capacity][HS]` so that
/// one kv head's keys over all positions are a contiguous matrix for sgemm.
public final class PrefixCache: @unchecked Sendable {  // owned and used by one generation at a time
    public let config: LlamaConfig
    public let capacity: Int
    public internal(set) var length = 0
    let keys: FloatBuffer
    let values: FloatBuffer

    public init(config: LlamaConfig, capacity: Int) {
        self.config = config
        self.capacity = capacity
        let n = config.layers * config.kvHeads * capacity * config.headSize
        keys = FloatBuffer(count: n)
        values = FloatBuffer(count: n)
    }

    @inline(__always) func offset(_ layer: Int, _ kvHead: Int) -> Int {
        ((layer * config.kvHeads) + kvHead) * capacity * config.headSize
    }
    @inline(__always) func k(_ layer: Int, _ kvHead: Int) -> UnsafeMutablePointer<Float> { keys.pointer + offset(layer, kvHead) }
    @inline(__always) func v(_ layer: Int, _ kvHead: Int) -> UnsafeMutablePointer<Float> { values.pointer + offset(layer, kvHead) }

    public var byteCount: Int { 2 * keys.count * 4 }
}

/// Keys and values of generated tokens for `slots` independent sequences that continue one
/// shared prefix, laid out `[L][slot][NKV][capacity][HS]` in the chosen precision.
public final class SlotCache: @unchecked Sendable {  // owned and used by one generation at a time
    public let config: LlamaConfig
    public let slots: Int
    public let capacity: Int
    public let precision: KVPrecision
    /// Generated positions cached per slot.
    public internal(set) var lengths: [Int]
    let keys: UnsafeMutableRawPointer
    let values: UnsafeMutableRawPointer
    let elementCount: Int

    public init(config: LlamaConfig, slots: Int, capacity: Int, precision: KVPrecision) {
        self.config = config
        self.slots = slots
        self.capacity = capacity
        self.precision = precision
        lengths = Array(repeating: 0, count: slots)
        elementCount = config.layers * slots * config.kvHeads * capacity * config.headSize
        let bytes = max(1, elementCount * precision.bytes)
        keys = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        values = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        // Untouched pages are not resident; only positions actually generated cost memory.
    }

    deinit {
        keys.deallocate()
        values.deallocate()
    }

    @inline(__always) func offset(_ layer: Int, _ slot: Int, _ kvHead: Int) -> Int {
        (((layer * slots) + slot) * config.kvHeads + kvHead) * capacity * config.headSize * precision.bytes
    }
    @inline(__always) func k(_ layer: Int, _ slot: Int, _ kvHead: Int) -> UnsafeMutableRawPointer { keys + offset(layer, slot, kvHead) }
    @inline(__always) func v(_ layer: Int, _ slot: Int, _ kvHead: Int) -> UnsafeMutableRawPointer { values + offset(layer, slot, kvHead) }

    public var byteCount: Int { 2 * elementCount * precision.bytes }
}

/// Storage element of the slot cache: fp32 values or their fp16 encodings.
protocol KVElement {
    static var bytes: Int { get }
    static func dot(_ q: UnsafePointer<Float>, _ k: UnsafeRawPointer, _ n: Int) -> Float
    static func axpy(_ a: Float, _ v: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, _ n: Int)
    static func store(_ x: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, _ n: Int)
    /// Sixteen values starting at element `index`, as fp32.
    static func load16(_ p: UnsafeRawPointer, _ index: Int) -> SIMD16<Float>
}

enum KVFloat32: KVElement {
    static var bytes: Int { 4 }
    @inline(__always) static func dot(_ q: UnsafePointer<Float>, _ k: UnsafeRawPointer, _ n: Int) -> Float {
        Kernels.dot(q, k.assumingMemoryBound(to: Float.self), n)
    }
    @inline(__always) static func axpy(_ a: Float, _ v: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        Kernels.axpy(a, v.assumingMemoryBound(to: Float.self), y, n)
    }
    @inline(__always) static func store(_ x: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, _ n: Int) {
        dst.assumingMemoryBound(to: Float.self).update(from: x, count: n)
    }
    @inline(__always) static func load16(_ p: UnsafeRawPointer, _ index: Int) -> SIMD16<Float> {
        p.loadUnaligned(fromByteOffset: 4 * index, as: SIMD16<Float>.self)
    }
}

enum KVFloat16: KVElement {
    static var bytes: Int { 2 }
    @inline(__always) static func dot(_ q: UnsafePointer<Float>, _ k: UnsafeRawPointer, _ n: Int) -> Float {
        var acc = SIMD8<Float>(repeating: 0)
        var i = 0
        while i + 8 <= n {
            let kv = load8(k, i)
            acc.addProduct(UnsafeRawPointer(q + i).loadUnaligned(as: SIMD8<Float>.self), kv)
            i += 8
        }
        var s = acc.sum()
        while i < n { s += q[i] * Float(k.loadUnaligned(fromByteOffset: 2 * i, as: Float16.self)); i += 1 }
        return s
    }
    @inline(__always) static func axpy(_ a: Float, _ v: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        let av = SIMD8<Float>(repeating: a)
        var i = 0
        while i + 8 <= n {
            var acc = UnsafeRawPointer(y + i).loadUnaligned(as: SIMD8<Float>.self)
            acc.addProduct(av, load8(v, i))
            UnsafeMutableRawPointer(y + i).storeBytes(of: acc, as: SIMD8<Float>.self)
            i += 8
        }
        while i < n { y[i] += a * Float(v.loadUnaligned(fromByteOffset: 2 * i, as: Float16.self)); i += 1 }
    }
    @inline(__always) static func store(_ x: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, _ n: Int) {
        for i in 0..<n { dst.storeBytes(of: Float16(x[i]), toByteOffset: 2 * i, as: Float16.self) }
    }
    @inline(__always) static func load16(_ p: UnsafeRawPointer, _ index: Int) -> SIMD16<Float> {
        // Through C: Swift's SIMD conversions were left as out-of-line calls or per-lane code in
        // the attention loop (perf: 10-20% of batch-64 decode); this is one vcvtph2ps.
        var f = SIMD16<Float>()
        withUnsafeMutableBytes(of: &f) {
            coderl_half16_to_float(p + 2 * index, $0.baseAddress!.assumingMemoryBound(to: Float.self))
        }
        return f
    }
    @inline(__always) static func load8(_ p: UnsafeRawPointer, _ index: Int) -> SIMD8<Float> {
        var f = SIMD8<Float>()
        withUnsafeMutableBytes(of: &f) {
            coderl_half8_to_float(p + 2 * index, $0.baseAddress!.assumingMemoryBound(to: Float.self))
        }
        return f
    }
}
