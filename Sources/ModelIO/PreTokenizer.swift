/// Splits text into the pieces that byte-level BPE encodes one at a time.
///
/// SmolLM2's pre-tokenizer (llama.cpp "smollm", Hugging Face `Digits(individual_digits)` then
/// `ByteLevel`): every numeric character is its own piece, then each remaining run is split by
/// the GPT-2 pattern
/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
/// Hand-written rather than a regex: it runs on every prompt and program we tokenize.
public enum PreTokenizer {
    public enum Digits: Sendable { case individual, grouped }

    /// Ranges (in `scalars`) of the pieces, in order; they cover the input exactly.
    public static func split(_ scalars: [Unicode.Scalar], digits: Digits = .individual) -> [Range<Int>] {
        var pieces: [Range<Int>] = []
        pieces.reserveCapacity(scalars.count / 3 + 1)
        guard digits == .individual else {
            gpt2(scalars, 0..<scalars.count, into: &pieces)
            return pieces
        }
        var start = 0
        for i in 0..<scalars.count where isNumber(scalars[i]) {
            if start < i { gpt2(scalars, start..<i, into: &pieces) }
            pieces.append(i..<i + 1)
            start = i + 1
        }
        if start < scalars.count { gpt2(scalars, start..<scalars.count, into: &pieces) }
        return pieces
    }

    @inline(__always) static func isLetter(_ c: Unicode.Scalar) -> Bool {
        if c.value < 0x80 { return (c.value | 0x20) &- 0x61 < 26 }
        switch c.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return false
        }
    }

    @inline(__always) static func isNumber(_ c: Unicode.Scalar) -> Bool {
        if c.value < 0x80 { return c.value &- 0x30 < 10 }
        switch c.properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: return true
        default: return false
        }
    }

    @inline(__always) static func isSpace(_ c: Unicode.Scalar) -> Bool {
        if c.value < 0x80 { return c == " " || (c.value >= 9 && c.value <= 13) }
        return c.properties.isWhitespace
    }

    /// The GPT-2 pattern over `s[range]`, appending piece ranges.
    static func gpt2(_ s: [Unicode.Scalar], _ range: Range<Int>, into out: inout [Range<Int>]) {
        let end = range.upperBound
        var pos = range.lowerBound
        func at(_ i: Int) -> Unicode.Scalar? { i < end ? s[i] : nil }
        while pos < end {
            let start = pos
            let c = s[pos]
            // Contractions: 's 't 'm 'd 're 've 'll (lower case only, as in GPT-2).
            if c == "'", let n = at(pos + 1) {
                if n == "s" || n == "t" || n == "m" || n == "d" {
                    out.append(pos..<pos + 2); pos += 2; continue
                }
                if let n2 = at(pos + 2),
                   (n == "r" && n2 == "e") || (n == "v" && n2 == "e") || (n == "l" && n2 == "l") {
                    out.append(pos..<pos + 3); pos += 3; continue
                }
            }
            // An optional single leading space joins the letter / number / symbol run after it.
            var p = pos
            if c == " ", let n = at(pos + 1), !isSpace(n) { p = pos + 1 }
            let lead = s[p]
            if isLetter(lead) {
                p += 1
                while p < end && isLetter(s[p]) { p += 1 }
                out.append(start..<p); pos = p; continue
            }
            if isNumber(lead) {
                p += 1
                while p < end && isNumber(s[p]) { p += 1 }
                out.append(start..<p); pos = p; continue
            }
            if !isSpace(lead) {
                p += 1
                while p < end && !isSpace(s[p]) && !isLetter(s[p]) && !isNumber(s[p]) { p += 1 }
                out.append(start..<p); pos = p; continue
            }
            // Whitespace run: \s+(?!\S) leaves the last space to prefix the next word; a run
            // reaching the end is taken whole, and a single space before a non-space too (\s+).
            var q = pos
            while q < end && isSpace(s[q]) { q += 1 }
            let run = q - pos
            if run > 1 && q < end {
                out.append(pos..<q - 1); pos = q - 1
            } else {
                out.append(pos..<q); pos = q
            }
        }
    }
}
