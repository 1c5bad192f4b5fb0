import Foundation

public enum TokenizerError: Error, CustomStringConvertible, Equatable {
    case unsupportedModel(String)
    case badMerge(index: Int, merge: String)
    case missingByte(UInt8)
    case tokenOutOfRange(Int, vocabularySize: Int)
    case sizeMismatch(tokens: Int, types: Int)
    case unsupportedPreTokenizer(String)

    public var description: String {
        switch self {
        case let .unsupportedModel(m):
            return "tokenizer model '\(m)' is not supported (only byte-level BPE, tokenizer.ggml.model = gpt2)"
        case let .badMerge(i, m):
            return "merge \(i) '\(m)' is not two vocabulary tokens separated by one space"
        case let .missingByte(b):
            return "the vocabulary has no single-byte tokens (first missing: 0x\(String(b, radix: 16))); this is not a byte-level BPE vocabulary"
        case let .tokenOutOfRange(id, n):
            return "token id \(id) is outside the vocabulary of \(n) tokens"
        case let .unsupportedPreTokenizer(pre):
            return "pre-tokenizer '\(pre)' (tokenizer.ggml.pre) is not supported (smollm, gpt2 and default are)"
        case let .sizeMismatch(t, ty):
            return "tokenizer has \(t) tokens but \(ty) token types"
        }
    }
}

/// Byte-level BPE (GPT-2 family) built from GGUF metadata.
///
/// Encoding: optional special-token matching, then `PreTokenizer`, then BPE merges by rank on
/// each piece's bytes. Decoding maps tokens back to bytes; it round-trips every encoded string.
/// `@unchecked Sendable`: all state is immutable after init except the piece cache, which is
/// guarded by `cacheLock`.
public final class Tokenizer: @unchecked Sendable {
    public enum TokenType: Int, Sendable { case normal = 1, unknown, control, userDefined, unused, byte }

    public let tokens: [String]
    public let types: [TokenType]
    public let eosID: Int?
    public let bosID: Int?
    public let addBOS: Bool
    public let digits: PreTokenizer.Digits
    /// Special tokens (control and user-defined) by text, longest first for matching.
    public let specialTokens: [(text: [UInt8], id: Int)]

    private let specialFirstByte: [Bool]  // 256 flags: can a special token start with this byte?
    private let tokenBytes: [[UInt8]]
    private let byteToken: [Int]  // byte value -> id of its single-byte token
    private let merges: [UInt64: (rank: Int32, id: Int32)]
    private var cache: [[UInt8]: [Int]] = [:]
    private let cacheLock = NSLock()

    public var vocabularySize: Int { tokens.count }

