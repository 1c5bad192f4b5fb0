import ArgumentParser
import Foundation
import Llama
import ModelIO
import Optim
import Tensor
import Training

struct BenchTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Training step speed (forward + backward + AdamW) and peak memory on the model.",
        discussion: """
            Runs full training steps on a batch of B sequences of T tokens (every position scored, as a \
            language-model step), once with every block trained and once with the top N only, and prints \
            tokens/s against the target (300 tokens/s, peak RSS under 4 GiB). With --prompt P, the \
            sequences come in groups of --group that share their first P tokens and only the rest is \
            scored, as in an RL step (programs sampled from one prompt): the blocks below the trained \
            ones then compute the shared rows once.

            Examples:
              coderl bench train --batch 8 --length 256 --top 8 --steps 2
              coderl bench train --batch 4 --length 128 --top 0
              coderl bench train --batch 8 --length 256 --prompt 192 --group 4 --top 8
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Sequences per step.")
    var batch: Int = 8

    @Option(help: "Tokens per sequence.")
    var length: Int = 256

    @Option(help: "Tokens each group of --group sequences shares at its start (0: nothing shared, every position scored).")
    var prompt: Int = 0

    @Option(help: "Sequences sharing a prompt with --prompt.")
    var group: Int = 4

    @Option(help: "Blocks trained in the second measurement (0 skips it).")
    var top: Int = 8

    @Option(help: "Measured steps per configuration, after one warm-up step (the mean is reported).")
    var steps: Int = 2

    @Flag(help: "Print where the time goes (matrix products, attention, softmax, ...).")
    var profile = false

    /// The trainer's products (`--precision`, one of the model options).
    var precision: MatrixPrecision { modelOptions.precision }

    func run() throws {
        guard batch >= 1, length >= 2, steps >= 1 else { throw ValidationError("--batch, --steps must be >= 1 and --length >= 2") }
        guard prompt >= 0, prompt < length, group >= 1 else { throw ValidationError("--prompt must be below --length and --group at least 1") }
        ProcessMemory.resetPeak()
        let (model, tokenizer, _) = try modelOptions.load(precision: .fp32)
        let weights = model.weights
        let c = weights.config
        guard top <= c.layers else { throw ValidationError("--top \(top) exceeds the model's \(c.layers) blocks") }
        print("model \(modelOptions.resolvedPath) (\(weights.parameterCount / 1_000_000)M parameters, fp32; products in \(precision.rawValue)), batch \(batch) x \(length) tokens"
              + (prompt > 0 ? ", groups of \(group) sharing a \(prompt)-token prompt" : ""))
        print("OpenBLAS core \(BLAS.coreName), \(BLAS.threads) threads")
        let data = try TrainingSpeed.batch(tokenizer: tokenizer, vocabularySize: c.vocabularySize, batch: batch, length: length,
                                           prompt: prompt, group: group)
        // The machine's ceiling for this work: OpenBLAS on the step's own largest product shape
        // (rows x gate|up x channels), and 6 flops per weight per token for a full step.
        let flopsPerToken = 6 * Double(weights.parameterCount)
        func sgemmRate() -> Double {
            let m = batch * length, n = 2 * c.feedForward, k = c.channels
            let a = FloatBuffer(count: m * k), b = FloatBuffer(count: n * k), out = FloatBuffer(count: m * n)
            for i in 0..<a.count { a[i] = Float(i % 7) * 0.01 }
            for i in 0..<b.count { b[i] = Float(i % 5) * 0.01 }
            BLAS.gemmNT(a.pointer, b.pointer, out.pointer, m: m, n: n, k: k)
            var best = Double.infinity
            for _ in 0..<4 {
                let t0 = DispatchTime.now().uptimeNanoseconds
                BLAS.gemmNT(a.pointer, b.pointer, out.pointer, m: m, n: n, k: k)
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
            }
            return 2 * Double(m * n * k) / best / 1e9
        }
        var rate = sgemmRate()
        print(String(format: "machine: OpenBLAS sgemm %dx%dx%d %.0f GFLOP/s; a full step at that rate: ~%.0f tokens/s",
                     batch * length, 2 * c.feedForward, c.channels, rate, rate * 1e9 / flopsPerToken))
        // With a shared prompt, the top-N measurement is repeated computing every row, so the
        // saving is measured in the same run.
        var runs = [(c.layers, true)] + (top > 0 ? [(top, true)] : [])
        if prompt > 0 && top > 0 && top < c.layers { runs.append((top, false)) }
        for (trained, shares) in runs {
            let m = try TrainingSpeed.measure(weights, data: data, trainedLayers: trained, precision: precision,
                                              steps: steps, sharesPrefixes: shares, profile: profile)
            let (mean, loss, session) = (m.secondsPerStep, m.loss, m.session)
            let rate = Double(batch * length) / mean
            let label = (trained == c.layers ? "all \(c.layers) blocks trained" : "top \(trained) blocks trained")
                + (prompt > 0 && !shares ? ", every row" : "")
            var line = label.padding(toLength: 40, withPad: " ", startingAt: 0)
            line += String(format: "%7.1f tokens/s  %6.2f s/step", rate, mean)
            if trained == c.layers { line += String(format: "   target 300: %@", rate >= 300 ? "met" : "MISSED") }
            print(line + String(format: "   (loss %.3f)", loss))
            if profile {
                for (phase, t) in session.trainer.timings.sorted(by: { $0.value > $1.value }) {
                    print(String(format: "    %-24@ %6.2f s/step", phase as NSString, t / Double(steps)))
                }
            }
        }
        let peak = Double(ProcessMemory.peak) / 1_048_576
        // Measured again after the runs (shared machines swing); the better figure is the ceiling.
        rate = max(rate, sgemmRate())
        print(String(format: "sgemm ceiling (best of before and after) %.0f GFLOP/s: a full step at that rate ~%.0f tokens/s",
                     rate, rate * 1e9 / flopsPerToken))
        print(String(format: "peak RSS %.0f MiB   target < 4096 MiB: %@", peak, peak < 4096 ? "met" : "MISSED"))
        if precision == .fp32 && MatrixPrecision.bf16.unavailableReason == nil {
            print("this CPU has AVX512-BF16: `coderl bench train --precision bf16` measures mixed precision (about 1.7x here)")
        }
    }
}

/// Training step speed, as `bench train` and `bench peers` measure it.
enum TrainingSpeed {
    /// B sequences of T tokens of real text (Python source) with every position after the
    /// first scored; with `prompt` > 0, groups of `group` sequences share their first `prompt`
    /// tokens and only the rest is scored.
    static func batch(tokenizer: Tokenizer, vocabularySize: Int, batch: Int, length: Int, prompt: Int = 0,
                      group: Int = 4) throws -> TrainingBatch {
        let text = String(repeating: """
        def longest_increasing_subsequence(values: list[int]) -> list[int]:
            \"\"\"Return the longest strictly increasing subsequence of values.\"\"\"
            best: list[list[int]] = []
            for v in values:
                candidates = [seq + [v] for seq in best if seq[-1] < v]
                best.append(max(candidates, key=len, default=[v]))
            return max(best, key=len, default=[])

        """, count: 2 * batch * length / 60 + 2)
        let ids = tokenizer.encode(text)
        // Each sequence its own stretch of the text; with a prompt, its group's prompt first.
        let sequences = (0..<batch).map { b -> [Int] in
            guard prompt > 0 else { return Array(ids[(b * 7)..<(b * 7 + length)]) }
            let start = (b / group) * 11, own = length + b * 7
            return Array(ids[start..<(start + prompt)]) + Array(ids[own..<(own + length - prompt)])
        }
        return try TrainingBatch.completions(sequences, promptLengths: Array(repeating: max(1, prompt), count: batch), pad: 0,
                                             vocabularySize: vocabularySize)
    }

    /// Mean seconds of `steps` full steps (forward, backward, AdamW) after one warm-up step,
    /// with the top `trainedLayers` blocks trained; the session is returned for its timings.
    static func measure(_ weights: LlamaWeights, data: TrainingBatch, trainedLayers: Int, precision: MatrixPrecision,
                        steps: Int, sharesPrefixes: Bool = true, profile: Bool = false)
        throws -> (secondsPerStep: Double, loss: Float, session: ActorSession) {
        let state = TrainingState(kind: .actor, trainedLayers: trainedLayers, adamw: AdamWSettings(),
                                  schedule: LearningRateSchedule(peak: 1e-5), rng: Xoshiro256(seed: 1))
        let session = try ActorSession(weights: weights, state: state)
        session.trainer.profiling = profile
        session.trainer.precision = precision
        session.trainer.sharesPrefixes = sharesPrefixes
        var times: [Double] = []
        var loss: Float = 0
        for i in 0...max(1, steps) {
            let t0 = DispatchTime.now().uptimeNanoseconds
            let r = try session.step([data], examples: data.sequences, rng: state.rng)
            if i > 0 { times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9) } else { session.trainer.timings = [:] }
            loss = r.losses.crossEntropy
        }
        return (times.reduce(0, +) / Double(times.count), loss, session)
    }
}
