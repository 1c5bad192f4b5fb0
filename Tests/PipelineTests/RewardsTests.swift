import CodeRL
import Schema
import Pipeline
import XCTest

final class RewardsTests: XCTestCase {
    func testCodeRLRewardTable() {
        XCTAssertEqual(Rewards.reward(.compileError), -1.0)
        XCTAssertEqual(Rewards.reward(.runtimeError), -0.6)
        XCTAssertEqual(Rewards.reward(.failedTest), -0.3)
        XCTAssertEqual(Rewards.reward(.passed), 1.0)
    }

    func testPassRewardRanksOnlyPassingAgainstFailing() {
        XCTAssertEqual(Outcome.allCases.map { Rewards.reward($0, scheme: .pass) }, [0, 0, 0, 0, 1])
        // One group: two passing and two failing samples of different kinds, no greedy program.
        var group = [Outcome.passed, .compileError, .failedTest, .passed].enumerated().map { i, o in
            Rollout.with { $0.sequence = UInt64(i); $0.verdict.outcome = o }
        }
        Rewards.label(&group, mode: .relative, baseline: .groupMean, scheme: .pass)
        XCTAssertEqual(group.map(\.advantage), [0.5, -0.5, -0.5, 0.5])
        // Every sample failed: nothing to learn from, whatever the kind of failure.
        var failed = [Outcome.compileError, .runtimeError, .failedTest].map { o in Rollout.with { $0.verdict.outcome = o } }
        Rewards.label(&failed, mode: .relative, baseline: .groupMean, scheme: .pass)
        XCTAssertEqual(failed.map(\.advantage), [0, 0, 0])
        Rewards.label(&failed, mode: .relative, baseline: .groupMean, scheme: .coderl)
        XCTAssertNotEqual(failed.map(\.advantage), [0, 0, 0])
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

    func testCriticTokenWeights() {
        // A passing program the critic thought unlikely to pass (p = 0.1 .. 0.3), return +0.5.
        let critic: [Float] = [0.1, 0.2, 0.3]
        let raw = Rewards.tokenWeights(advantage: 0.5, critic: critic, count: 3, scale: .raw)
        XCTAssertEqual(raw, [0.05, 0.1, 0.15].map { Float($0) }, accuracy: 1e-6)
        // Scaled to mean 1: the program carries its whole return (0.5 per token on average),
        // shared out in the critic's proportions.
        let mean = Rewards.tokenWeights(advantage: 0.5, critic: critic, count: 3, scale: .mean)
        XCTAssertEqual(mean, [0.25, 0.5, 0.75], accuracy: 1e-6)
        XCTAssertEqual(mean.reduce(0, +) / 3, 0.5, accuracy: 1e-6)
        // No critic, a critic for another program length, or one that is sure at every token
        // the outcome cannot happen: the return on every token.
        XCTAssertEqual(Rewards.tokenWeights(advantage: -0.5, critic: nil, count: 2, scale: .mean), [-0.5, -0.5])
        XCTAssertEqual(Rewards.tokenWeights(advantage: -0.5, critic: [0.9], count: 2, scale: .raw), [-0.5, -0.5])
        XCTAssertEqual(Rewards.tokenWeights(advantage: 1, critic: [0, 0], count: 2, scale: .mean), [1, 1])
    }
}

private func XCTAssertEqual(_ a: [Float], _ b: [Float], accuracy: Float, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, file: file, line: line)
    for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: accuracy, file: file, line: line) }
}

/// Micro-batches keep the completions of one prompt together, whatever order they came in.
final class BatchBuilderTests: XCTestCase {
    func testCompletionsOfOnePromptShareMicroBatches() throws {
        let builder = BatchBuilder(maxTokens: 64, microBatch: 2, vocabularySize: 32, pad: 0)
        let a = [1, 2, 3], b = [4, 5]
        let items: [(prompt: [Int], completion: [Int], weights: [Float]?)] = [
            (a, [10], [1]), (b, [11, 12], [-1, -1]), (a, [13, 14], [0.5, 0.5]), (b, [15], [2]), (a, [16], [1]),
        ]
        let batches = try builder.batches(items)
        XCTAssertEqual(batches.map(\.tokens), [[[1, 2, 3, 10, 0], [1, 2, 3, 13, 14]], [[1, 2, 3, 16], [4, 5, 11, 12]], [[4, 5, 15]]])
        XCTAssertEqual(batches[1].weights!, [[0, 0, 1], [0, -1, -1]])
    }
}