    public init(tokens: [String], types: [TokenType], merges mergeStrings: [String],
                eosID: Int?, bosID: Int?, addBOS: Bool = false,
                digits: PreTokenizer.Digits = .individual) throws {
        guard types.count == tokens.count else { throw TokenizerError.sizeMismatch(tokens: tokens.count, types: types.count) }
        self.tokens = tokens
        self.types = types
        self.eosID = eosID
        self.bosID = bosID
        self.addBOS = addBOS
        self.digits = digits
        let (toUnicode, fromUnicode) = ByteLevel.tables
        var ids: [String: Int] = [:]
        ids.reserveCapacity(tokens.count)
        var bytes: [[UInt8]] = []
        bytes.reserveCapacity(tokens.count)
        var specials: [(text: [UInt8], id: Int)] = []
        for (i, t) in tokens.enumerated() {
            if ids[t] == nil { ids[t] = i }
            switch types[i] {
            case .control, .userDefined:
                bytes.append(Array(t.utf8))
                if !t.isEmpty { specials.append((Array(t.utf8), i)) }
            default:
                // Byte-level text: each scalar stands for one byte; keep others as UTF-8.
                var b: [UInt8] = []
                for s in t.unicodeScalars {
                    if let v = fromUnicode[s] { b.append(v) } else { b.append(contentsOf: String(s).utf8) }
                }
                bytes.append(b)
            }
        }
        tokenBytes = bytes
        specialTokens = specials.sorted { $0.text.count > $1.text.count }
        var first = [Bool](repeating: false, count: 256)
        for s in specials { first[Int(s.text[0])] = true }
        specialFirstByte = first
        // Vocabularies may lack bytes that never occur in UTF-8 text (0xC0, 0xF5...) and some
        // control characters; like llama.cpp and Hugging Face (no byte fallback), such bytes
        // are dropped when encoding.
        var byteTok = [Int](repeating: -1, count: 256)
        for b in 0..<256 { byteTok[b] = ids[String(toUnicode[b])] ?? -1 }
        guard byteTok.contains(where: { $0 >= 0 }) else { throw TokenizerError.missingByte(0) }
        byteToken = byteTok
        var m: [UInt64: (rank: Int32, id: Int32)] = [:]
        m.reserveCapacity(mergeStrings.count)
        for (rank, merge) in mergeStrings.enumerated() {
            let parts = merge.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2, let a = ids[String(parts[0])], let b = ids[String(parts[1])],
                  let r = ids[String(parts[0]) + String(parts[1])] else {
                throw TokenizerError.badMerge(index: rank, merge: merge)
            }
            let key = UInt64(a) << 32 | UInt64(b)
            if m[key] == nil { m[key] = (Int32(rank), Int32(r)) }
        }
        merges = m
    }

    /// Builds the tokenizer from `tokenizer.ggml.*` metadata.
    public convenience init(gguf: GGUFFile) throws {
        let model = try gguf.string("tokenizer.ggml.model")
        guard model == "gpt2" else { throw TokenizerError.unsupportedModel(model) }
        let tokens = try gguf.strings("tokenizer.ggml.tokens")
        let types = gguf.metadata["tokenizer.ggml.token_type"] != nil
            ? try gguf.ints("tokenizer.ggml.token_type").map { TokenType(rawValue: $0) ?? .normal }
            : Array(repeating: .normal, count: tokens.count)
        let pre = (try? gguf.string("tokenizer.ggml.pre")) ?? "default"
        // Pre-tokenizers we implement exactly: SmolLM2's (digits split, then GPT-2) and GPT-2's.
        // Others (llama-bpe, qwen2, deepseek...) use different patterns; refuse rather than
        // produce ids the model never saw.
        guard ["smollm", "gpt2", "default"].contains(pre) else { throw TokenizerError.unsupportedPreTokenizer(pre) }
        try self.init(
            tokens: tokens, types: types, merges: try gguf.strings("tokenizer.ggml.merges"),
            eosID: try? gguf.int("tokenizer.ggml.eos_token_id"),
            bosID: try? gguf.int("tokenizer.ggml.bos_token_id"),
            addBOS: gguf.metadata["tokenizer.ggml.add_bos_token"]?.bool ?? false,
            digits: pre == "smollm" ? .individual : .grouped)
    }

    /// The id of a token by its exact text (e.g. "<|im_end|>").
    public func id(of text: String) -> Int? {
        let b = Array(text.utf8)
        if let s = specialTokens.first(where: { $0.text == b }) { return s.id }
        return tokens.firstIndex(of: text)
    }

    // MARK: encoding

    /// Token ids of `text`. With `parseSpecial`, special-token texts such as `<|im_start|>`
    /// become their ids; otherwise they are encoded as ordinary text.
    public func encode(_ text: String, parseSpecial: Bool = false) -> [Int] {
        var out: [Int] = []
        if addBOS, let bos = bosID { out.append(bos) }
        let utf8 = Array(text.utf8)
        guard parseSpecial, !specialTokens.isEmpty else {
            encodeOrdinary(utf8[...], into: &out)
            return out
        }
        var start = 0, i = 0
        while i < utf8.count {
            if specialFirstByte[Int(utf8[i])],
               let s = specialTokens.first(where: { matches($0.text, utf8, at: i) }) {
                if start < i { encodeOrdinary(utf8[start..<i], into: &out) }
                out.append(s.id)
                i += s.text.count
                start = i
            } else {
                i += 1
            }
        }
        if start < utf8.count { encodeOrdinary(utf8[start...], into: &out) }
        return out
    }

