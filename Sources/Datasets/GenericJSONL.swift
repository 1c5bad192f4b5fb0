import Schema

/// Our documented format for users' own problem sets: JSON Lines, one problem per line.
///
/// ```json
/// {"id": "mine/add", "prompt": "Write add(a, b).", "split": "train", "difficulty": "easy",
///  "starter_code": "", "entry_point": "add", "solutions": ["def add(a, b):\n    return a + b\n"],
///  "tests": {"format": "assert", "setup_code": "", "cases": [{"code": "assert add(1, 2) == 3"}]},
///  "example_tests": {"format": "call", "cases": [{"input": [1, 2], "output": 3}]}}
/// ```
///
/// Required: `id`, `prompt`, `tests`. Test formats: `stdio` (`input` and `output` strings),
/// `call` (`input` a list of arguments, `output` any JSON value; needs `entry_point`),
/// `assert` (`code`: one assert statement), `humaneval` (`code`: a `check(candidate)` program).
public enum GenericJSONL {
    public static func read(file: String, split defaultSplit: String? = nil) throws -> DatasetContents {
        read(text: try Files.text(file), file: file, split: defaultSplit)
    }

    /// Reads JSON Lines held in memory; `file` names them in messages and `origin`s.
    public static func read(text: String, file: String, split defaultSplit: String? = nil, source: String = "jsonl") -> DatasetContents {
        var contents = DatasetContents()
        readJSONLines(file, text, into: &contents) { r in
            var problem = Problem()
            problem.id = try r.string("id")
            if problem.id.utf8.count > 400 { throw r.fail("id", "is longer than 400 bytes") }
            problem.source = source
            problem.split = try r.string("split", required: false)
            if problem.split.isEmpty { problem.split = defaultSplit ?? "train" }
            problem.prompt = try r.string("prompt")
            problem.difficulty = try r.string("difficulty", required: false)
            problem.starterCode = try r.string("starter_code", required: false)
            problem.entryPoint = try r.string("entry_point", required: false)
            problem.solutions = try r.strings("solutions", required: false)
            problem.url = try r.string("url", required: false)
            problem.origin = "\(file), \(r.record)"
            guard let tests = r.json["tests"] else { throw r.fail("tests", "is missing") }
            let hidden = try suite(tests, field: "tests", problem: problem, r)
            let example = try r.json["example_tests"].flatMap { $0.isNull ? nil : try suite($0, field: "example_tests", problem: problem, r) }
            return ImportedProblem(problem: problem, exampleTests: example, hiddenTests: hidden)
        }
        return contents
    }

    static func suite(_ json: JSON, field: String, problem: Problem, _ r: RecordReader) throws -> TestSuite {
        let reader = RecordReader(file: r.file, record: r.record, json: json)
        let formatName = try reader.string("format")
        var suite = TestSuite()
        suite.entryPoint = problem.entryPoint
        suite.setupCode = try reader.string("setup_code", required: false)
        switch formatName {
        case "stdio": suite.format = .stdio
        case "call": suite.format = .call
        case "assert": suite.format = .assert
        case "humaneval": suite.format = .humanevalCheck
        default: throw r.fail("\(field).format", "'\(formatName)' is not one of stdio, call, assert, humaneval")
        }
        if suite.format == .call && problem.entryPoint.isEmpty { throw r.fail("entry_point", "is required by call tests") }
        guard let cases = json["cases"]?.arrayValue, !cases.isEmpty else { throw r.fail("\(field).cases", "expected a non-empty list") }
        for (i, item) in cases.enumerated() {
            let path = "\(field).cases[\(i)]"
            let c = RecordReader(file: r.file, record: r.record, json: item)
            var test = TestCase()
            switch suite.format {
            case .stdio:
                guard let input = item["input"]?.stringValue else { throw r.fail("\(path).input", "expected a string") }
                guard let output = item["output"]?.stringValue else { throw r.fail("\(path).output", "expected a string") }
                test.input = input
                test.expected = output
            case .call:
                guard case .array? = item["input"] else { throw r.fail("\(path).input", "expected the list of arguments") }
                guard let output = item["output"] else { throw r.fail("\(path).output", "is missing") }
                test.input = item["input"]!.text
                test.expected = output.text
            default:
                do { test.code = try c.string("code") } catch { throw r.fail("\(path).code", "expected a non-empty string") }
            }
            suite.cases.append(test)
        }
        return suite
    }
}
