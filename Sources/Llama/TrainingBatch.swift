/// B sequences padded to T positions for one forward/backward pass, with what is scored.
///
/// Position t of sequence b predicts token t+1, so the loss mask and token weights have T-1
/// entries per sequence. The losses (CodeRL's, and the definition of the PyTorch reference):
///
///     logp[b,t] = log softmax(logits[b,t])[tokens[b][t+1]]
///     M  = Σ lossMask
///     ce = -Σ lossMask * logp / M
///     pg = -Σ weights  * logp / M          (weights may be negative)
///
/// Keys are visible to position t when j <= t and `keyMask[b][j]`; positions are 0..<T whatever
/// the mask (right padding, as the learner builds batches).
public struct TrainingBatch: Sendable {
    public let tokens: [[Int]]
    public let keyMask: [[Bool]]
    public let lossMask: [[Float]]
    public let weights: [[Float]]?

    public var sequences: Int { tokens.count }
    public var length: Int { tokens.first?.count ?? 0 }

    public init(tokens: [[Int]], keyMask: [[Bool]], lossMask: [[Float]], weights: [[Float]]? = nil,
                vocabularySize: Int) throws {
        guard let T = tokens.first?.count, T >= 2 else {
            throw LlamaError.badParameter(name: "training batch", value: "\(tokens.count) sequences of \(tokens.first?.count ?? 0) tokens",
                                          expected: "at least one sequence of 2 or more tokens")
        }
        func check(_ rows: [[some Any]], _ name: String, width: Int) throws {
            guard rows.count == tokens.count else {
                throw LlamaError.badParameter(name: name, value: "\(rows.count) rows", expected: "\(tokens.count), one per sequence")
            }
            for (b, r) in rows.enumerated() where r.count != width {
                throw LlamaError.badParameter(name: "\(name)[\(b)]", value: "\(r.count) entries", expected: "\(width)")
            }
        }
        try check(tokens, "tokens", width: T)
        try check(keyMask, "key mask", width: T)
        try check(lossMask, "loss mask", width: T - 1)
        if let weights {
            try check(weights, "token weights", width: T - 1)
            for (b, row) in weights.enumerated() {
                if let t = row.firstIndex(where: { !$0.isFinite }) {
                    throw LlamaError.badParameter(name: "token weights[\(b)][\(t)]", value: "\(row[t])", expected: "a finite number")
                }
            }
        }
        for (b, row) in tokens.enumerated() {
            if let t = row.firstIndex(where: { $0 < 0 || $0 >= vocabularySize }) {
                throw LlamaError.badParameter(name: "tokens[\(b)][\(t)]", value: "\(row[t])", expected: "a token id below \(vocabularySize)")
            }
        }
        for (b, row) in lossMask.enumerated() {
            if let t = row.firstIndex(where: { $0 != 0 && $0 != 1 }) {
                throw LlamaError.badParameter(name: "loss mask[\(b)][\(t)]", value: "\(row[t])", expected: "0 or 1")
            }
        }
        self.tokens = tokens
        self.keyMask = keyMask
        self.lossMask = lossMask
        self.weights = weights
    }

    /// Right-pads sequences to the longest one with `pad`; the loss covers the tokens after each
    /// sequence's prompt (`promptLengths[b]` tokens), padding is masked. `weights[b]`, when
    /// given, holds one weight per completion token (`count - promptLength` entries).
    public static func completions(_ sequences: [[Int]], promptLengths: [Int], weights: [[Float]]? = nil,
                                   pad: Int, vocabularySize: Int) throws -> TrainingBatch {
        guard promptLengths.count == sequences.count else {
            throw LlamaError.badParameter(name: "prompt lengths", value: "\(promptLengths.count)", expected: "\(sequences.count), one per sequence")
        }
        let T = sequences.map(\.count).max() ?? 0
        var tokens: [[Int]] = [], keys: [[Bool]] = [], mask: [[Float]] = [], w: [[Float]] = []
        for (b, s) in sequences.enumerated() {
            let p = promptLengths[b]
            guard p >= 1, p < s.count else {
                throw LlamaError.badParameter(name: "sequence \(b)", value: "\(s.count) tokens with a prompt of \(p)",
                                              expected: "a prompt of at least 1 token and at least one completion token")
            }
            tokens.append(s + Array(repeating: pad, count: T - s.count))
            keys.append(Array(repeating: true, count: s.count) + Array(repeating: false, count: T - s.count))
            var m = [Float](repeating: 0, count: T - 1)
            for t in (p - 1)..<(s.count - 1) { m[t] = 1 }
            mask.append(m)
            if let weights {
                guard b < weights.count, weights[b].count == s.count - p else {
                    throw LlamaError.badParameter(name: "weights[\(b)]", value: "\(b < weights.count ? weights[b].count : 0) entries",
                                                  expected: "\(s.count - p), one per completion token")
                }
                var row = [Float](repeating: 0, count: T - 1)
                for (i, x) in weights[b].enumerated() { row[p - 1 + i] = x }
                w.append(row)
            }
        }
        return try TrainingBatch(tokens: tokens, keyMask: keys, lossMask: mask, weights: weights == nil ? nil : w,
                                 vocabularySize: vocabularySize)
    }
}

/// The two token losses of one batch (see `TrainingBatch`), and how many tokens were scored.
public struct TokenLosses: Sendable, Equatable {
    public var crossEntropy: Float
    public var weighted: Float
    public var scoredTokens: Int
    public init(crossEntropy: Float, weighted: Float, scoredTokens: Int) {
        self.crossEntropy = crossEntropy
        self.weighted = weighted
        self.scoredTokens = scoredTokens
    }
}

/// How the two token losses are combined into the loss that is differentiated:
/// `ce * crossEntropy + pg * weighted`, times `scale` (e.g. 1/k over k accumulated micro-batches).
public struct LossMix: Sendable, Equatable {
    public var crossEntropy: Float
    public var weighted: Float
    public var scale: Float
    public init(crossEntropy: Float = 1, weighted: Float = 0, scale: Float = 1) {
        self.crossEntropy = crossEntropy
        self.weighted = weighted
        self.scale = scale
    }
}
