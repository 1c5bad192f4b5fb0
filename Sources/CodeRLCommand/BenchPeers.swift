import ArgumentParser
import Foundation
import Llama
import ModelIO
import Tensor

struct BenchPeers: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "peers",
        abstract: "Our prefill, decode and training speed beside llama.cpp's and PyTorch's, measured in the same run.",
        discussion: """
            Runs each workload with coderl and then with each peer, round after round, so that a \
            neighbour's load on a shared machine falls on all of them; each figure is the best of its \
            rounds, and each ratio compares two figures of this run on this machine. Workloads: prefill \
            of a 256-token prompt; decode of 128 new tokens per sequence at batch 1, 16 and 64 from one \
            shared 256-token prompt; a training step (forward, backward, AdamW) on 8 sequences of 256 \
            tokens with every block trained. coderl runs in fp32 and, where the CPU has AVX512-BF16, in \
            bf16; llama.cpp (llama-batched-bench, -pps) on the model in F32, BF16 and the shipped Q4_1; \
            PyTorch (transformers' LlamaForCausalLM from the same GGUF) in fp32 and under bf16 autocast.

            The peers are built once by `make bench-peers` (scripts/build-peers.sh: llama.cpp from the \
            source vendored in PyPI's llama-cpp-python sdist, pinned; PyTorch CPU and transformers in a \
            venv) into .build-peers; a missing peer is reported and its columns left empty.

            Examples:
              coderl bench peers
              coderl bench peers --rounds 3
              coderl bench peers --no-train --batches 1,16
            """)

    @Option(help: "Where `make bench-peers` put the peers.")
    var peers = ".build-peers"

    @Option(help: "The model, a GGUF file (default: the cached SmolLM2-135M-Instruct, Q4_1); the peers' F32 and BF16 files are the default model's.")
    var model: String?

    @Option(help: "Threads for every engine (default: all cores).")
    var threads: Int?

    @Option(help: "Rounds of every workload, interleaved (the best of each figure is reported).")
    var rounds = 2

    @Option(help: "Prompt length for prefill and before decode.")
    var promptTokens = 256

    @Option(help: "New tokens per sequence in the decode measurements.")
    var newTokens = 128

    @Option(help: "Batch sizes to measure decode at (comma separated).")
    var batches = "1,16,64"

    @Option(help: "Sequences per training step.")
    var trainBatch = 8

    @Option(help: "Tokens per training sequence.")
    var trainLength = 256

    @Option(help: "Measured training steps per round (after one warm-up step).")
    var trainSteps = 2

    @Flag(inversion: .prefixedNo, help: "Measure prefill and decode.")
    var generate = true

    @Flag(inversion: .prefixedNo, help: "Measure training steps.")
    var train = true

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
        guard rounds >= 1, promptTokens >= 1, newTokens >= 1, trainBatch >= 1, trainLength >= 2, trainSteps >= 1 else {
            throw ValidationError("--rounds, --prompt-tokens, --new-tokens, --train-batch and --train-steps must be at least 1, --train-length at least 2")
        }
    }

    func run() throws {
        let cores = threads ?? ProcessInfo.processInfo.activeProcessorCount
        BLAS.setThreads(cores)
        let path = model ?? DefaultModel.path
        guard FileManager.default.fileExists(atPath: path) else {
            throw CLIError(model == nil ? DefaultModel.missingMessage : "\(path): no such model file")
        }
        let batchSizes = try wholeNumbers(batches, option: "--batches")
        let bf16 = MatrixPrecision.bf16.unavailableReason == nil
        let llama = LlamaPeer(root: peers, threads: cores)
        let torch = TorchPeer(root: peers, threads: cores)
        // Checked once: the PyTorch check imports torch (seconds).
        let (llamaMissing, torchMissing) = (llama.missing, torch.missing)
        print("coderl bench peers: \(CPUInfo.modelName), \(cores) threads; \(Self.timestamp())")
        print("each figure the best of \(rounds) rounds; coderl and its peers interleaved in every round")
        print("llama.cpp: " + (llamaMissing ?? llama.version()))
        print("PyTorch: " + (torchMissing ?? torch.version()))
        fflush(nil)

        var table = PeerTable()
        let (fp32Model, tokenizer, _) = try LlamaModel.load(gguf: path, precision: .fp32)
        let bf16Model = bf16 ? try LlamaModel.load(gguf: path, precision: .bf16).0 : nil
        let prompt = GenerationSpeed.prompt(tokenizer, tokens: promptTokens)
        let generation = ["prefill \(promptTokens) tokens"] + batchSizes.map { "decode batch \($0)" }
        let training = "train \(trainBatch) x \(trainLength), all blocks"
        let data = try TrainingSpeed.batch(tokenizer: tokenizer, vocabularySize: fp32Model.config.vocabularySize,
                                           batch: trainBatch, length: trainLength)
        let llamaTypes = llamaMissing == nil ? ["F32", "BF16", "Q4_1"].filter { FileManager.default.fileExists(atPath: llama.model($0)) } : []

        for round in 1...rounds {
            print("round \(round) of \(rounds)...")
            fflush(nil)   // into pipes and files as it goes: a round takes minutes
            if generate {
                // Each precision of ours, then the matching llama.cpp file; the shipped Q4_1 last.
                for (name, m, type) in [("coderl fp32", fp32Model, "F32"), ("coderl bf16", bf16Model, "BF16")] {
                    guard let m else { continue }
                    table.record(generation[0], name, try GenerationSpeed.prefill(m, prompt: prompt, repeats: 1))
                    for (i, b) in batchSizes.enumerated() {
                        table.record(generation[i + 1], name, try GenerationSpeed.decode(
                            m, tokenizer: tokenizer, kv: .f16, prompt: prompt, batch: b, newTokens: newTokens, repeats: 1))
                    }
                    if llamaTypes.contains(type) { try measureLlama(llama, type: type, rows: generation, batchSizes: batchSizes, into: &table) }
                }
                if llamaTypes.contains("Q4_1") { try measureLlama(llama, type: "Q4_1", rows: generation, batchSizes: batchSizes, into: &table) }
            }
            if train {
                for precision in bf16 ? [MatrixPrecision.fp32, .bf16] : [.fp32] {
                    let m = try TrainingSpeed.measure(fp32Model.weights, data: data, trainedLayers: 0, precision: precision, steps: trainSteps)
                    table.record(training, "coderl \(precision.rawValue)", Double(trainBatch * trainLength) / m.secondsPerStep)
                    if torchMissing == nil {
                        let rate = try torch.train(model: path, batch: trainBatch, length: trainLength, steps: trainSteps,
                                                   mode: precision.rawValue)
                        table.record(training, precision == .fp32 ? "PyTorch fp32" : "PyTorch bf16 autocast", rate)
                    }
                }
            }
        }

        print("")
        if generate {
            print("tokens/s (decode: all sequences together)")
            table.print(rows: generation,
                        columns: ["coderl fp32", "coderl bf16", "llama.cpp F32", "llama.cpp BF16", "llama.cpp Q4_1"],
                        ratios: [("coderl fp32", "llama.cpp F32"), ("coderl bf16", "llama.cpp BF16"), ("coderl best", "llama.cpp Q4_1")])
        }
        if train {
            print("training tokens/s (forward + backward + AdamW)")
            table.print(rows: [training], columns: ["coderl fp32", "coderl bf16", "PyTorch fp32", "PyTorch bf16 autocast"],
                        ratios: [("coderl fp32", "PyTorch fp32"), ("coderl bf16", "PyTorch bf16 autocast")])
        }
        if !bf16 { print("coderl bf16: \(MatrixPrecision.bf16.unavailableReason ?? "unavailable")") }
    }

    private func measureLlama(_ llama: LlamaPeer, type: String, rows: [String], batchSizes: [Int], into table: inout PeerTable) throws {
        let r = try llama.batchedBench(model: llama.model(type), prompt: promptTokens, newTokens: newTokens, batches: batchSizes)
        if let prefill = r.prefill { table.record(rows[0], "llama.cpp \(type)", prefill) }
        for (i, b) in batchSizes.enumerated() {
            if let rate = r.decode[b] { table.record(rows[i + 1], "llama.cpp \(type)", rate) }
        }
    }

    static func timestamp() -> String {
        let f = DateFormatter()
        f.dateFormat = "yyyy-MM-dd HH:mm 'UTC'"
        f.timeZone = TimeZone(identifier: "UTC")
        return f.string(from: Date())
    }
}

