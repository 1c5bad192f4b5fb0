import ArgumentParser
import Foundation
import Llama
import ModelIO
import Tensor

/// Options shared by every command that loads a model.
struct ModelOptions: ParsableArguments {
    @Option(help: "Model: a GGUF file (default: the cached SmolLM2-135M-Instruct), a training checkpoint or a Hugging Face directory.")
    var model: String?

    @Option(help: "OpenBLAS threads (default: all cores).")
    var threads: Int?

    @Option(help: "Precision of the generated tokens' KV cache: f32 or f16.")
    var kv: KVPrecision = .f16

    @Option(help: "Arithmetic of the model's matrix products: fp32, or bf16 (bfloat16 weights and inputs with fp32 sums: about twice as fast; needs AVX512-BF16).")
    var precision: MatrixPrecision = .fp32

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
        if let reason = precision.unavailableReason { throw ValidationError(reason) }
    }

    var resolvedPath: String { model ?? DefaultModel.path }

    /// The model for inference in `--precision` (or `precision`: training builds its own
    /// products and loads with fp32, which packs nothing).
    func load(precision chosen: MatrixPrecision? = nil) throws -> (LlamaModel, Tokenizer, ChatTemplate?) {
        let precision = chosen ?? precision
        BLAS.setThreads(threads ?? ProcessInfo.processInfo.activeProcessorCount)
        if model == nil && !DefaultModel.isPresent {
            throw CLIError(DefaultModel.missingMessage)
        }
        if let magic = FileHandle(forReadingAtPath: resolvedPath)?.readData(ofLength: 4), magic == Data("GGUF".utf8) {
            return try LlamaModel.load(gguf: resolvedPath, precision: precision)
        }
        // A checkpoint or Hugging Face directory, with the tokenizer kept beside it.
        let source = try ModelSource.load(resolvedPath)
        return (LlamaModel(weights: source.weights, precision: precision), source.tokenizer, source.template)
    }
}

extension KVPrecision: ExpressibleByArgument {}
extension MatrixPrecision: ExpressibleByArgument {}

struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// A comma-separated list of whole numbers of at least 1 (`--k 1,10`, `--batches 1,16,64`).
func wholeNumbers(_ text: String, option: String) throws -> [Int] {
    let parts = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    let values = parts.compactMap { Int($0) }
    guard !parts.isEmpty, values.count == parts.count, values.allSatisfy({ $0 >= 1 }) else {
        throw CLIError("\(option) must be comma-separated whole numbers of at least 1, got '\(text)'")
    }
    return values
}

/// Peak resident set size, from /proc/self/status (bytes).
enum ProcessMemory {
    static func read(_ key: String) -> Int {
        guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in s.split(separator: "\n") where line.hasPrefix(key + ":") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            if parts.count >= 2, let kb = Int(parts[1]) { return kb * 1024 }
        }
        return 0
    }
    /// Sets the peak back to the current RSS (Linux: "5" to /proc/self/clear_refs).
    static func resetPeak() {
        try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
    }
    static var peak: Int { read("VmHWM") }
}
