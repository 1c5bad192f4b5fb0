import Foundation
import Schema
import XCTest
import Wire

/// A million random and mutated frames through the decoder: it must return or throw, never
/// trap, and whatever it accepts must encode again. (A trap would end the test process.)
final class FuzzTests: XCTestCase {
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    func testAMillionRandomAndMutatedFramesNeverCrashTheDecoder() throws {
        let corpus = try exampleBodies().map { try WireCodec.encode($0.0, id: "m-1", sender: "fuzz", payload: $0.1) }
        var rng = SplitMix(state: 20_261_121)
        var accepted = 0, refused = 0
        let iterations = 1_000_000
        for i in 0..<iterations {
            var frames: [[UInt8]]
            if i % 4 == 0 {
                // Random bytes, sometimes starting like an envelope (field 1 varint = 1).
                let length = Int.random(in: 0...96, using: &rng)
                var bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
                if i % 8 == 0 && !bytes.isEmpty { bytes.insert(contentsOf: [0x08, 0x01], at: 0) }
                frames = [bytes]
                if Bool.random(using: &rng) { frames.append([UInt8](repeating: 0, count: Int.random(in: 0...8, using: &rng))) }
            } else {
                frames = corpus[Int.random(in: 0..<corpus.count, using: &rng)]
                var head = frames[0]
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    switch Int.random(in: 0..<6, using: &rng) {
                    case 0 where !head.isEmpty:  // flip a bit
                        let at = Int.random(in: 0..<head.count, using: &rng)
                        head[at] ^= 1 << UInt8.random(in: 0...7, using: &rng)
                    case 1 where !head.isEmpty:  // overwrite a byte with an interesting value
                        head[Int.random(in: 0..<head.count, using: &rng)] = [0x00, 0x7F, 0x80, 0xFF, 0x0A, 0x12][Int.random(in: 0..<6, using: &rng)]
                    case 2:  // insert bytes
                        let at = Int.random(in: 0...head.count, using: &rng)
                        head.insert(contentsOf: (0..<Int.random(in: 1...8, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }, at: at)
                    case 3 where !head.isEmpty:  // delete a range
                        let at = Int.random(in: 0..<head.count, using: &rng)
                        head.removeSubrange(at..<min(head.count, at + Int.random(in: 1...8, using: &rng)))
                    case 4 where head.count > 1:  // truncate
                        head = Array(head.prefix(Int.random(in: 0..<head.count, using: &rng)))
                    case 5 where head.count > 2:  // duplicate a slice (repeated fields, nested lengths)
                        let from = Int.random(in: 0..<head.count - 1, using: &rng)
                        let to = Int.random(in: from + 1...head.count, using: &rng)
                        head.insert(contentsOf: head[from..<to], at: Int.random(in: 0...head.count, using: &rng))
                    default:
                        break
                    }
                }
                frames[0] = head
                if Int.random(in: 0..<16, using: &rng) == 0 { frames.append([9]) }
            }
            do {
                let message = try WireCodec.decode(frames)
                accepted += 1
                let again = try WireCodec.encode(message.body, id: message.envelope.messageID,
                                                 sender: message.envelope.sender, payload: message.payload)
                XCTAssertEqual(try WireCodec.decode(again).body, message.body)
            } catch is WireError {
                refused += 1
            }
        }
        XCTAssertEqual(accepted + refused, iterations)
        XCTAssertGreaterThan(refused, iterations / 2, "most mutations must be refused")
        XCTAssertGreaterThan(accepted, 1000, "some mutations (e.g. of string bytes) still decode; the fuzzer must reach the validator")
        print("wire fuzz: \(iterations) frames, \(accepted) accepted, \(refused) refused, 0 crashes")
    }
}
