import CodeRL
import Datasets
import Foundation
import Ledger
import ModelIO
import Runtime
import Schema
import Tensor
import Training

/// What every role derives from the configuration the same way.
public enum Setup {
    /// The starting actor's file (GGUF or checkpoint).
    public static func actorPath(_ config: PipelineConfig) throws -> String {
        let path = config.model.actor.isEmpty ? DefaultModel.path : config.model.actor
        guard FileManager.default.fileExists(atPath: path) else {
            throw PipelineError(config.model.actor.isEmpty ? DefaultModel.missingMessage : "model.actor: no such file: \(path)")
        }
        var isDirectory: ObjCBool = false
        FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
        if isDirectory.boolValue {
            throw PipelineError("model.actor: \(path) is a directory; the pipeline starts from a GGUF file or a training checkpoint (convert with coderl export)")
        }
        return path
    }

    /// The GGUF file holding the tokenizer (and chat template).
    public static func tokenizerPath(_ config: PipelineConfig) throws -> String {
        if !config.model.tokenizer.isEmpty { return config.model.tokenizer }
        let actor = try actorPath(config)
        if let magic = FileHandle(forReadingAtPath: actor)?.readData(ofLength: 4), magic == Data("GGUF".utf8) { return actor }
        let beside = (actor as NSString).deletingLastPathComponent + "/" + LoadedModel.tokenizerFileName
        guard FileManager.default.fileExists(atPath: beside) else {
            throw PipelineError("model.tokenizer: \(actor) carries no tokenizer and there is no \(beside); set model.tokenizer to a GGUF file")
        }
        return beside
    }

    public static func promptFormat(_ config: PipelineConfig) throws -> PromptFormat {
        let file = try GGUFFile(path: try tokenizerPath(config))
        return PromptFormat(tokenizer: try Tokenizer(gguf: file), template: try? ChatTemplate(gguf: file))
    }

    /// Imports `data.sources` into the ledger (problems already there are kept as they are).
    /// Returns one line per source.
    public static func importData(_ config: PipelineConfig, into ledger: Ledger) throws -> [String] {
        var lines: [String] = []
        for source in config.data.sources {
            let contents: DatasetContents
            if source == BuiltinProblems.name {
                contents = try BuiltinProblems.read()
            } else {
                contents = try readDataset(source)
            }
            let results = try ledger.store(contents.problems.map { ($0.problem, $0.exampleTests, $0.hiddenTests) })
            let added = results.filter { $0 == .added }.count
            lines.append("\(source): \(contents.problems.count) problems (\(added) new), \(contents.errors.count) refused")
            for e in contents.errors.prefix(5) { lines.append("  refused: \(e)") }
        }
        return lines
    }

    public static func readDataset(_ path: String) throws -> DatasetContents {
        let name = (path as NSString).lastPathComponent.lowercased()
        if name.contains("mbpp") { return try MBPP.read(file: path) }
        if name.contains("humaneval") || name.contains("human-eval") { return try HumanEval.read(file: path) }
        if name.contains("codecontests") || name.contains("code_contests") { return try CodeContests.read(file: path) }
        if name.hasSuffix(".jsonl") { return try GenericJSONL.read(file: path) }
        throw PipelineError("data.sources: cannot tell the format of \(path) (builtin, a coderl .jsonl, or an mbpp/humaneval/codecontests file)")
    }

    /// Whether a problem matches one of the `source/split` selectors (`builtin/train`,
    /// `mbpp/test`, `jsonl/*`, `*`).
    public static func matches(_ p: Problem, _ selectors: [String]) -> Bool {
        selectors.contains { selector in
            let parts = selector.split(separator: "/", maxSplits: 1).map(String.init)
            return (parts[0] == "*" || parts[0] == p.source) && (parts.count < 2 || parts[1] == "*" || parts[1] == p.split)
        }
    }

    /// The `source/split` selections `problems` offer, with their counts, for a message about a
    /// selector that matched nothing: "mbpp/test (500), mbpp/train (374)".
    public static func selections(_ problems: [Problem]) -> String {
        var counts: [String: Int] = [:]
        for p in problems { counts[p.source + "/" + p.split, default: 0] += 1 }
        guard !counts.isEmpty else { return "none (no problems)" }
        return counts.keys.sorted().map { "\($0) (\(counts[$0]!))" }.joined(separator: ", ")
    }

    /// The ledger's problems matching the selectors, by id.
    public static func problems(_ ledger: Ledger, selectors: [String]) throws -> [Problem] {
        try ledger.problems().filter { matches($0, selectors) }.sorted { $0.id < $1.id }
    }
}

extension MatrixPrecision {
    /// The arithmetic a config key chose (`sampling.precision`, `training.precision`; `auto` is
    /// bf16 where the CPU has AVX512-BF16), or an error naming the key when this CPU cannot run it.
    public init(_ choice: PipelineConfig.PrecisionChoice, key: String) throws {
        switch choice {
        case .auto: self = MatrixPrecision.bf16.unavailableReason == nil ? .bf16 : .fp32
        case .fp32: self = .fp32
        case .bf16: self = .bf16
        }
        if let reason = unavailableReason { throw PipelineError("\(key) is bf16, but \(reason)") }
    }
}
