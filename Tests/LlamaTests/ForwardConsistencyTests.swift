import Llama
import Tensor
import XCTest

/// The decode path (shared prefix + per-sequence cache, batched) must compute the same function
/// as a plain prefill of the whole sequence. Tiny random model, tolerance 1e-4 absolute.
final class ForwardConsistencyTests: XCTestCase {
    func prefillLogits(_ model: LlamaModel, _ tokens: [Int]) throws -> [Float] {
        let cache = PrefixCache(config: model.config, capacity: tokens.count)
        let out = FloatBuffer(count: model.config.vocabularySize)
        try model.prefill(tokens, cache: cache, logits: out.pointer)
        return out.array
    }

    func testDecodeEqualsPrefillForEveryBatchLayoutAndPrecision() throws {
        for (tied, hs64, groupSize) in [(true, false, 2), (false, false, 2), (true, true, 2), (false, true, 5)] {
            let model = try Shared.tiny(seed: tied ? 3 : 4, tied: tied, headSize64: hs64,
                                        kvHeads: groupSize == 5 ? 2 : 1, groupSize: groupSize)
            let V = model.config.vocabularySize
            let prompt = [5, 9, 2, 33, 17]
            // Three sequences continue the prompt with different tokens, decoded together.
            let continuations = [[1, 2, 3, 4], [60, 61, 7, 8], [10, 20, 30, 40]]
            for precision in KVPrecision.allCases {
                let prefix = PrefixCache(config: model.config, capacity: prompt.count)
                try model.prefill(prompt, cache: prefix)
                let cache = SlotCache(config: model.config, slots: 3, capacity: 8, precision: precision)
                let logits = FloatBuffer(count: 3 * V)
                for step in 0..<4 {
                    // Drop sequence 1 after two steps to exercise a shrinking batch.
                    let slots = step < 2 ? [0, 1, 2] : [2, 0]
                    try model.decode(slots.map { continuations[$0][step] }, slots: slots, prefix: prefix, cache: cache, logits: logits.pointer)
                    for (row, s) in slots.enumerated() {
                        let expected = try prefillLogits(model, prompt + continuations[s][...step])
                        let tolerance: Float = precision == .f32 ? 1e-4 : 2e-2
                        for v in 0..<V {
                            XCTAssertEqual(logits[row * V + v], expected[v], accuracy: tolerance,
                                           "tied \(tied) HS64 \(hs64) G \(groupSize) \(precision) step \(step) slot \(s) token \(v)")
                        }
                    }
                }
            }
        }
    }

    /// Sequences of different prompts in one batch (a prefix per row, prompts of different
    /// lengths): each row's logits are those of a plain prefill of its own prompt and tokens.
    func testDecodeWithAPrefixPerRowEqualsPrefill() throws {
        for (hs64, groupSize) in [(false, 2), (true, 5)] {
            let model = try Shared.tiny(seed: 6, headSize64: hs64, kvHeads: groupSize == 5 ? 2 : 1, groupSize: groupSize)
            let V = model.config.vocabularySize
            let prompts = [[5, 9, 2, 33, 17], [40], [7, 7, 8, 1, 2, 3, 4, 5, 6, 11]]
            let prefixes = try prompts.map { p -> PrefixCache in
                let c = PrefixCache(config: model.config, capacity: p.count)
                try model.prefill(p, cache: c)
                return c
            }
            // Slots 0-1 continue prompt 0, slot 2 prompt 1, slots 3-4 prompt 2.
            let owner = [0, 0, 1, 2, 2]
            let continuations = [[1, 2, 3], [60, 61, 7], [10, 20, 30], [3, 3, 3], [50, 9, 1]]
            for precision in KVPrecision.allCases {
                let cache = SlotCache(config: model.config, slots: 5, capacity: 4, precision: precision)
                let logits = FloatBuffer(count: 5 * V)
                for step in 0..<3 {
                    // Slot 1 and slot 3 leave after the first step.
                    let slots = step == 0 ? [0, 1, 2, 3, 4] : [0, 2, 4]
                    try model.decode(slots.map { continuations[$0][step] }, slots: slots, prefixes: prefixes,
                                     rowPrefix: slots.map { owner[$0] }, cache: cache, logits: logits.pointer)
                    for (row, s) in slots.enumerated() {
                        let expected = try prefillLogits(model, prompts[owner[s]] + continuations[s][...step])
                        let tolerance: Float = precision == .f32 ? 1e-4 : 2e-2
                        for v in 0..<V {
                            XCTAssertEqual(logits[row * V + v], expected[v], accuracy: tolerance,
                                           "HS64 \(hs64) \(precision) step \(step) slot \(s) token \(v)")
                        }
                    }
                }
            }
        }
    }

    func testPrefillInTwoChunksEqualsOne() throws {
        let model = try Shared.tiny(seed: 5)
        let tokens = [1, 2, 3, 4, 5, 6, 7]
        let whole = try prefillLogits(model, tokens)
        let cache = PrefixCache(config: model.config, capacity: tokens.count)
        let out = FloatBuffer(count: model.config.vocabularySize)
        try model.prefill(Array(tokens[..<3]), cache: cache)
        try model.prefill(Array(tokens[3...]), cache: cache, logits: out.pointer)
        for v in 0..<out.count { XCTAssertEqual(out[v], whole[v], accuracy: 1e-4) }
    }

    func testBadInputsAreErrorsNotCrashes() throws {
        let model = try Shared.tiny()
        let cache = PrefixCache(config: model.config, capacity: 4)
        XCTAssertThrowsError(try model.prefill([], cache: cache)) { e in XCTAssertTrue("\(e)".contains("empty")) }
        XCTAssertThrowsError(try model.prefill([1, 64], cache: cache)) { e in XCTAssertTrue("\(e)".contains("token id 64")) }
        XCTAssertThrowsError(try model.prefill([1, 2, 3, 4, 5], cache: cache)) { e in XCTAssertTrue("\(e)".contains("5 positions")) }
        XCTAssertThrowsError(try LlamaConfig(vocabularySize: 10, channels: 30, layers: 1, heads: 4, kvHeads: 2, feedForward: 8)) { e in
            XCTAssertTrue("\(e)".contains("num_attention_heads"), "\(e)")
        }
        XCTAssertThrowsError(try LlamaConfig(vocabularySize: 10, channels: 32, layers: 1, heads: 4, kvHeads: 3, feedForward: 8)) { e in
            XCTAssertTrue("\(e)".contains("num_key_value_heads"), "\(e)")
        }
    }
}
