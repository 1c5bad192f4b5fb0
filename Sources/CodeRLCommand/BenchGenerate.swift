import ArgumentParser
import Foundation
import Llama
import ModelIO
import Tensor

struct BenchGenerate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Prefill and decode speed and peak memory on the model, against the targets.",
        discussion: """
            Examples:
              coderl bench generate
              coderl bench generate --model model.gguf --threads 2 --batches 1,16
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Prompt length for the prefill measurement.")
    var promptTokens: Int = 256

    @Option(help: "New tokens per sequence in the decode measurements.")
    var newTokens: Int = 128

    @Option(help: "Batch sizes to measure decode at (comma separated).")
    var batches: String = "1,16,64"

    @Option(help: "Repetitions of each measurement (the best is reported).")
    var repeats: Int = 2

    @Flag(inversion: .prefixedNo, help: "Measure peak memory with 16 sequences of 1024 positions (about a minute).")
    var memory = true

    func run() throws {
        let (model, tokenizer, _) = try modelOptions.load()
        let batchSizes = try wholeNumbers(batches, option: "--batches")
        let arithmetic = model.precision == .fp32 ? "fp32" : "fp32, matrix products from bf16 weights packed once (--precision bf16)"
        print("model \(modelOptions.resolvedPath) (\(model.weights.parameterCount / 1_000_000)M parameters, \(arithmetic))")
        print("OpenBLAS core \(BLAS.coreName), \(BLAS.threads) threads; our GEMM on \(ComputePool.shared.parts) threads; KV cache of generated tokens \(modelOptions.kv)")
        // This machine's ceilings, measured now: shared machines vary by 3x from day to day, so
        // the figures below only mean something next to these.
        let ceiling = MachineCeiling.measure()
        let weightBytes = Double(model.weights.parameterCount * (model.precision == .bf16 ? 2 : 4))
        let flopsPerToken = 2 * Double(model.weights.parameterCount - model.config.vocabularySize * model.config.channels)
        print(String(format: "machine: OpenBLAS sgemm 1024^3 %.0f GFLOP/s, memory read %.1f GB/s",
                     ceiling.sgemmGFLOPS, ceiling.readGBps))
        // bf16 products run past the fp32 rate (vdpbf16ps does twice an FMA's work), so the
        // prefill ceiling printed is fp32's, for comparison.
        print(String(format: "ceilings on this machine: prefill ~%.0f tok/s (%@), batch-1 decode ~%.0f tok/s (reading %.0f MB of weights per token)",
                     ceiling.sgemmGFLOPS * 1e9 / flopsPerToken, model.precision == .bf16 ? "at the fp32 sgemm rate; bf16 multiplies at up to twice that" : "sgemm rate",
                     ceiling.readGBps * 1e9 / weightBytes, weightBytes / 1e6))
        // A realistic prompt: a programming problem statement, repeated to length.
        let prompt = GenerationSpeed.prompt(tokenizer, tokens: promptTokens)

        let prefill = try GenerationSpeed.prefill(model, prompt: prompt, repeats: repeats)
        report("prefill (\(prompt.count)-token prompt)", prefill, target: 1000)

        // Decode: a short chat prompt, sampled at T=0.8 so sequences differ, no early stop.
        let chatPrompt = tokenizer.encode(String(GenerationSpeed.problemText.prefix(60)))
        let targets: [Int: Double] = [1: 75, 16: 400, 64: 600]
        for b in batchSizes {
            let rate = try GenerationSpeed.decode(model, tokenizer: tokenizer, kv: modelOptions.kv, prompt: chatPrompt,
                                                  batch: b, newTokens: newTokens, repeats: repeats)
            report("decode batch \(b) (\(newTokens) new tokens)", rate, target: targets[b] ?? 0)
        }

        // Memory: the fp32 model (and under bf16 its packed copy) plus a batch-16 cache of 1024
        // positions per sequence. The peak is reset first so the ceiling measurement's 512 MiB
        // buffer does not count.
        guard memory else { return }
        ProcessMemory.resetPeak()
        let memPrompt = Array(prompt.prefix(256))
        let params = SamplingParameters(temperature: 0.8, seed: 2, maxNewTokens: 1024 - memPrompt.count, stopTokens: [])
        let generator = Generator(model: model, tokenizer: tokenizer, kvPrecision: modelOptions.kv)
        let (_, stats) = try generator.generate(prompt: memPrompt, samples: 16, parameters: params)
        let peak = Double(ProcessMemory.peak) / 1048576
        let line = pad("memory, 16 sequences x 1024 positions") + String(format: "%8.0f MiB peak RSS", peak)
        // The target is stated for the fp32 model; bf16 keeps its packed copy beside it.
        let target = model.precision == .bf16 ? "target < 1024 MiB for the fp32 model; with the packed bf16 copy" : "target < 1024 MiB"
        print(line + String(format: "   %@: %@   (%d tokens generated at %.0f tok/s)",
                            target, peak < 1024 ? "met" : "MISSED", stats.generatedTokens, stats.decodeTokensPerSecond))
    }

    func pad(_ s: String) -> String { s.padding(toLength: 40, withPad: " ", startingAt: 0) }

    func report(_ what: String, _ rate: Double, target: Double) {
        var line = pad(what) + String(format: "%8.1f tok/s", rate)
        if target > 0 { line += String(format: "   target %.0f: %@", target, rate >= target ? "met" : "MISSED") }
        print(line)
    }
}

/// Prefill and decode speed, as `bench generate` and `bench peers` measure them.
enum GenerationSpeed {
    /// A realistic prompt: a programming problem statement.
    static let problemText = "Write a Python function that returns the longest strictly increasing subsequence of a list of integers, with tests.\n"

    /// `tokens` prompt tokens: the problem statement repeated to length.
    static func prompt(_ tokenizer: Tokenizer, tokens: Int) -> [Int] {
        Array(tokenizer.encode(String(repeating: problemText, count: tokens / 10 + 1)).prefix(tokens))
    }

    /// Prompt tokens per second of one prefill (the best of `repeats`).
    static func prefill(_ model: LlamaModel, prompt: [Int], repeats: Int) throws -> Double {
        var best = Double.infinity
        for _ in 0..<max(1, repeats) {
            let cache = PrefixCache(config: model.config, capacity: prompt.count)
            let logits = FloatBuffer(count: model.config.vocabularySize)
            let t0 = DispatchTime.now().uptimeNanoseconds
            try model.prefill(prompt, cache: cache, logits: logits.pointer)
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        return Double(prompt.count) / best
    }

    /// Generated tokens per second (all sequences together) of `batch` sequences sampled at T =
    /// 0.8 from one prompt (prefilled once), `newTokens` each with no early stop; the best of
    /// `repeats`.
    static func decode(_ model: LlamaModel, tokenizer: Tokenizer, kv: KVPrecision, prompt: [Int], batch: Int,
                       newTokens: Int, repeats: Int) throws -> Double {
        let params = SamplingParameters(temperature: 0.8, topP: 0.95, seed: 1, maxNewTokens: newTokens, stopTokens: [])
        let generator = Generator(model: model, tokenizer: tokenizer, kvPrecision: kv)
        var best = 0.0
        for _ in 0..<max(1, repeats) {
            let (_, stats) = try generator.generate(prompt: prompt, samples: batch, parameters: params)
            best = max(best, stats.decodeTokensPerSecond)
        }
        return best
    }
}

/// The machine's own limits, measured in a second each: OpenBLAS's large sgemm rate and the
/// memory read bandwidth over a buffer far larger than the caches.
struct MachineCeiling {
    var sgemmGFLOPS = 0.0
    var readGBps = 0.0

    static func measure() -> MachineCeiling {
        var c = MachineCeiling()
        let n = 1024
        let a = FloatBuffer(count: n * n), b = FloatBuffer(count: n * n), out = FloatBuffer(count: n * n)
        for i in 0..<n * n { a[i] = Float(i % 7) * 0.01; b[i] = Float(i % 5) * 0.01 }
        BLAS.gemmNT(a.pointer, b.pointer, out.pointer, m: n, n: n, k: n)  // warm-up
        // The best of at least 20 products and half a second: single products on this shared
        // VM swung 2x (one quiet moment is the ceiling; the median is the neighbours).
        var best = Double.infinity, spent = 0.0, runs = 0
        while runs < 20 || spent < 0.5 {
            let t0 = DispatchTime.now().uptimeNanoseconds
            BLAS.gemmNT(a.pointer, b.pointer, out.pointer, m: n, n: n, k: n)
            let t = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            best = min(best, t); spent += t; runs += 1
        }
        c.sgemmGFLOPS = 2 * Double(n * n * n) / best / 1e9

        let big = FloatBuffer(count: 128 << 20)  // 512 MiB
        for i in stride(from: 0, to: big.count, by: 1024) { big[i] = 1 }
        best = .infinity
        for _ in 0..<5 {
            let t0 = DispatchTime.now().uptimeNanoseconds
            var sums = [Float](repeating: 0, count: ComputePool.shared.parts)
            sums.withUnsafeMutableBufferPointer { s in
                let sp = s.baseAddress!
                ComputePool.shared.run { part, parts in
                    let r = ComputePool.range(part, of: parts, count: big.count, align: 16)
                    var acc = SIMD16<Float>(repeating: 0)
                    var i = r.lowerBound
                    while i < r.upperBound {
                        acc += UnsafeRawPointer(big.pointer + i).loadUnaligned(as: SIMD16<Float>.self)
                        i += 16
                    }
                    sp[part] = acc.sum()
                }
            }
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
            if sums.reduce(0, +) < 0 { print("") }  // keep the sums alive
        }
        c.readGBps = Double(big.count * 4) / best / 1e9
        return c
    }
}
