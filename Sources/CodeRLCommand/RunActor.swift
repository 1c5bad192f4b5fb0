import Foundation

/// A pipeline run's trained actor on disk: the latest version the param-store kept, and the
/// tokenizer the run started with.
struct RunActor {
    let path: String
    let version: UInt64
    let tokenizer: String?

    /// The latest actor version under `run` (a run directory, or its `weights` directory), or
    /// nil when `run` is neither.
    static func latest(in run: String) throws -> RunActor? {
        let weights = FileManager.default.fileExists(atPath: run + "/weights/actor") ? run + "/weights" : run
        let actor = weights + "/actor"
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: actor, isDirectory: &isDirectory), isDirectory.boolValue else { return nil }
        // A version is whole once its manifest is there (the param-store writes it last).
        let versions = try FileManager.default.contentsOfDirectory(atPath: actor).compactMap { name -> (UInt64, String)? in
            guard name.hasPrefix("v"), name.hasSuffix(".manifest"), let v = UInt64(name.dropFirst().dropLast(9)) else { return nil }
            let base = actor + "/" + String(name.dropLast(9))
            return ["safetensors", "gguf"].map { base + "." + $0 }.first { FileManager.default.fileExists(atPath: $0) }.map { (v, $0) }
        }
        guard let (version, path) = versions.max(by: { $0.0 < $1.0 }) else {
            throw CLIError("\(actor) holds no actor version yet")
        }
        let tokenizer = weights + "/tokenizer/v000000.gguf"
        return RunActor(path: path, version: version, tokenizer: FileManager.default.fileExists(atPath: tokenizer) ? tokenizer : nil)
    }
}
