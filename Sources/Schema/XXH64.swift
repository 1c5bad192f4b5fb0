/// XXH64 (Yann Collet's xxHash, 64-bit): the checksum of weight chunks. Not cryptographic:
/// it catches corruption and truncation at memory speed, which SHA-256 cannot do for
/// hundreds of megabytes per version on a CPU without SHA instructions; authenticity over
/// the network comes from CURVE.
public enum XXH64 {
    static let p1: UInt64 = 0x9E37_79B1_85EB_CA87
    static let p2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    static let p3: UInt64 = 0x1656_67B1_9E37_79F9
    static let p4: UInt64 = 0x85EB_CA77_C2B2_AE63
    static let p5: UInt64 = 0x27D4_EB2F_1656_67C5

    @inline(__always) static func rotl(_ x: UInt64, _ r: UInt64) -> UInt64 { (x << r) | (x >> (64 - r)) }

    @inline(__always) static func round(_ acc: UInt64, _ input: UInt64) -> UInt64 {
        rotl(acc &+ input &* p2, 31) &* p1
    }

    @inline(__always) static func merge(_ acc: UInt64, _ value: UInt64) -> UInt64 {
        (acc ^ round(0, value)) &* p1 &+ p4
    }

    public static func hash(_ bytes: [UInt8], seed: UInt64 = 0) -> UInt64 {
        bytes.withUnsafeBytes { hash($0, seed: seed) }
    }

    public static func hash(_ data: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 {
        let count = data.count
        guard let base = data.baseAddress else { return finalize(seed &+ p5, base: nil, offset: 0, count: 0, total: 0) }
        var offset = 0
        var h: UInt64
        if count >= 32 {
            var v1 = seed &+ p1 &+ p2, v2 = seed &+ p2, v3 = seed, v4 = seed &- p1
            while offset + 32 <= count {
                v1 = round(v1, base.loadUnaligned(fromByteOffset: offset, as: UInt64.self).littleEndian)
                v2 = round(v2, base.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self).littleEndian)
                v3 = round(v3, base.loadUnaligned(fromByteOffset: offset + 16, as: UInt64.self).littleEndian)
                v4 = round(v4, base.loadUnaligned(fromByteOffset: offset + 24, as: UInt64.self).littleEndian)
                offset += 32
            }
            h = rotl(v1, 1) &+ rotl(v2, 7) &+ rotl(v3, 12) &+ rotl(v4, 18)
            h = merge(h, v1)
            h = merge(h, v2)
            h = merge(h, v3)
            h = merge(h, v4)
        } else {
            h = seed &+ p5
        }
        return finalize(h, base: base, offset: offset, count: count, total: count)
    }

    static func finalize(_ start: UInt64, base: UnsafeRawPointer?, offset start0: Int, count: Int, total: Int) -> UInt64 {
        var h = start &+ UInt64(total)
        var offset = start0
        if let base {
            while offset + 8 <= count {
                h ^= round(0, base.loadUnaligned(fromByteOffset: offset, as: UInt64.self).littleEndian)
                h = rotl(h, 27) &* p1 &+ p4
                offset += 8
            }
            if offset + 4 <= count {
                h ^= UInt64(base.loadUnaligned(fromByteOffset: offset, as: UInt32.self).littleEndian) &* p1
                h = rotl(h, 23) &* p2 &+ p3
                offset += 4
            }
            while offset < count {
                h ^= UInt64(base.load(fromByteOffset: offset, as: UInt8.self)) &* p5
                h = rotl(h, 11) &* p1
                offset += 1
            }
        }
        h ^= h >> 33
        h = h &* p2
        h ^= h >> 29
        h = h &* p3
        h ^= h >> 32
        return h
    }
}