    private func matches(_ needle: [UInt8], _ hay: [UInt8], at i: Int) -> Bool {
        guard i + needle.count <= hay.count else { return false }
        for j in 0..<needle.count where hay[i + j] != needle[j] { return false }
        return true
    }

    private func encodeOrdinary(_ bytes: ArraySlice<UInt8>, into out: inout [Int]) {
        let text = String(decoding: bytes, as: UTF8.self)
        let scalars = Array(text.unicodeScalars)
        // Byte offsets of each scalar, so pieces can be cut from the UTF-8 directly.
        var offsets = [Int](repeating: 0, count: scalars.count + 1)
        for (i, s) in scalars.enumerated() { offsets[i + 1] = offsets[i] + UTF8.width(s) }
        let utf8 = Array(text.utf8)
        for piece in PreTokenizer.split(scalars, digits: digits) {
            let pb = Array(utf8[offsets[piece.lowerBound]..<offsets[piece.upperBound]])
            cacheLock.lock()
            let hit = cache[pb]
            cacheLock.unlock()
            if let hit { out.append(contentsOf: hit); continue }
            let ids = bpe(pb)
            cacheLock.lock()
            if cache.count > 200_000 { cache.removeAll(keepingCapacity: true) }
            cache[pb] = ids
            cacheLock.unlock()
            out.append(contentsOf: ids)
        }
    }

    /// Merges the bytes of one piece by rank until no adjacent pair has a merge.
    func bpe(_ piece: [UInt8]) -> [Int] {
        var syms = piece.compactMap { b -> Int? in let id = byteToken[Int(b)]; return id >= 0 ? id : nil }
        while syms.count > 1 {
            var best = Int32.max, at = -1, result: Int32 = 0
            for i in 0..<syms.count - 1 {
                if let m = merges[UInt64(syms[i]) << 32 | UInt64(syms[i + 1])], m.rank < best {
                    best = m.rank; at = i; result = m.id
                }
            }
            if at < 0 { break }
            syms[at] = Int(result)
            syms.remove(at: at + 1)
        }
        return syms
    }

    // MARK: decoding

    /// The bytes a token stands for (special tokens as their text).
    public func bytes(of id: Int) -> [UInt8] {
        guard id >= 0 && id < tokenBytes.count else { return [] }
        return tokenBytes[id]
    }

    public func isSpecial(_ id: Int) -> Bool {
        id >= 0 && id < types.count && (types[id] == .control || types[id] == .userDefined)
    }

    /// Text of `ids`. Invalid UTF-8 (a token sequence cut inside a character) decodes as U+FFFD.
    public func decode(_ ids: [Int], skipSpecial: Bool = false) -> String {
        var out: [UInt8] = []
        for id in ids where !(skipSpecial && isSpecial(id)) { out.append(contentsOf: bytes(of: id)) }
        return String(decoding: out, as: UTF8.self)
    }
}

/// GPT-2's reversible map between bytes and printable unicode scalars.
enum ByteLevel {
    static let tables: (toUnicode: [Unicode.Scalar], fromUnicode: [Unicode.Scalar: UInt8]) = {
        var bs = Array(33...126) + Array(161...172) + Array(174...255)
        var cs = bs
        var n = 0
        for b in 0..<256 where !bs.contains(b) {
            bs.append(b)
            cs.append(256 + n)
            n += 1
        }
        var to = [Unicode.Scalar](repeating: " ", count: 256)
        var from: [Unicode.Scalar: UInt8] = [:]
        for (b, c) in zip(bs, cs) {
            let s = Unicode.Scalar(UInt32(c))!
            to[b] = s
            from[s] = UInt8(b)
        }
        return (to, from)
    }()
}
