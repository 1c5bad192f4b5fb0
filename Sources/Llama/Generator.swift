import Foundation
import ModelIO
import Tensor

/// One generated sequence.
public struct GeneratedSequence: Sendable {
    public enum FinishReason: Sendable, Equatable {
        case stopToken(Int)
        case stopString(String)
        case length
    }

    /// Tokens as generated, including a final stop token or the token that completed a stop string.
    public var tokens: [Int] = []
    /// log p(token) under the model at temperature 1, one per token.
    public var modelLogProbs: [Float] = []
    /// log q(token) under the distribution sampled from (0 for greedy), one per token.
    public var sampledLogProbs: [Float] = []
    /// Decoded text, without a stop token's text and cut before a stop string.
    public var text: String = ""
    public var finishReason: FinishReason = .length
    /// True for the greedy baseline sequence.
    public var greedy = false
}

/// Timings of one `generate` call, for the speed report.
public struct GenerationStats: Sendable {
    public var promptTokens = 0
    public var prefillSeconds = 0.0
    public var decodeSeconds = 0.0
    public var decodeSteps = 0
    /// Tokens produced by all sequences (the first token of each comes from the prefill logits).
    public var generatedTokens = 0
    public var prefillTokensPerSecond: Double { Double(promptTokens) / max(prefillSeconds, 1e-9) }
    public var decodeTokensPerSecond: Double { Double(generatedTokens) / max(decodeSeconds, 1e-9) }
}

/// Samples many continuations of one prompt: the prompt is prefilled once into a shared prefix
/// cache, then all sequences decode together, one batched forward per step, each leaving the
/// batch when it stops.
public final class Generator {
    public let model: LlamaModel
    public let tokenizer: Tokenizer
    public var kvPrecision: KVPrecision
    private let sampler = TokenSampler()

    public init(model: LlamaModel, tokenizer: Tokenizer, kvPrecision: KVPrecision = .f16) {
        self.model = model
        self.tokenizer = tokenizer
        self.kvPrecision = kvPrecision
    }

    /// Generates `samples` sequences from `prompt` (plus a greedy one first when
    /// `greedyBaseline`). Sample i draws from its own random stream `(seed, i)`.
    public func generate(prompt: [Int], samples: Int, parameters p: SamplingParameters,
                         greedyBaseline: Bool = false) throws -> ([GeneratedSequence], GenerationStats) {
        try p.validate()
        guard samples >= 0, samples + (greedyBaseline ? 1 : 0) > 0 else {
            throw LlamaError.badParameter(name: "samples", value: "\(samples)", expected: "at least one sequence")
        }
        let config = model.config, V = config.vocabularySize
        let n = samples + (greedyBaseline ? 1 : 0)
        let maxNew = min(p.maxNewTokens, config.contextLength - prompt.count)
        guard maxNew >= 1 else {
            throw LlamaError.contextOverflow(needed: prompt.count + 1, capacity: config.contextLength)
        }
        let stopTokens = Set(p.stopTokens ?? tokenizer.eosID.map { [$0] } ?? [])
        let stopBytes = p.stopStrings.map { Array($0.utf8) }

        var stats = GenerationStats()
        stats.promptTokens = prompt.count
        let prefix = PrefixCache(config: config, capacity: prompt.count)
        let cache = SlotCache(config: config, slots: n, capacity: maxNew, precision: kvPrecision)
        let logits = FloatBuffer(count: n * V)
        var t0 = DispatchTime.now().uptimeNanoseconds
        try model.prefill(prompt, cache: prefix, logits: logits.pointer)
        stats.prefillSeconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9

        var seqs = (0..<n).map { i -> GeneratedSequence in
            var s = GeneratedSequence()
            s.greedy = greedyBaseline && i == 0
            return s
        }
        var rngs = (0..<n).map { i in Xoshiro256(seed: p.seed, stream: greedyBaseline ? i - 1 : i) }
        var bytes = [[UInt8]](repeating: [], count: n)
        var active = Array(0..<n)

        t0 = DispatchTime.now().uptimeNanoseconds
        while !active.isEmpty {
            var next: [Int] = []
            var stillActive: [Int] = []
            for (r, s) in active.enumerated() {
                // Decode wrote row r for active sequence r; the prefill wrote row 0 only, and
                // every sequence draws its first token from it.
                let row = logits.pointer + (stats.decodeSteps == 0 ? 0 : r) * V
                let c = sampler.choose(row, vocabulary: V, parameters: p, greedy: seqs[s].greedy, rng: &rngs[s])
                seqs[s].tokens.append(c.token)
                seqs[s].modelLogProbs.append(c.modelLogProb)
                seqs[s].sampledLogProbs.append(c.sampledLogProb)
                stats.generatedTokens += 1
                if stopTokens.contains(c.token) {
                    seqs[s].finishReason = .stopToken(c.token)
                    continue
                }
                let before = bytes[s].count
                bytes[s].append(contentsOf: tokenizer.bytes(of: c.token))
                if let (k, at) = Self.findStop(stopBytes, in: bytes[s], newFrom: before) {
                    bytes[s].removeSubrange(at...)
                    seqs[s].finishReason = .stopString(p.stopStrings[k])
                    continue
                }
                if seqs[s].tokens.count >= maxNew { continue }  // finish reason stays .length
                next.append(c.token)
                stillActive.append(s)
            }
            active = stillActive
            if active.isEmpty { break }
            try model.decode(next, slots: active, prefix: prefix, cache: cache, logits: logits.pointer)
            stats.decodeSteps += 1
        }
        stats.decodeSeconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        for s in 0..<n { seqs[s].text = String(decoding: bytes[s], as: UTF8.self) }
        return (seqs, stats)
    }

    /// The first stop string that now occurs in `text` in a match ending after `newFrom`,
    /// as (index, start offset).
    static func findStop(_ stops: [[UInt8]], in text: [UInt8], newFrom: Int) -> (Int, Int)? {
        var best: (Int, Int)? = nil
        for (k, stop) in stops.enumerated() where stop.count <= text.count {
            let lo = max(0, newFrom - stop.count + 1), hi = text.count - stop.count
            guard lo <= hi else { continue }
            for at in lo...hi where text[at] == stop[0] {
                if text[at..<at + stop.count].elementsEqual(stop) {
                    if best == nil || at < best!.1 { best = (k, at) }
                    break
                }
            }
        }
        return best
    }
}
