import Foundation
import Schema
import XCTest
import Datasets

/// The public datasets in ../shared/data, read exactly as published. Skipped, with a clear
/// message, when that folder is absent.
final class SharedDataTests: XCTestCase {
    var data: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../../shared/data").standardizedFileURL.path
    }

    func requireData() throws {
        guard FileManager.default.fileExists(atPath: data) else {
            print("SharedDataTests: \(data) is absent; the dataset tests are skipped")
            throw XCTSkip("shared datasets absent at \(data)")
        }
    }

    func testEveryPublishedDatasetImportsCleanly() throws {
        try requireData()
        let mbpp = try MBPP.read(file: data + "/mbpp/mbpp.jsonl")
        XCTAssertEqual(mbpp.errors, [])
        XCTAssertEqual(mbpp.problems.count, 974)
        XCTAssertEqual(Dictionary(grouping: mbpp.problems, by: \.problem.split).mapValues(\.count),
                       ["prompt": 10, "test": 500, "validation": 90, "train": 374])
        XCTAssertTrue(mbpp.problems.allSatisfy { !$0.problem.entryPoint.isEmpty })

        let sanitized = try MBPP.read(file: data + "/mbpp/sanitized-mbpp.json")
        XCTAssertEqual(sanitized.errors, [])
        XCTAssertEqual(sanitized.problems.count, 427)

        let apps = try APPS.read(directory: data + "/apps")
        XCTAssertEqual(apps.errors, [])
        XCTAssertEqual(apps.problems.filter { $0.problem.split == "train" }.count, 53)
        XCTAssertEqual(apps.problems.filter { $0.problem.split == "test" }.count, 10)
        XCTAssertEqual(apps.problems.reduce(0) { $0 + ($1.problem.split == "train" ? $1.hiddenTests!.cases.count : 0) }, 337)
        XCTAssertEqual(apps.problems.reduce(0) { $0 + ($1.problem.split == "test" ? $1.hiddenTests!.cases.count : 0) }, 213)
        XCTAssertEqual(apps.problems.filter { $0.hiddenTests?.format == .call }.count, 5)
        XCTAssertTrue(apps.problems.filter { $0.problem.split == "test" }.allSatisfy { $0.exampleTests != nil })

        let contests = try CodeContests.read(file: data + "/codecontests/codecontests_test.jsonl")
        XCTAssertEqual(contests.errors, [])
        XCTAssertEqual(contests.problems.count, 165)
        XCTAssertEqual(contests.problems.reduce(0) { $0 + $1.hiddenTests!.cases.count }, 1837)
        XCTAssertGreaterThan(contests.problems.filter { $0.exampleTests != nil }.count, 150)

        let humaneval = try HumanEval.read(file: data + "/humaneval/HumanEval.jsonl.gz")
        XCTAssertEqual(humaneval.errors, [])
        XCTAssertEqual(humaneval.problems.count, 164)
        XCTAssertEqual(humaneval.problems.first?.problem.entryPoint, "has_close_elements")
    }
}
