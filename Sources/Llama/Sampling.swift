import Foundation
import Tensor

/// How tokens are chosen. Temperature 0 is greedy (argmax, lowest id on ties).
public struct SamplingParameters: Sendable, Equatable, Codable {
    public var temperature: Float = 0
    /// Keep only the k most likely tokens; 0 disables.
    public var topK: Int = 0
    /// Keep the smallest set of most likely tokens whose probability reaches p; 1 disables.
    public var topP: Float = 1
    public var seed: UInt64 = 0
    public var maxNewTokens: Int = 256
    /// Generation of a sequence ends when its text contains one of these; the text is cut before it.
    public var stopStrings: [String] = []
    /// Generation ends after one of these tokens (nil: the tokenizer's end-of-sequence token).
    public var stopTokens: [Int]? = nil

    public init(temperature: Float = 0, topK: Int = 0, topP: Float = 1, seed: UInt64 = 0,
                maxNewTokens: Int = 256, stopStrings: [String] = [], stopTokens: [Int]? = nil) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.seed = seed
        self.maxNewTokens = maxNewTokens
        self.stopStrings = stopStrings
        self.stopTokens = stopTokens
    }

    public var isGreedy: Bool { temperature == 0 }

    public func validate() throws {
        func bad(_ key: String, _ v: Any, _ expected: String) -> LlamaError {
            .badParameter(name: key, value: "\(v)", expected: expected)
        }
        guard temperature >= 0, temperature.isFinite else { throw bad("temperature", temperature, "a number >= 0") }
        guard topK >= 0 else { throw bad("top_k", topK, "an integer >= 0 (0 disables)") }
        guard topP > 0, topP <= 1 else { throw bad("top_p", topP, "a number in (0, 1]") }
        guard maxNewTokens >= 1 else { throw bad("max_new_tokens", maxNewTokens, "an integer >= 1") }
        guard !stopStrings.contains("") else { throw bad("stop", "\"\"", "non-empty stop strings") }
    }
}

/// xoshiro256** seeded through SplitMix64: fast, and the same seed gives the same stream on
/// every machine.
public struct Xoshiro256: RandomNumberGenerator, Sendable, Codable, Equatable {
    var s: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var z = seed
        func next() -> UInt64 {
            z &+= 0x9E37_79B9_7F4A_7C15
            var x = z
            x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
            x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
            return x ^ (x >> 31)
        }
        s = (next(), next(), next(), next())
    }

    /// An independent stream for sample `index` of a request seeded with `seed`: samples are
    /// reproducible whatever else shares their batch.
    public init(seed: UInt64, stream index: Int) {
        self.init(seed: seed ^ (UInt64(truncatingIfNeeded: index) &* 0xD6E8_FEB8_6659_FD93 &+ 0x632B_E59B_D9B4_E019))
    }

    public mutating func next() -> UInt64 {
        let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
        let t = s.1 << 17
        s.2 ^= s.0
        s.3 ^= s.1
        s.1 ^= s.2
        s.0 ^= s.3
        s.2 ^= t
        s.3 = s.3 << 45 | s.3 >> 19
        return result
    }

    /// Uniform in [0, 1) with 24 bits, the resolution of Float.
    public mutating func nextUnit() -> Float { Float(next() >> 40) * 0x1p-24 }

    public static func == (a: Self, b: Self) -> Bool { a.s == b.s }
    enum CodingKeys: CodingKey { case s }
    public init(from decoder: Decoder) throws {
        let v = try decoder.container(keyedBy: CodingKeys.self).decode([UInt64].self, forKey: .s)
        guard v.count == 4 else { throw DecodingError.dataCorrupted(.init(codingPath: [CodingKeys.s], debugDescription: "xoshiro state needs 4 words")) }
        s = (v[0], v[1], v[2], v[3])
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode([s.0, s.1, s.2, s.3], forKey: .s)
    }
}

/// One chosen token and its log-probabilities.
public struct TokenChoice: Sendable, Equatable {
    public var token: Int
    /// log p(token) under the model itself (softmax of the raw logits, temperature 1).
    public var modelLogProb: Float
    /// log q(token) under the distribution actually sampled from (after temperature, top-k and
    /// top-p, renormalised); 0 for greedy choices.
    public var sampledLogProb: Float
}

/// Chooses tokens from logits; holds scratch space, so use one per thread.
public final class TokenSampler {
    private var index: [Int32] = []
    private var prob: [Float] = []
    private var scratch: [Float] = []

    public init() {}

