import ArgumentParser
import Foundation
import Runtime
import Llama
import ModelIO
import Training

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a model as GGUF (llama.cpp) or Hugging Face safetensors (transformers).",
        discussion: """
            --checkpoint takes a pipeline run directory (its latest actor version, with the run's \
            tokenizer), a training checkpoint (from `coderl sft` or a learner), a GGUF file, or a \
            Hugging Face directory (config.json + model.safetensors), so a GGUF can be converted as \
            well. GGUF output \
            carries the tokenizer over (from the GGUF, or from tokenizer.gguf beside a checkpoint; \
            --tokenizer names another GGUF to take it from). Hugging Face output is a directory with \
            config.json and model.safetensors.

            Examples:
              coderl export --checkpoint runs/mbpp --format gguf --out mbpp.gguf
              coderl export --checkpoint runs/sft/step-000200.safetensors --format gguf \\
                  --out sft.gguf
              coderl export --checkpoint runs/sft/step-000200.safetensors \\
                  --format safetensors --out sft-hf --dtype bf16
              coderl export \\
                  --checkpoint ~/.cache/coderl/models/SmolLM2-135M-Instruct.Q4_1.gguf \\
                  --format gguf --dtype f16 --out smol-f16.gguf
            """)

    @Option(help: "Pipeline run directory, checkpoint, GGUF file or Hugging Face directory to export.")
    var checkpoint: String

    @Option(help: "Output format: gguf or safetensors.")
    var format: String

    @Option(help: "Output path (a file for gguf, a directory for safetensors).")
    var out: String

    @Option(help: "Number type of the weights: f32, f16, or (safetensors only) bf16; GGUF keeps norms in f32.")
    var dtype: String = "f32"

    @Option(help: "GGUF file to take the tokenizer from when the source has none.")
    var tokenizer: String?

    func validate() throws {
        guard ModelExport.Format(rawValue: format) != nil else { throw ValidationError("--format must be gguf or safetensors, got '\(format)'") }
        guard SafetensorsWriter.DType(rawValue: dtype.uppercased()) != nil else { throw ValidationError("--dtype must be f32, f16 or bf16, got '\(dtype)'") }
        if format == "gguf" && dtype == "bf16" { throw ValidationError("--dtype bf16 is for safetensors; GGUF output is f32 or f16") }
    }

    func run() throws {
        var source = checkpoint, tokenizer = self.tokenizer
        if let actor = try RunActor.latest(in: checkpoint) {
            print("\(checkpoint): actor v\(actor.version) (\(actor.path))")
            source = actor.path
            tokenizer = tokenizer ?? actor.tokenizer
        }
        let progress = ProgressLine(total: 0, plainInterval: 5)
        progress.update(done: 0, unit: "tensors", detail: "loading \(source)")
        let model = try LoadedModel.load(source)
        defer { progress.finish() }
        switch ModelExport.Format(rawValue: format)! {
        case .gguf:
            guard let tokenizerFile = tokenizer ?? model.tokenizerPath else {
                throw CLIError("\(source) carries no tokenizer; pass --tokenizer with a GGUF file that has one (llama.cpp needs it)")
            }
            let metadata = LoadedModel.tokenizerMetadata(of: try GGUFFile(path: tokenizerFile))
            progress.finish()
            let line = ProgressLine(total: model.weights.namedTensors.count + 1, plainInterval: 5)
            try ModelExport.gguf(model.weights, tokenizer: metadata, to: out, type: dtype == "f16" ? .f16 : .f32) { done, _ in
                line.update(done: done, unit: "tensors", detail: "writing \(out)")
            }
            line.finish()
        case .safetensors:
            progress.update(done: 0, unit: "tensors", detail: "writing \(out)")
            try ModelExport.huggingFace(model.weights, to: out, dtype: SafetensorsWriter.DType(rawValue: dtype.uppercased())!)
            progress.update(done: model.weights.namedTensors.count, unit: "tensors", detail: "written")
        }
        let c = model.weights.config
        print("wrote \(out) (\(format), \(c.layers) blocks, \(c.channels) channels, vocabulary \(c.vocabularySize), \(model.weights.parameterCount / 1_000_000)M parameters)")
    }
}