/// The best figure of each workload and engine, and its printing with ratios.
struct PeerTable {
    private(set) var best: [String: [String: Double]] = [:]

    mutating func record(_ row: String, _ column: String, _ value: Double) {
        guard value.isFinite, value > 0 else { return }
        best[row, default: [:]][column] = max(best[row]?[column] ?? 0, value)
    }

    func value(_ row: String, _ column: String) -> Double? {
        if column == "coderl best" {
            return [value(row, "coderl fp32"), value(row, "coderl bf16")].compactMap { $0 }.max()
        }
        return best[row]?[column]
    }

    func print(rows: [String], columns: [String], ratios: [(String, String)]) {
        let header = ["workload"] + columns + ratios.map { "\($0.0) / \($0.1)" }
        Swift.print("| " + header.joined(separator: " | ") + " |")
        Swift.print("|" + header.map { _ in " --- |" }.joined())
        for row in rows {
            let figures = columns.map { value(row, $0).map { String(format: "%.1f", $0) } ?? "-" }
            let ratioCells = ratios.map { pair in
                guard let a = value(row, pair.0), let b = value(row, pair.1) else { return "-" }
                return String(format: "x%.2f", a / b)
            }
            Swift.print("| " + ([row] + figures + ratioCells).joined(separator: " | ") + " |")
        }
    }
}