    public func choose(_ logits: UnsafePointer<Float>, vocabulary V: Int, parameters p: SamplingParameters,
                       greedy: Bool, rng: inout Xoshiro256) -> TokenChoice {
        if greedy || p.isGreedy {
            var best = 0
            for i in 1..<V where logits[i] > logits[best] { best = i }
            return TokenChoice(token: best, modelLogProb: logits[best] - Kernels.logSumExp(logits, V), sampledLogProb: 0)
        }
        let invT = 1 / p.temperature
        let maxZ = VectorMath.max(logits, V)
        index.removeAll(keepingCapacity: true)
        prob.removeAll(keepingCapacity: true)
        let lse: Float
        if p.topK > 0 && p.topK < V {
            lse = Kernels.logSumExp(logits, V)
            selectTopK(logits, V, p.topK)
            for j in 0..<index.count { prob[j] = expf((logits[Int(index[j])] - maxZ) * invT) }
        } else {
            // One vectorised pass: unnormalised probabilities at temperature T.
            if scratch.count < V { scratch = [Float](repeating: 0, count: V) }
            let sum = scratch.withUnsafeMutableBufferPointer { e in
                VectorMath.expShifted(logits, e.baseAddress!, V, shift: maxZ, scale: invT)
            }
            lse = p.temperature == 1 ? maxZ + logf(sum) : Kernels.logSumExp(logits, V)
            if p.topP >= 1 {
                // Plain temperature sampling: walk the distribution in id order.
                let u = rng.nextUnit() * sum
                var acc: Float = 0, pick = V - 1
                scratch.withUnsafeBufferPointer { e in
                    for i in 0..<V {
                        acc += e[i]
                        if u < acc { pick = i; break }
                    }
                }
                while scratch[pick] == 0 && pick > 0 { pick -= 1 }  // rounding ran past the end
                return TokenChoice(token: pick, modelLogProb: logits[pick] - lse, sampledLogProb: logf(scratch[pick] / sum))
            }
            // Tokens below (1-p)/V in probability together hold less than 1-p of the mass,
            // so the nucleus lies entirely above this cut.
            let cut = sum * (1 - p.topP) / Float(V)
            scratch.withUnsafeBufferPointer { e in
                for i in 0..<V where e[i] >= cut && e[i] > 0 {
                    index.append(Int32(i))
                    prob.append(e[i])
                }
            }
        }
        if index.count > 1 { sortCandidates() }
        var total: Float = 0
        for e in prob { total += e }
        var kept = prob.count
        if p.topP < 1 {
            var cum: Float = 0
            for j in 0..<prob.count {
                cum += prob[j]
                if cum >= p.topP * total { kept = j + 1; break }
            }
            total = 0
            for j in 0..<kept { total += prob[j] }
        }
        let u = rng.nextUnit() * total
        var acc: Float = 0, pick = kept - 1
        for j in 0..<kept {
            acc += prob[j]
            if u < acc { pick = j; break }
        }
        let token = Int(index[pick])
        return TokenChoice(token: token, modelLogProb: logits[token] - lse,
                           sampledLogProb: logf(prob[pick] / total))
    }

    /// Fills `index` with the ids of the k largest logits, in no particular order.
    private func selectTopK(_ logits: UnsafePointer<Float>, _ V: Int, _ k: Int) {
        // Min-heap of size k on (logit, -id).
        var heap = [(Float, Int32)]()
        heap.reserveCapacity(k)
        func less(_ a: (Float, Int32), _ b: (Float, Int32)) -> Bool { a.0 < b.0 || (a.0 == b.0 && a.1 > b.1) }
        func siftDown(_ i0: Int) {
            var i = i0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < heap.count && less(heap[l], heap[m]) { m = l }
                if r < heap.count && less(heap[r], heap[m]) { m = r }
                if m == i { return }
                heap.swapAt(i, m); i = m
            }
        }
        for i in 0..<V {
            let item = (logits[i], Int32(i))
            if heap.count < k {
                heap.append(item)
                var c = heap.count - 1
                while c > 0 {
                    let parent = (c - 1) / 2
                    if less(heap[c], heap[parent]) { heap.swapAt(c, parent); c = parent } else { break }
                }
            } else if less(heap[0], item) {
                heap[0] = item
                siftDown(0)
            }
        }
        for (_, id) in heap { index.append(id); prob.append(0) }
    }

    /// Sorts candidates by decreasing probability, ties by lower id (deterministic).
    private func sortCandidates() {
        var pairs = zip(index, prob).map { ($0, $1) }
        pairs.sort { $0.1 > $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) }
        index = pairs.map(\.0)
        prob = pairs.map(\.1)
    }
}
