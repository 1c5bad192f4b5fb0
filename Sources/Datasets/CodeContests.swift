import Schema

/// CodeContests (Li et al., 2022) as JSON Lines with `index`, `name`, `difficulty`,
/// `time_limit_seconds`, `description` and `tests` (`inputs`/`outputs`, stdin/stdout).
/// Example tests are the Input/Output pairs of the statement's Example section.
public enum CodeContests {
    public static func read(file: String, split: String = "test") throws -> DatasetContents {
        let text = try Files.text(file)
        var contents = DatasetContents()
        readJSONLines(file, text, into: &contents) { r in
            let index = try r.int("index")
            var problem = Problem()
            problem.id = "codecontests/\(split)/\(index)"
            problem.source = "codecontests"
            problem.split = split
            problem.prompt = try r.string("description")
            problem.url = try r.string("name", required: false)
            if let difficulty = r.json["difficulty"], !difficulty.isNull {
                guard let level = difficulty.intValue else { throw r.fail("difficulty", "expected an integer, found \(difficulty.typeName)") }
                problem.difficulty = "\(level)"
            }
            problem.origin = "\(file), \(r.record)"
            guard let tests = r.json["tests"] else { throw r.fail("tests", "is missing") }
            var hidden = try APPS.suite(tests, entryPoint: "", file: file, record: r.record)
            guard !hidden.cases.isEmpty else { throw r.fail("tests", "has no test cases") }
            hidden.format = .stdio
            let examples = statementExamples(problem.prompt)
            let example = examples.isEmpty ? nil : TestSuite.with {
                $0.format = .stdio
                $0.cases = examples.map { input, output in TestCase.with { $0.input = input; $0.expected = output } }
            }
            return ImportedProblem(problem: problem, exampleTests: example, hiddenTests: hidden)
        }
        return contents
    }

    /// Input/Output blocks after an "Example"/"Examples" heading, up to "Note" or the limits.
    public static func statementExamples(_ statement: String) -> [(String, String)] {
        let lines = statement.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard let start = lines.firstIndex(where: { ["Example", "Examples"].contains($0.trimmingSpaces) }) else { return [] }
        var examples: [(String, String)] = []
        var input: [String]?
        var output: [String]?
        func block(_ lines: [String]) -> String {
            let trimmed = lines.drop { $0.trimmingSpaces.isEmpty }.reversed().drop { $0.trimmingSpaces.isEmpty }.reversed()
            return trimmed.joined(separator: "\n") + "\n"
        }
        func flush() {
            if let i = input, let o = output { examples.append((block(i), block(o))) }
            input = nil
            output = nil
        }
        for line in lines[(start + 1)...] {
            let heading = line.trimmingSpaces
            if heading == "Input" { flush(); input = []; continue }
            if heading == "Output", input != nil { output = []; continue }
            if heading == "Note" || heading.hasPrefix("Time Limit:") { break }
            if output != nil { output!.append(line) } else if input != nil { input!.append(line) }
        }
        flush()
        return examples.filter { !$0.0.trimmingSpaces.isEmpty || !$0.1.trimmingSpaces.isEmpty }
    }
}
