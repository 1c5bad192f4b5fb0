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
