import ModelIO
import Schema

/// How a problem becomes the model's prompt, and a completion becomes a program.
///
/// The prompt is a ChatML user turn (the problem statement, the starter code, the example
/// tests when the problem has assert-style ones) followed by the assistant turn already opened
/// with a Python code fence, so the model's reply *is* the program: sampling stops at the
/// closing fence. For a model as small as SmolLM2-135M this matters more than anything else
/// (replies without a code block were a common failure).
public struct PromptFormat: Sendable {
    public static let fence = "```python\n"
    public static let closingFence = "```"

    public let tokenizer: Tokenizer
    public let template: ChatTemplate?

    public init(tokenizer: Tokenizer, template: ChatTemplate?) {
        self.tokenizer = tokenizer
        self.template = template
    }

    /// The user message for a problem. `exampleTests` are shown when they are asserts or calls.
    public static func userMessage(_ problem: Problem, exampleTests: TestSuite?) -> String {
        var text = problem.prompt.trimmingWhitespace()
        if !problem.starterCode.isEmpty {
            text += "\n\nStart from this code:\n```python\n\(problem.starterCode.trimmingWhitespace())\n```"
        }
        if let suite = exampleTests, !suite.cases.isEmpty {
            switch suite.format {
            case .assert:
                let asserts = suite.cases.map(\.code).joined(separator: "\n")
                text += "\n\nYour code should pass these tests:\n```python\n\(asserts)\n```"
            case .stdio:
                let shown = suite.cases.prefix(2).map { "Input:\n\($0.input)\nOutput:\n\($0.expected)" }.joined(separator: "\n\n")
                text += "\n\nRead from standard input and write to standard output. Example:\n\(shown)"
            case .call where !suite.entryPoint.isEmpty:
                let shown = suite.cases.prefix(3).map { "\(suite.entryPoint)(*\($0.input)) == \($0.expected)" }.joined(separator: "\n")
                text += "\n\nExamples:\n\(shown)"
            default:
                break
            }
        }
        if !problem.entryPoint.isEmpty && !text.contains(problem.entryPoint) {
            text += "\n\nName the function `\(problem.entryPoint)`."
        }
        return text
    }

    /// Prompt token ids: the chat (with the template's default system prompt) and the opened fence.
    public func promptTokens(_ problem: Problem, exampleTests: TestSuite?) -> [Int] {
        promptTokens(userMessage: Self.userMessage(problem, exampleTests: exampleTests))
    }

    /// Prompt token ids for any user message (a repair request, ...), in the same form.
    public func promptTokens(userMessage user: String) -> [Int] {
        let fence = tokenizer.encode(Self.fence)
        if let template {
            return template.tokens([ChatMessage(.user, user)], tokenizer: tokenizer) + fence
        }
        return tokenizer.encode(user + "\n\n") + fence
    }

    /// The completion for a reference solution: the code and the closing fence (what a sampled
    /// reply that stops at the fence consists of).
    public func solutionTokens(_ solution: String) -> [Int] {
        tokenizer.encode(solution.trimmingWhitespace() + "\n" + Self.closingFence)
    }

    /// The program in a completion: the text before the closing fence (the generator already
    /// cuts there when the fence is a stop string), or all of it when the reply ran out.
    public static func program(fromCompletion text: String) -> String {
        if let end = text.range(of: closingFence) { return String(text[..<end.lowerBound]) }
        return text
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        return String(s)
    }
}
