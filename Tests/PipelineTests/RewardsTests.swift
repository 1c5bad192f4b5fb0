import CodeRL
import Schema
import XCTest

final class RewardsTests: XCTestCase {
    func testCodeRLRewardTable() {
        XCTAssertEqual(Rewards.reward(.compileError), -1.0)
        XCTAssertEqual(Rewards.reward(.runtimeError), -0.6)
        XCTAssertEqual(Rewards.reward(.failedTest), -0.3)
        XCTAssertEqual(Rewards.reward(.passed), 1.0)
    }

    func testRelativeReturnAgainstGreedyBaseline() {
        // greedy failed a test (-0.3); samples: passed, compile error, failed test.
        let r = Rewards.returns(rewards: [-0.3, 1.0, -1.0, -0.3], isBaseline: [true, false, false, false], mode: .relative, baseline: .greedy)!
        XCTAssertEqual(r[0], 0)
        XCTAssertEqual(r[1], 1.3, accuracy: 1e-6)
        XCTAssertEqual(r[2], -0.7, accuracy: 1e-6)
        XCTAssertEqual(r[3], 0, accuracy: 1e-6)
    }

    func testGroupMeanAndAbsoluteReturns() {
        let rewards: [Float] = [1.0, -1.0, -0.6, 1.0]
        let flags = [false, false, false, false]
        let mean = Rewards.returns(rewards: rewards, isBaseline: flags, mode: .relative, baseline: .groupMean)!
        XCTAssertEqual(mean.reduce(0, +), 0, accuracy: 1e-6)
        XCTAssertEqual(mean[0], 1.0 - 0.1, accuracy: 1e-6)
        XCTAssertEqual(Rewards.returns(rewards: rewards, isBaseline: flags, mode: .absolute, baseline: .greedy)!, rewards)
        // No greedy program: a greedy baseline cannot be formed.
        XCTAssertNil(Rewards.returns(rewards: rewards, isBaseline: flags, mode: .relative, baseline: .greedy))
    }

    func testCriticClasses() {
        XCTAssertEqual(Rewards.criticClass(.runtimeError, binary: false), 1)
        XCTAssertEqual(Rewards.criticClass(.runtimeError, binary: true), 0)
        XCTAssertEqual(Rewards.criticClass(.passed, binary: true), 1)
        XCTAssertNil(Rewards.criticClass(.unspecified, binary: true))
    }
}
