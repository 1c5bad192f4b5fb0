import Foundation
import LMDB
import Schema
import XCTest
import Ledger

final class LedgerTests: XCTestCase {
    var path = ""

    override func setUp() { path = temporaryDirectory("ledger") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: path) }

    func makeProblem(_ id: String, prompt: String = "Add two numbers.") -> (Problem, TestSuite, TestSuite) {
        var problem = Problem()
        problem.id = id
        problem.source = "jsonl"
        problem.split = "train"
        problem.prompt = prompt
        problem.solutions = ["def add(a, b):\n    return a + b\n"]
        var example = TestSuite()
        example.format = .assert
        example.cases = [TestCase.with { $0.code = "assert add(1, 2) == 3" }]
        var hidden = example
        hidden.cases.append(TestCase.with { $0.code = "assert add(-1, 1) == 0" })
        return (problem, example, hidden)
    }

    func testProblemsAndSuitesStoreOnceAndReimportIsIdempotent() throws {
        let ledger = try Ledger(path: path)
        let (p1, example, hidden) = makeProblem("jsonl/add")
        var p2 = p1
        p2.id = "jsonl/add-again"
        XCTAssertEqual(try ledger.store(problem: p1, exampleTests: example, hiddenTests: hidden), .added)
        XCTAssertEqual(try ledger.store(problem: p2, exampleTests: example, hiddenTests: hidden), .added)
        XCTAssertEqual(try ledger.store(problem: p1, exampleTests: example, hiddenTests: hidden), .unchanged)
        var changed = p1
        changed.prompt = "Add two integers."
        XCTAssertEqual(try ledger.store(problem: changed, exampleTests: example, hiddenTests: hidden), .updated)

        let counts = try ledger.counts()
        XCTAssertEqual(counts.problems, 2)
        XCTAssertEqual(counts.testSuites, 2, "identical suites are stored once")
        let stored = try XCTUnwrap(ledger.problem(id: "jsonl/add"))
        XCTAssertEqual(stored.prompt, "Add two integers.")
        XCTAssertEqual(Array(stored.hiddenTests), try Ledger.hash(of: hidden))
        XCTAssertEqual(try ledger.testSuite(hash: Array(stored.hiddenTests))?.cases.count, 2)
        XCTAssertEqual(try ledger.testSuite(hash: Array(stored.exampleTests))?.cases.count, 1)
        XCTAssertEqual(try ledger.problems(source: "jsonl").map(\.id), ["jsonl/add", "jsonl/add-again"])
        XCTAssertEqual(try ledger.problems(source: "apps").count, 0)
    }

    func testRolloutsGetIncreasingSequencesAndKeepTheirContent() throws {
        let ledger = try Ledger(path: path)
        let first = try ledger.append([sampleRollout(problem: "a", tokens: [1, 2]), sampleRollout(problem: "b", tokens: [3])])
        let second = try ledger.append([sampleRollout(problem: "c", tokens: [])])
        XCTAssertEqual(first + second, [1, 2, 3])
        XCTAssertEqual(try ledger.lastSequence(), 3)
        let b = try XCTUnwrap(ledger.rollout(sequence: 2))
        XCTAssertEqual(b.problemID, "b")
        XCTAssertEqual(b.programTokens, [3])
        XCTAssertEqual(b.logprobs, [-0.03])
        XCTAssertEqual(b.state, .generated)
        XCTAssertEqual(b.schemaVersion, recordSchemaVersion)
        XCTAssertGreaterThan(b.createdUnixMs, 0)

        var seen: [UInt64] = []
        try ledger.scanRollouts(from: 2, pageSize: 1) { seen.append($0.sequence); return true }
        XCTAssertEqual(seen, [2, 3])
    }

    func testUpdatesMoveTheLifecycleAndKeepTheSequence() throws {
        let ledger = try Ledger(path: path)
        try ledger.append([sampleRollout(problem: "a", tokens: [1, 2])])
        try ledger.update(sequences: [1]) { rollout in
            rollout.state = .labeled
            rollout.verdict = Verdict.with { $0.outcome = .failedTest; $0.errorType = "AssertionError" }
            rollout.reward = -0.3
            rollout.criticWeights = [0.5, 0.25]
            rollout.sequence = 99
        }
        let stored = try XCTUnwrap(ledger.rollout(sequence: 1))
        XCTAssertEqual(stored.state, .labeled)
        XCTAssertEqual(stored.verdict.outcome, .failedTest)
        XCTAssertEqual(stored.criticWeights, [0.5, 0.25])
        XCTAssertEqual(stored.sequence, 1)
        XCTAssertNil(try ledger.rollout(sequence: 99))
        XCTAssertThrowsError(try ledger.update(sequences: [7]) { _ in }) { error in
            XCTAssertTrue("\(error)".contains("sequence 7"), "\(error)")
        }
    }

    func testInvalidRolloutsAreRefusedAndNothingIsWritten() throws {
        let ledger = try Ledger(path: path)
        var bad = sampleRollout(problem: "a", tokens: [1, 2, 3])
        bad.logprobs = [-1]
        XCTAssertThrowsError(try ledger.append([sampleRollout(problem: "ok", tokens: [1]), bad])) { error in
            XCTAssertTrue("\(error)".contains("1 log-probs for 3 program tokens"), "\(error)")
        }
        XCTAssertThrowsError(try ledger.append([sampleRollout(problem: "", tokens: [])]))
        XCTAssertEqual(try ledger.lastSequence(), 0)
        XCTAssertEqual(try ledger.counts().rollouts, 0)
        try ledger.append([sampleRollout(problem: "a", tokens: [1])])
        XCTAssertThrowsError(try ledger.update(sequences: [1]) { $0.criticWeights = [1, 2] })
        XCTAssertEqual(try ledger.rollout(sequence: 1)?.criticWeights, [])
    }

    func testVerdictCacheIsKeyedByProgramAndSuite() throws {
        let ledger = try Ledger(path: path)
        let suiteA = SHA256.hash("suite a"), suiteB = SHA256.hash("suite b")
        let verdict = Verdict.with { $0.outcome = .passed; $0.passedTests = 3; $0.totalTests = 3 }
        try ledger.cacheVerdict(verdict, program: "print(1)", suite: suiteA)
        XCTAssertEqual(try ledger.cachedVerdict(program: "print(1)", suite: suiteA), verdict)
        XCTAssertNil(try ledger.cachedVerdict(program: "print(1)", suite: suiteB))
        XCTAssertNil(try ledger.cachedVerdict(program: "print(2)", suite: suiteA))
    }

    func testRunMetadataRoundTripsAcrossReopen() throws {
        do {
            let ledger = try Ledger(path: path)
            XCTAssertNil(try ledger.runMetadata())
            try ledger.saveRunMetadata(RunMetadata.with { $0.runID = "r1"; $0.learnerPosition = 42; $0.actorVersion = 5 })
        }
        let reopened = try Ledger.openForReading(path: path)
        let metadata = try XCTUnwrap(reopened.runMetadata())
        XCTAssertEqual(metadata.runID, "r1")
        XCTAssertEqual(metadata.learnerPosition, 42)
        XCTAssertEqual(metadata.schemaVersion, recordSchemaVersion)
    }

    func testCorruptAndNewerRecordsAreNamedNotCrashed() throws {
        let ledger = try Ledger(path: path)
        try ledger.append([sampleRollout(problem: "a", tokens: [1])])
        var future = sampleRollout(problem: "f", tokens: [])
        future.schemaVersion = recordSchemaVersion + 1
        future.sequence = 2
        try ledger.environment.write { txn in
            let db = try ledger.environment.openDatabase("rollouts")
            try txn.put(db, UInt64(1).sortableKey, [0xFF, 0xFF, 0xFF])
            try txn.put(db, UInt64(2).sortableKey, try future.serializedBytes() as [UInt8])
        }
        XCTAssertThrowsError(try ledger.rollout(sequence: 1)) { error in
            XCTAssertTrue("\(error)".contains("table 'rollouts', key 1"), "\(error)")
        }
        XCTAssertThrowsError(try ledger.rollout(sequence: 2)) { error in
            guard case .newerSchema(_, "2", _, _)? = error as? LedgerError else { return XCTFail("\(error)") }
        }
    }

    func testNewerLedgerFormatIsRefused() throws {
        do {
            let env = try Environment(path: path)
            let meta = try env.openDatabase("meta")
            try env.write { try $0.put(meta, Array("format".utf8), withUnsafeBytes(of: UInt32(99).bigEndian) { Array($0) }) }
        }
        XCTAssertThrowsError(try Ledger(path: path)) { error in
            XCTAssertTrue("\(error)".contains("format 99"), "\(error)")
        }
    }

    func testOpeningAMissingLedgerForReadingSaysSo() {
        XCTAssertThrowsError(try Ledger.openForReading(path: path + "/nothing")) { error in
            XCTAssertTrue("\(error)".contains("not a ledger"), "\(error)")
        }
    }
}

