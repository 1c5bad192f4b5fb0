import ModelIO
import XCTest

/// Blocks written by hand from the ggml block definitions, so the expected values do not come
/// from our own quantizer.
final class DequantizeTests: XCTestCase {
    func half(_ v: Float) -> [UInt8] { withUnsafeBytes(of: Float16(v).bitPattern.littleEndian) { Array($0) } }

    func decode(_ bytes: [UInt8], _ type: GGMLType, _ count: Int) throws -> [Float] {
        var out = [Float](repeating: .nan, count: count)
        try bytes.withUnsafeBytes { try Dequantize.run($0, type: type, count: count, into: &out) }
        return out
    }

    func testQ8_0() throws {
        let q: [Int8] = (0..<32).map { Int8($0 * 8 - 128) }
        let block = half(0.5) + q.map { UInt8(bitPattern: $0) }
        XCTAssertEqual(try decode(block, .q8_0, 32), q.map { 0.5 * Float($0) })
    }

    func testQ4_0LowNibblesFirstThenHigh() throws {
        // Byte j holds element j (low nibble) and element j+16 (high nibble).
        let qs: [UInt8] = (0..<16).map { UInt8($0) | UInt8(15 - $0) << 4 }
        let out = try decode(half(2) + qs, .q4_0, 32)
        for j in 0..<16 {
            XCTAssertEqual(out[j], 2 * Float(j - 8))
            XCTAssertEqual(out[j + 16], 2 * Float(15 - j - 8))
        }
    }

    func testQ4_1AddsTheMinimum() throws {
        let qs: [UInt8] = (0..<16).map { UInt8($0) | 3 << 4 }
        let out = try decode(half(0.25) + half(-1) + qs, .q4_1, 32)
        for j in 0..<16 {
            XCTAssertEqual(out[j], 0.25 * Float(j) - 1)
            XCTAssertEqual(out[j + 16], 0.25 * 3 - 1)
        }
    }

    func testHalfAndBFloat16() throws {
        // 0x3C00 = 1.0, 0xC000 = -2.0, 0x7BFF = 65504 in IEEE half; bf16 0x3FC0 = 1.5.
        XCTAssertEqual(try decode([0x00, 0x3C, 0x00, 0xC0, 0xFF, 0x7B], .f16, 3), [1, -2, 65504])
        XCTAssertEqual(try decode([0xC0, 0x3F, 0x80, 0xBF], .bf16, 2), [1.5, -1])
    }

    /// Values in [-2, 2]: Q8_0 steps by 2/127, Q4_0 by up to 2/8 (its top value clips), Q4_1 by 4/15.
    func testQuantizersRoundTripWithinTheirStepSize() throws {
        var s: UInt64 = 42
        let x: [Float] = (0..<256).map { _ in
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int(s >> 33) % 20001 - 10000) / 5000
        }
        for (type, tolerance) in [(GGMLType.f32, Float(0)), (.f16, 2e-3), (.bf16, 1.6e-2), (.q8_0, 0.01), (.q4_0, 0.25), (.q4_1, 0.14)] {
            let bytes = x.withUnsafeBufferPointer { Quantize.run($0.baseAddress!, count: x.count, type: type) }
            let y = try decode(bytes, type, x.count)
            let err = zip(x, y).map { abs($0 - $1) }.max()!
            XCTAssertLessThanOrEqual(err, tolerance, "\(type)")
        }
    }

    func testTooFewBytesIsAnError() {
        XCTAssertThrowsError(try decode([0, 0, 1], .q8_0, 32)) { e in
            XCTAssertTrue("\(e)".contains("cannot hold 32 Q8_0 values"), "\(e)")
        }
    }
}
