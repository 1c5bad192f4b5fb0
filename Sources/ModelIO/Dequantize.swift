/// Conversion of GGUF tensor data to fp32, following ggml's reference (`dequantize_row_*`).
///
/// Block formats (32 elements per block):
/// - Q8_0: f16 d, int8 q[32];            x = d * q
/// - Q4_0: f16 d, u8 qs[16];             x = d * (nibble - 8); low nibbles are x[0..16), high x[16..32)
/// - Q4_1: f16 d, f16 m, u8 qs[16];      x = d * nibble + m
public enum Dequantize {
    @inline(__always) static func half(_ p: UnsafeRawPointer) -> Float {
        Float(Float16(bitPattern: p.loadUnaligned(as: UInt16.self).littleEndian))
    }

    @inline(__always) static func bfloat(_ p: UnsafeRawPointer) -> Float {
        Float(bitPattern: UInt32(p.loadUnaligned(as: UInt16.self).littleEndian) << 16)
    }

    public static func run(
        _ raw: UnsafeRawBufferPointer, type: GGMLType, count: Int, into out: UnsafeMutablePointer<Float>,
        path: String = "<memory>", tensor: String = "<tensor>"
    ) throws {
        guard let layout = type.blockLayout else {
            throw GGUFError.unsupportedTensorType(path: path, tensor: tensor, type: type.rawValue)
        }
        guard count % layout.elements == 0, raw.count >= count / layout.elements * layout.bytes else {
            throw GGUFError.malformed(path: path, reason: "tensor '\(tensor)': \(raw.count) bytes cannot hold \(count) \(type) values")
        }
        let src = raw.baseAddress!
        let blocks = count / layout.elements
        switch type {
        case .f32:
            for i in 0..<count {
                out[i] = Float(bitPattern: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self).littleEndian)
            }
        case .f16:
            for i in 0..<count { out[i] = half(src + 2 * i) }
        case .bf16:
            for i in 0..<count { out[i] = bfloat(src + 2 * i) }
        case .q8_0:
            for b in 0..<blocks {
                let blk = src + b * 34, o = out + b * 32
                let d = half(blk)
                let qs = (blk + 2).assumingMemoryBound(to: Int8.self)
                for j in 0..<32 { o[j] = d * Float(qs[j]) }
            }
        case .q4_0:
            for b in 0..<blocks {
                let blk = src + b * 18, o = out + b * 32
                let d = half(blk)
                let qs = (blk + 2).assumingMemoryBound(to: UInt8.self)
                for j in 0..<16 {
                    o[j] = d * Float(Int(qs[j] & 0x0F) - 8)
                    o[j + 16] = d * Float(Int(qs[j] >> 4) - 8)
                }
            }
        case .q4_1:
            for b in 0..<blocks {
                let blk = src + b * 20, o = out + b * 32
                let d = half(blk), m = half(blk + 2)
                let qs = (blk + 4).assumingMemoryBound(to: UInt8.self)
                for j in 0..<16 {
                    o[j] = d * Float(qs[j] & 0x0F) + m
                    o[j + 16] = d * Float(qs[j] >> 4) + m
                }
            }
        default:
            throw GGUFError.unsupportedTensorType(path: path, tensor: tensor, type: type.rawValue)
        }
    }
}

/// fp32 to GGUF encodings, following ggml's reference quantizers (`quantize_row_*_ref`), for
/// writing GGUF files.
public enum Quantize {
    public static func run(_ x: UnsafePointer<Float>, count: Int, type: GGMLType) -> [UInt8] {
        guard let layout = type.blockLayout, count % layout.elements == 0 else {
            preconditionFailure("cannot encode \(count) values as \(type)")
        }
        var out = [UInt8](repeating: 0, count: count / layout.elements * layout.bytes)
        out.withUnsafeMutableBytes { buf in
            let dst = buf.baseAddress!
            func putHalf(_ v: Float, _ at: Int) { dst.storeBytes(of: Float16(v).bitPattern.littleEndian, toByteOffset: at, as: UInt16.self) }
            switch type {
            case .f32:
                for i in 0..<count { dst.storeBytes(of: x[i].bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self) }
            case .f16:
                for i in 0..<count { putHalf(x[i], 2 * i) }
            case .bf16:
                for i in 0..<count {
                    // Round to nearest even, as ggml's fp32_to_bf16 does for finite values.
                    let bits = x[i].bitPattern
                    let rounded = UInt16((bits &+ 0x7FFF &+ ((bits >> 16) & 1)) >> 16)
                    dst.storeBytes(of: rounded.littleEndian, toByteOffset: 2 * i, as: UInt16.self)
                }
            case .q8_0:
                for b in 0..<count / 32 {
                    let v = x + b * 32, at = b * 34
                    var amax: Float = 0
                    for j in 0..<32 { amax = max(amax, abs(v[j])) }
                    let d = amax / 127, id: Float = d != 0 ? 1 / d : 0
                    putHalf(d, at)
                    for j in 0..<32 { dst.storeBytes(of: Int8((v[j] * id).rounded()), toByteOffset: at + 2 + j, as: Int8.self) }
                }
            case .q4_0:
                for b in 0..<count / 32 {
                    let v = x + b * 32, at = b * 18
                    var amax: Float = 0, maxv: Float = 0
                    for j in 0..<32 where abs(v[j]) > amax { amax = abs(v[j]); maxv = v[j] }
                    let d = maxv / -8, id: Float = d != 0 ? 1 / d : 0
                    putHalf(d, at)
                    for j in 0..<16 {
                        let lo = UInt8(min(15, Int8(v[j] * id + 8.5)))
                        let hi = UInt8(min(15, Int8(v[j + 16] * id + 8.5)))
                        dst.storeBytes(of: lo | hi << 4, toByteOffset: at + 2 + j, as: UInt8.self)
                    }
                }
            case .q4_1:
                for b in 0..<count / 32 {
                    let v = x + b * 32, at = b * 20
                    var lo = Float.infinity, hi = -Float.infinity
                    for j in 0..<32 { lo = min(lo, v[j]); hi = max(hi, v[j]) }
                    let d = (hi - lo) / 15, id: Float = d != 0 ? 1 / d : 0
                    putHalf(d, at)
                    putHalf(lo, at + 2)
                    for j in 0..<16 {
                        let a = UInt8(min(15, Int8((v[j] - lo) * id + 0.5)))
                        let c = UInt8(min(15, Int8((v[j + 16] - lo) * id + 0.5)))
                        dst.storeBytes(of: a | c << 4, toByteOffset: at + 4 + j, as: UInt8.self)
                    }
                }
            default:
                preconditionFailure("cannot encode \(type)")
            }
        }
        return out
    }
}
