import Schema

/// MBPP (Austin et al., 2021): the full `mbpp.jsonl` or the hand-checked
/// `sanitized-mbpp.json`. Splits follow the task ids (prompt 1-10, test 11-510, validation
/// 511-600, train 601-974). As in the paper, the three asserts shown in the prompt are the
/// tests; they double as the example tests.
public enum MBPP {
    public static func split(taskID: Int) -> String {
        switch taskID {
        case ...10: "prompt"
        case 11...510: "test"
        case 511...600: "validation"
        default: "train"
        }
    }

    public static func read(file: String, split only: String? = nil) throws -> DatasetContents {
        let text = try Files.text(file)
        var contents = DatasetContents()
        if text.trimmingSpaces.hasPrefix("[") {
            // sanitized-mbpp.json: one JSON array.
            let json: JSON
            do { json = try JSON.parse(text) } catch { throw DatasetFileError(path: file, reason: "\(error)") }
            guard let records = json.arrayValue else { throw DatasetFileError(path: file, reason: "expected a JSON array of tasks") }
            for (index, record) in records.enumerated() {
                contents.add {
                    try problem(RecordReader(file: file, record: "record \(index)", json: record), sanitized: true, only: only)
                }
            }
        } else {
            readJSONLines(file, text, into: &contents) { try problem($0, sanitized: false, only: only) }
        }
        return contents
    }

    static func problem(_ r: RecordReader, sanitized: Bool, only: String?) throws -> ImportedProblem? {
        let taskID = try r.int("task_id")
        let split = split(taskID: taskID)
        if let only, only != split { return nil }
        var problem = Problem()
        problem.id = (sanitized ? "mbpp-sanitized/" : "mbpp/") + "\(taskID)"
        problem.source = sanitized ? "mbpp-sanitized" : "mbpp"
        problem.split = split
        problem.prompt = try r.string(sanitized ? "prompt" : "text")
        let code = try r.string("code").replacingCRLF
        problem.solutions = [code]
        problem.origin = "\(r.file), \(r.record)"
        let asserts = try r.strings("test_list")
        guard !asserts.isEmpty else { throw r.fail("test_list", "has no asserts") }
        for (i, line) in asserts.enumerated() where !line.trimmingSpaces.hasPrefix("assert") {
            throw r.fail("test_list[\(i)]", "is not an assert statement")
        }
        let setup = sanitized ? try r.strings("test_imports", required: false).joined(separator: "\n")
                              : try r.string("test_setup_code", required: false)
        problem.entryPoint = entryPoint(solution: code, asserts: asserts) ?? ""
        if problem.entryPoint.isEmpty { throw r.fail("test_list", "names no function that the reference code defines") }
        var suite = TestSuite()
        suite.format = .assert
        suite.entryPoint = problem.entryPoint
        suite.setupCode = setup
        suite.cases = asserts.map { line in TestCase.with { $0.code = line } }
        return ImportedProblem(problem: problem, exampleTests: suite, hiddenTests: suite)
    }

    /// The function the asserts call: the first one the reference solution defines (`def
    /// name(`) that an assert mentions as `name(`.
    static func entryPoint(solution: String, asserts: [String]) -> String? {
        var defined: [String] = []
        for line in solution.split(separator: "\n") {
            let trimmed = line.trimmingSpaces
            guard trimmed.hasPrefix("def ") else { continue }
            let name = trimmed.dropFirst(4).prefix { $0.isLetter || $0.isNumber || $0 == "_" }
            if !name.isEmpty { defined.append(String(name)) }
        }
        let joined = asserts.joined(separator: "\n")
        return defined.first { name in joined.contains(name + "(") || joined.contains(name + " (") }
    }
}

extension String {
    var replacingCRLF: String {
        var out = ""
        out.reserveCapacity(utf8.count)
        var previousCR = false
        for scalar in unicodeScalars {
            if scalar == "\r" { previousCR = true; out.unicodeScalars.append("\n"); continue }
            if scalar == "\n" && previousCR { previousCR = false; continue }
            previousCR = false
            out.unicodeScalars.append(scalar)
        }
        return out
    }
}
