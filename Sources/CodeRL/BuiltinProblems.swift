import Datasets
import Foundation

/// The package's own problems (`Resources/basic-problems.jsonl`, written by
/// `scripts/basic_problems.py`): 152 small Python functions with asserts and a reference
/// solution each; ids `basic/NNN-name`, source `builtin`, splits `train` and `heldout`.
public enum BuiltinProblems {
    public static let name = "builtin"

    public static func read() throws -> DatasetContents {
        guard let url = Bundle.module.url(forResource: "basic-problems", withExtension: "jsonl") else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: "basic-problems.jsonl (the CodeRL resource bundle is missing beside the executable)"])
        }
        let text = try String(contentsOf: url, encoding: .utf8)
        return GenericJSONL.read(text: text, file: "builtin:basic-problems.jsonl", source: name)
    }
}
