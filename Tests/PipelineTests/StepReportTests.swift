import Foundation
import Pipeline
import XCTest

/// progress.jsonl: snake_case keys, and the camelCase lines of earlier runs still read.
final class StepReportTests: XCTestCase {
    let legacy = #"{"step":3,"version":4,"seconds":12.5,"rolloutsPerSecond":0.5,"executionsPerSecond":0.6,"meanReward":0.25,"passRate":0.3,"outcomes":[1,2,3,4],"criticAccuracy":0.7,"policyLag":0.5,"stale":0,"unscored":1,"crossEntropy":0.4,"policyLoss":-0.01,"criticLoss":0.6,"gradientNormCE":1.5,"gradientNormPG":0.25,"klToStart":0.125}"#

    func testLinesAreSnakeCaseAndOldLinesStillRead() throws {
        let old = try StepReport.decode(line: legacy)
        XCTAssertEqual(old.rolloutsPerSecond, 0.5)
        XCTAssertEqual(old.gradientNormCE, 1.5, "an acronym in a property name")
        XCTAssertEqual(old.gradientNormPG, 0.25)
        XCTAssertEqual(old.klToStart, 0.125)
        XCTAssertEqual(old.outcomes, [1, 2, 3, 4])

        let line = String(decoding: try old.jsonLine(), as: UTF8.self)
        let keys = Set((try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]).keys)
        XCTAssertTrue(keys.isSuperset(of: ["rollouts_per_second", "gradient_norm_ce", "gradient_norm_pg", "kl_to_start", "mean_reward"]), "\(keys)")
        XCTAssertTrue(keys.allSatisfy { $0 == $0.lowercased() }, "a key not in snake_case: \(keys)")
        XCTAssertFalse(line.contains("\n"))

        let again = try StepReport.decode(line: line)
        XCTAssertEqual(again.gradientNormCE, 1.5)
        XCTAssertEqual(again.line, old.line, "the same report either way")
        XCTAssertThrowsError(try StepReport.decode(line: #"{"step":"three"}"#))
    }
}