final class PromptSharingTests: XCTestCase {
    func testPromptsAreStoredOnceAndRestoredOnRead() throws {
        let path = temporaryDirectory("ledger-prompts")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let ledger = try Ledger(path: path)
        let promptA: [UInt32] = Array(100..<400), promptB: [UInt32] = [7, 8, 9]
        var batch: [Rollout] = []
        for i in 0..<8 {
            var rollout = sampleRollout(problem: "p", tokens: [UInt32(i)])
            rollout.promptTokens = i < 6 ? promptA : promptB
            batch.append(rollout)
        }
        try ledger.append(batch)
        try ledger.append([batch[0]])  // the same prompt in a later batch
        let prompts = try ledger.environment.openDatabase("prompts")
        XCTAssertEqual(try ledger.environment.read { try $0.count(prompts) }, 2, "two distinct prompts, stored once each")
        let raw = try ledger.environment.read { txn in
            try txn.get(try ledger.environment.openDatabase("rollouts"), UInt64(1).sortableKey)
        }
        let stored = try Rollout(serializedBytes: try XCTUnwrap(raw))
        XCTAssertEqual(stored.promptTokens, [], "the stored record holds only the prompt's hash")
        XCTAssertEqual(stored.promptHash.count, 32)

        XCTAssertEqual(try ledger.rollout(sequence: 1)?.promptTokens, promptA)
        XCTAssertEqual(try ledger.rollout(sequence: 8)?.promptTokens, promptB)
        var seen: [[UInt32]] = []
        try ledger.scanRollouts { seen.append($0.promptTokens); return true }
        XCTAssertEqual(seen, Array(repeating: promptA, count: 6) + [promptB, promptB, promptA])

        try ledger.update(sequences: [2]) { $0.state = .consumed }
        XCTAssertEqual(try ledger.rollout(sequence: 2)?.promptTokens, promptA, "an update keeps the prompt")
        try ledger.update(sequences: [3]) { $0.promptTokens = [1, 2] }
        XCTAssertEqual(try ledger.rollout(sequence: 3)?.promptTokens, [1, 2])
    }
}

