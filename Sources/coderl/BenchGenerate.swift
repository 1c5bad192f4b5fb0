import ArgumentParser
import Foundation
import Llama
import ModelIO
import Tensor

struct BenchGenerate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Prefill and decode speed and peak memory on the model, against llama.cpp's figures.")

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Prompt length for the prefill measurement.")
    var promptTokens: Int = 256

    @Option(help: "New tokens per sequence in the decode measurements.")
    var newTokens: Int = 128

    @Option(help: "Batch sizes to measure decode at (comma separated).")
    var batches: String = "1,16,64"

    @Option(help: "Repetitions of each measurement (the best is reported).")
    var repeats: Int = 2

    func run() throws {
        let (model, tokenizer, _) = try modelOptions.load()
        let batchSizes = try batches.split(separator: ",").map { s -> Int in
            guard let b = Int(s.trimmingCharacters(in: .whitespaces)), b >= 1 else {
                throw ValidationError("--batches must be positive integers, got '\(s)'")
            }
            return b
        }
        print("model \(modelOptions.resolvedPath)")
        print("OpenBLAS core \(BLAS.coreName), \(BLAS.threads) threads; KV cache of generated tokens \(modelOptions.kv)")
        // A realistic prompt: a programming problem statement, repeated to length.
        let seed = "Write a Python function that returns the longest strictly increasing subsequence of a list of integers, with tests.\n"
        var prompt = tokenizer.encode(String(repeating: seed, count: promptTokens / 10 + 1))
        prompt = Array(prompt.prefix(promptTokens))
        let V = model.config.vocabularySize

        var best = Double.infinity
        for _ in 0..<repeats {
            let cache = PrefixCache(config: model.config, capacity: prompt.count)
            let logits = FloatBuffer(count: V)
            let t0 = DispatchTime.now().uptimeNanoseconds
            try model.prefill(prompt, cache: cache, logits: logits.pointer)
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        let prefill = Double(prompt.count) / best
        report("prefill (\(prompt.count)-token prompt)", prefill, reference: 880, target: 1000)

        // Decode: a short chat prompt, sampled at T=0.8 so sequences differ, no early stop.
        let chatPrompt = tokenizer.encode(String(seed.prefix(60)))
        let references: [Int: (Double, Double)] = [1: (68, 75), 16: (194, 400), 64: (0, 600)]
        for b in batchSizes {
            let params = SamplingParameters(temperature: 0.8, topP: 0.95, seed: 1, maxNewTokens: newTokens, stopTokens: [])
            let generator = Generator(model: model, tokenizer: tokenizer, kvPrecision: modelOptions.kv)
            var bestRate = 0.0
            for _ in 0..<repeats {
                let (_, stats) = try generator.generate(prompt: chatPrompt, samples: b, parameters: params)
                bestRate = max(bestRate, stats.decodeTokensPerSecond)
            }
            let ref = references[b]
            report("decode batch \(b) (\(newTokens) new tokens)", bestRate, reference: ref?.0 ?? 0, target: ref?.1 ?? 0)
        }

        // Memory: the fp32 model plus a batch-16 cache of 1024 positions per sequence.
        let memPrompt = Array(prompt.prefix(256))
        let params = SamplingParameters(temperature: 0.8, seed: 2, maxNewTokens: 1024 - memPrompt.count, stopTokens: [])
        let generator = Generator(model: model, tokenizer: tokenizer, kvPrecision: modelOptions.kv)
        let (_, stats) = try generator.generate(prompt: memPrompt, samples: 16, parameters: params)
        let peak = Double(ProcessMemory.peak) / 1048576
        print(String(format: "%-40@ %8.0f MiB peak RSS   (16 sequences x 1024 positions, %d tokens generated at %.0f tok/s; target < 1024 MiB)",
                     "memory" as NSString, peak, stats.generatedTokens, stats.decodeTokensPerSecond))
    }

    func report(_ what: String, _ rate: Double, reference: Double, target: Double) {
        var line = String(format: "%-40@ %8.1f tok/s", what as NSString, rate)
        if reference > 0 { line += String(format: "   llama.cpp %.0f (x%.2f)", reference, rate / reference) }
        if target > 0 { line += String(format: "   target %.0f: %@", target, rate >= target ? "met" : "MISSED") }
        print(line)
    }
}
