import ArgumentParser
import Foundation
import Llama
import ModelIO

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate completions with a model and print them with the speed.",
        discussion: """
            Examples:
              coderl generate --prompt "def fib(n):" -n 64
              coderl generate --chat "Write a Python function that reverses a string." \\
                  --samples 4 --temperature 0.8
              coderl generate --model runs/sft/step-000100.safetensors \\
                  --prompt "import numpy" --seed 3
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Raw prompt text, continued as is.")
    var prompt: String?

    @Option(help: "A user message, wrapped in the model's chat template.")
    var chat: String?

    @Option(name: .short, help: "Maximum new tokens per completion.")
    var n: Int = 256

    @Option(help: "Number of completions sampled from the one prompt.")
    var samples: Int = 1

    @Option(help: "Sampling temperature; 0 is greedy.")
    var temperature: Float = 0

    @Option(name: .customLong("top-p"), help: "Nucleus sampling mass (1 disables).")
    var topP: Float = 1

    @Option(name: .customLong("top-k"), help: "Keep the k most likely tokens (0 disables).")
    var topK: Int = 0

    @Option(help: "Random seed; the same seed gives the same completions.")
    var seed: UInt64 = 0

    @Option(help: "Stop a completion when it produces this text (repeatable).")
    var stop: [String] = []

    @Flag(help: "Print token ids and log-probabilities of every completion as JSON lines.")
    var json = false

    func validate() throws {
        guard (prompt == nil) != (chat == nil) else {
            throw ValidationError("give exactly one of --prompt TEXT or --chat TEXT")
        }
        guard n >= 1 else { throw ValidationError("-n must be at least 1, got \(n)") }
        guard samples >= 1 else { throw ValidationError("--samples must be at least 1, got \(samples)") }
        do { try parameters.validate() } catch { throw ValidationError("\(error)") }
    }

    var parameters: SamplingParameters {
        SamplingParameters(temperature: temperature, topK: topK, topP: topP, seed: seed,
                           maxNewTokens: n, stopStrings: stop)
    }

    func run() throws {
        let (model, tokenizer, template) = try modelOptions.load()
        let ids: [Int]
        if let chat {
            guard let template else { throw CLIError("\(modelOptions.resolvedPath) has no ChatML chat template; use --prompt") }
            ids = template.tokens([ChatMessage(.user, chat)], tokenizer: tokenizer)
        } else {
            ids = tokenizer.encode(prompt!)
        }
        let generator = Generator(model: model, tokenizer: tokenizer, kvPrecision: modelOptions.kv)
        let (seqs, stats) = try generator.generate(prompt: ids, samples: samples, parameters: parameters)
        for (i, s) in seqs.enumerated() {
            if json {
                let record: [String: Any] = [
                    "sample": i, "text": s.text, "tokens": s.tokens,
                    "model_logprobs": s.modelLogProbs.map(Double.init),
                    "sampled_logprobs": s.sampledLogProbs.map(Double.init),
                    "finish": "\(s.finishReason)",
                ]
                let data = try JSONSerialization.data(withJSONObject: record, options: [.sortedKeys, .withoutEscapingSlashes])
                print(String(decoding: data, as: UTF8.self))
            } else {
                if seqs.count > 1 { print("--- sample \(i) (\(s.tokens.count) tokens, \(s.finishReason))") }
                print(s.text)
            }
        }
        let line = String(format: "prompt %d tokens, prefill %.0f tok/s; generated %d tokens in %d sequences, %.1f tok/s; peak RSS %.0f MiB",
                          stats.promptTokens, stats.prefillTokensPerSecond, stats.generatedTokens, seqs.count,
                          stats.decodeTokensPerSecond, Double(ProcessMemory.peak) / 1048576)
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
