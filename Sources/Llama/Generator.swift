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

/// Samples many continuations of one or several prompts: each prompt is prefilled once into its
/// own prefix cache, then all sequences decode together, one batched forward per step, each
/// leaving the batch when it stops.
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

    /// One prompt of a batched generation: `samples` sequences (plus a greedy one first when
    /// `greedyBaseline`), sample i drawing from its own random stream `(parameters.seed, i)`.
    public struct Job: Sendable {
        public var prompt: [Int]
        public var samples: Int
        public var parameters: SamplingParameters
        public var greedyBaseline: Bool

        public init(prompt: [Int], samples: Int, parameters: SamplingParameters, greedyBaseline: Bool = false) {
            self.prompt = prompt
            self.samples = samples
            self.parameters = parameters
            self.greedyBaseline = greedyBaseline
        }
    }

    /// Generates `samples` sequences from `prompt` (plus a greedy one first when
    /// `greedyBaseline`). Sample i draws from its own random stream `(seed, i)`.
    public func generate(prompt: [Int], samples: Int, parameters p: SamplingParameters,
                         greedyBaseline: Bool = false) throws -> ([GeneratedSequence], GenerationStats) {
        let (all, stats) = try generate([Job(prompt: prompt, samples: samples, parameters: p, greedyBaseline: greedyBaseline)])
        return (all[0], stats)
    }

    /// Generates the sequences of several prompts as one batch: each prompt is prefilled once
    /// into its own prefix cache, then every sequence of every prompt decodes together, one
    /// batched forward per step. A job's sequences are the same as `generate(prompt:...)` would
    /// give up to floating-point summation order. Returns the sequences per job.
    public func generate(_ jobs: [Job]) throws -> ([[GeneratedSequence]], GenerationStats) {
        let config = model.config, V = config.vocabularySize
        var stats = GenerationStats()
        guard !jobs.isEmpty else { return ([], stats) }
        var owner: [Int] = [], firstOfJob: [Int] = [], maxNew: [Int] = []
        for (j, job) in jobs.enumerated() {
            try job.parameters.validate()
            guard job.samples >= 0, job.samples + (job.greedyBaseline ? 1 : 0) > 0 else {
                throw LlamaError.badParameter(name: "samples", value: "\(job.samples)", expected: "at least one sequence")
            }
            let m = min(job.parameters.maxNewTokens, config.contextLength - job.prompt.count)
            guard m >= 1 else {
                throw LlamaError.contextOverflow(needed: job.prompt.count + 1, capacity: config.contextLength)
            }
            maxNew.append(m)
            firstOfJob.append(owner.count)
            owner += Array(repeating: j, count: job.samples + (job.greedyBaseline ? 1 : 0))
        }
        let n = owner.count
        let stopTokens = jobs.map { Set($0.parameters.stopTokens ?? tokenizer.eosID.map { [$0] } ?? []) }
        let stopBytes = jobs.map { $0.parameters.stopStrings.map { Array($0.utf8) } }

        // Prefill: each prompt once, its last row's logits kept for its sequences' first token.
        let prefixes = jobs.map { PrefixCache(config: config, capacity: $0.prompt.count) }
        let first = FloatBuffer(count: jobs.count * V)
        var t0 = DispatchTime.now().uptimeNanoseconds
        for (j, job) in jobs.enumerated() {
            try model.prefill(job.prompt, cache: prefixes[j], logits: first.pointer + j * V)
            stats.promptTokens += job.prompt.count
        }
        stats.prefillSeconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9

        let cache = SlotCache(config: config, slots: n, capacity: maxNew.max()!, precision: kvPrecision)
        let logits = FloatBuffer(count: n * V)
        var seqs = (0..<n).map { i -> GeneratedSequence in
            var s = GeneratedSequence()
            s.greedy = jobs[owner[i]].greedyBaseline && i == firstOfJob[owner[i]]
            return s
        }
        var rngs = (0..<n).map { i -> Xoshiro256 in
            let job = jobs[owner[i]], k = i - firstOfJob[owner[i]]
            return Xoshiro256(seed: job.parameters.seed, stream: job.greedyBaseline ? k - 1 : k)
        }
        var bytes = [[UInt8]](repeating: [], count: n)
        var active = Array(0..<n)

        t0 = DispatchTime.now().uptimeNanoseconds
        while !active.isEmpty {
            var next: [Int] = []
            var stillActive: [Int] = []
            for (r, s) in active.enumerated() {
                // Decode wrote row r for active sequence r; every sequence draws its first
                // token from its prompt's prefill logits.
                let j = owner[s], p = jobs[j].parameters
                let row = stats.decodeSteps == 0 ? first.pointer + j * V : logits.pointer + r * V
                let c = sampler.choose(row, vocabulary: V, parameters: p, greedy: seqs[s].greedy, rng: &rngs[s])
                seqs[s].tokens.append(c.token)
                seqs[s].modelLogProbs.append(c.modelLogProb)
                seqs[s].sampledLogProbs.append(c.sampledLogProb)
                stats.generatedTokens += 1
                if stopTokens[j].contains(c.token) {
                    seqs[s].finishReason = .stopToken(c.token)
                    continue
                }
                let before = bytes[s].count
                bytes[s].append(contentsOf: tokenizer.bytes(of: c.token))
                if let (k, at) = Self.findStop(stopBytes[j], in: bytes[s], newFrom: before) {
                    bytes[s].removeSubrange(at...)
                    seqs[s].finishReason = .stopString(p.stopStrings[k])
                    continue
                }
                if seqs[s].tokens.count >= maxNew[j] { continue }  // finish reason stays .length
                next.append(c.token)
                stillActive.append(s)
            }
            active = stillActive
            if active.isEmpty { break }
            try model.decode(next, slots: active, prefixes: prefixes, rowPrefix: active.map { owner[$0] }, cache: cache,
                             logits: logits.pointer)
            stats.decodeSteps += 1
        }
        stats.decodeSeconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        for s in 0..<n { seqs[s].text = String(decoding: bytes[s], as: UTF8.self) }
        var out = [[GeneratedSequence]](repeating: [], count: jobs.count)
        for s in 0..<n { out[owner[s]].append(seqs[s]) }
        return (out, stats)
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
