/// One turn of a chat.
public struct ChatMessage: Sendable, Equatable {
    public enum Role: String, Sendable { case system, user, assistant }
    public var role: Role
    public var content: String
    public init(_ role: Role, _ content: String) {
        self.role = role
        self.content = content
    }
}

public enum ChatTemplateError: Error, CustomStringConvertible {
    case unsupported(String)
    public var description: String {
        switch self {
        case let .unsupported(t):
            return "chat template is not ChatML (no <|im_start|>); supported: ChatML. Template begins: \(t.prefix(120))"
        }
    }
}

/// The ChatML chat format used by SmolLM2 and Qwen, rendered by our code rather than Jinja:
///
///     <|im_start|>system\nSYSTEM<|im_end|>\n<|im_start|>user\nTEXT<|im_end|>\n<|im_start|>assistant\n
///
/// When the first message is not a system message, the template's default system prompt is
/// inserted (SmolLM2's is read from its GGUF `tokenizer.chat_template`).
public struct ChatTemplate: Sendable {
    public var defaultSystemPrompt: String?

    public init(defaultSystemPrompt: String?) {
        self.defaultSystemPrompt = defaultSystemPrompt
    }

    /// Reads the default system prompt out of a ChatML Jinja template, if it has one.
    public init(jinja: String) throws {
        guard jinja.contains("<|im_start|>") else { throw ChatTemplateError.unsupported(jinja) }
        let marker = "<|im_start|>system\n"
        if let start = jinja.range(of: marker),
           let end = jinja.range(of: "<|im_end|>", range: start.upperBound..<jinja.endIndex) {
            defaultSystemPrompt = String(jinja[start.upperBound..<end.lowerBound])
        } else {
            defaultSystemPrompt = nil
        }
    }

    public init(gguf: GGUFFile) throws {
        try self.init(jinja: try gguf.string("tokenizer.chat_template"))
    }

    /// Token ids of the rendered chat. Only the template's own markers become special tokens:
    /// message text is encoded as plain text, so a problem statement that contains
    /// "<|im_end|>" cannot end its turn early. For text without special-token strings the ids
    /// equal `tokenizer.encode(render(messages), parseSpecial: true)`.
    public func tokens(_ messages: [ChatMessage], tokenizer: Tokenizer, addGenerationPrompt: Bool = true) -> [Int] {
        let start = tokenizer.encode("<|im_start|>", parseSpecial: true)
        let end = tokenizer.encode("<|im_end|>", parseSpecial: true)
        var turns = messages
        if messages.first?.role != .system, let system = defaultSystemPrompt {
            turns.insert(ChatMessage(.system, system), at: 0)
        }
        var ids: [Int] = []
        for (i, m) in turns.enumerated() {
            if i > 0 { ids += tokenizer.encode("\n") }
            ids += start + tokenizer.encode("\(m.role.rawValue)\n\(m.content)") + end
        }
        if !turns.isEmpty { ids += tokenizer.encode("\n") }
        if addGenerationPrompt { ids += start + tokenizer.encode("assistant\n") }
        return ids
    }

    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool = true) -> String {
        var out = ""
        if messages.first?.role != .system, let system = defaultSystemPrompt {
            out += "<|im_start|>system\n\(system)<|im_end|>\n"
        }
        for m in messages { out += "<|im_start|>\(m.role.rawValue)\n\(m.content)<|im_end|>\n" }
        if addGenerationPrompt { out += "<|im_start|>assistant\n" }
        return out
    }
}