enum CPUInfo {
    /// `model name` from /proc/cpuinfo.
    static var modelName: String {
        let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let line = info.split(separator: "\n").first { $0.hasPrefix("model name") }
        return line.flatMap { $0.split(separator: ":", maxSplits: 1).last }.map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown CPU"
    }
}

/// Runs a program to its end; its status and everything it printed.
private func runTool(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// llama.cpp's llama-batched-bench, as scripts/build-peers.sh builds it.
struct LlamaPeer {
    let root: String
    let threads: Int
    var binary: String { root + "/llama.cpp/bin/llama-batched-bench" }
    func model(_ type: String) -> String { root + "/models/SmolLM2-135M-Instruct.\(type).gguf" }

    var missing: String? {
        FileManager.default.isExecutableFile(atPath: binary) ? nil : "not found (\(binary)): `make bench-peers` builds it"
    }

    func version() -> String {
        let out = (try? runTool(binary, ["--version"]).output) ?? ""
        let line = out.split(separator: "\n").first { $0.hasPrefix("version") }.map(String.init) ?? "version unknown"
        return "\(line), llama-batched-bench in \(root)/llama.cpp (from llama-cpp-python's sdist)"
    }

    /// Prefill tokens/s (batch 1) and decode tokens/s per batch size, one prompt shared (-pps).
    func batchedBench(model: String, prompt: Int, newTokens: Int, batches: [Int]) throws -> (prefill: Double?, decode: [Int: Double]) {
        let context = prompt + (batches.max() ?? 1) * newTokens + 256
        let args = ["-m", model, "-c", String(context), "-b", "2048", "-ub", "512", "-npp", String(prompt),
                    "-ntg", String(newTokens), "-npl", batches.map(String.init).joined(separator: ","), "-pps", "-kvu",
                    "-t", String(threads), "-tb", String(threads), "--output-format", "jsonl"]
        let (status, output) = try runTool(binary, args)
        guard status == 0 else {
            throw CLIError("llama-batched-bench exited with \(status) on \(model):\n" + output.split(separator: "\n").suffix(10).joined(separator: "\n"))
        }
        var prefill: Double?, decode: [Int: Double] = [:]
        for line in output.split(separator: "\n") where line.hasPrefix("{") {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let pl = object["pl"] as? Int, let pp = object["speed_pp"] as? Double, let tg = object["speed_tg"] as? Double
            else { continue }
            if pl == 1 { prefill = pp }
            decode[pl] = tg
        }
        guard prefill != nil || !decode.isEmpty else {
            throw CLIError("llama-batched-bench printed no results for \(model):\n" + output.split(separator: "\n").suffix(10).joined(separator: "\n"))
        }
        return (prefill, decode)
    }
}

/// PyTorch's training step, run by the embedded torch_train.py under the venv's Python.
struct TorchPeer {
    let root: String
    let threads: Int
    var python: String { root + "/venv/bin/python" }

    var missing: String? {
        guard FileManager.default.isExecutableFile(atPath: python) else {
            return "not found (\(python)): `make bench-peers` installs it"
        }
        let check = try? runTool(python, ["-c", "import torch, transformers, gguf"])
        return check?.status == 0 ? nil : "\(python) lacks torch, transformers or gguf: `make peers-venv` installs them"
    }

    func version() -> String {
        let out = (try? runTool(python, ["-c", "import torch, transformers; print('torch', torch.__version__, '+ transformers', transformers.__version__)"]).output) ?? ""
        return out.trimmingCharacters(in: .whitespacesAndNewlines) + " in \(root)/venv"
    }

    func train(model: String, batch: Int, length: Int, steps: Int, mode: String) throws -> Double {
        let script = FileManager.default.temporaryDirectory.appendingPathComponent("coderl-torch-train-\(getpid()).py").path
        try Data(PackageResources.torch_train_py).write(to: URL(fileURLWithPath: script))
        defer { try? FileManager.default.removeItem(atPath: script) }
        let (status, output) = try runTool(python, [script, model, "--batch", String(batch), "--length", String(length),
                                                    "--steps", String(steps), "--mode", mode, "--threads", String(threads)])
        let last = output.split(separator: "\n").last { $0.hasPrefix("{") }
        guard status == 0, let last, let object = try? JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any],
              let rate = object["tokens_per_second"] as? Double else {
            throw CLIError("PyTorch's training step failed (\(mode), exit \(status)):\n" + output.split(separator: "\n").suffix(10).joined(separator: "\n"))
        }
        return rate
    }
}