/// Sample requests recorded as issued: who may answer them, with what.
final class IssuedRequestTests: XCTestCase {
    func testAnAnswerMustComeFromAHolderForTheRequestsProblems() throws {
        let path = temporaryDirectory("issued")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let ledger = try Ledger(path: path)
        XCTAssertNil(try ledger.issued("train-0"))
        try ledger.recordIssued("train-0", holder: .init(sampler: "s1", key: "KEY1"), problems: ["p/1"], maxRollouts: 4)
        // Handed to another sampler later (the first fell silent): both may answer.
        try ledger.recordIssued("train-0", holder: .init(sampler: "s2", key: "KEY2"), problems: ["p/1"], maxRollouts: 4)
        let issued = try XCTUnwrap(try ledger.issued("train-0"))
        XCTAssertEqual(issued.holders.map(\.sampler), ["s1", "s2"])
        XCTAssertNil(issued.refusal(sampler: "s1", key: "KEY1", problems: ["p/1", "p/1"]))
        XCTAssertNil(issued.refusal(sampler: "anything", key: "KEY2", problems: ["p/1"]), "the key decides, not the self-chosen name")
        XCTAssertNotNil(issued.refusal(sampler: "s1", key: "KEY3", problems: ["p/1"]), "a name alone does not pass for a holder's key")
        XCTAssertNotNil(issued.refusal(sampler: "s1", key: "KEY1", problems: ["p/2"]), "another problem")
        XCTAssertNotNil(issued.refusal(sampler: "s1", key: "KEY1", problems: Array(repeating: "p/1", count: 5)), "more programs than asked for")
        // Without CURVE the name is all there is.
        try ledger.recordIssued("eval-0", holder: .init(sampler: "s1", key: nil), problems: ["p/1"], maxRollouts: 1)
        XCTAssertNil(try ledger.issued("eval-0")?.refusal(sampler: "s1", key: nil, problems: ["p/1"]))
        XCTAssertNotNil(try ledger.issued("eval-0")?.refusal(sampler: "s9", key: nil, problems: ["p/1"]))
        // A ledger opened read-only before the table existed still opens.
        let old = temporaryDirectory("issued-old")
        defer { try? FileManager.default.removeItem(atPath: old) }
        do {
            let env = try Environment(path: old)
            for table in ["problems", "tests", "rollouts", "verdicts", "prompts", "meta"] { _ = try env.openDatabase(table) }
        }
        let reader = try Ledger.openForReading(path: old)
        XCTAssertNil(try reader.issued("x"))
    }
}
