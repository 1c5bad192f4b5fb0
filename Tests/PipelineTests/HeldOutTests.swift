import Pipeline
import XCTest

final class HeldOutTests: XCTestCase {
    /// Request ids of the learner's held-out evaluations name their point and version;
    /// other ids (training requests, `coderl eval`'s own) are not read as one.
    func testRequestIDsNameThePointAndVersion() {
        XCTAssertEqual(HeldOutEvaluation.parse(requestID: "eval-warm-v21-7")?.point, "warm")
        XCTAssertEqual(HeldOutEvaluation.parse(requestID: "eval-warm-v21-7")?.version, 21)
        XCTAssertEqual(HeldOutEvaluation.parse(requestID: "eval-before-v0-0")?.point, "before")
        XCTAssertNil(HeldOutEvaluation.parse(requestID: "train-3"))
        XCTAssertNil(HeldOutEvaluation.parse(requestID: "eval-after-vx-3"))
        XCTAssertNil(HeldOutEvaluation.parse(requestID: "eval-15680-1796553807146-2"))
    }
}
