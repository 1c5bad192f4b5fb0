import Foundation
import Llama
import ModelIO
import XCTest

/// Token choice on hand-made logits, where the exact distributions are known.
final class SamplingTests: XCTestCase {
    // Probabilities at T=1: softmax([2, 1, 0, -1, -inf...]).
    let logits: [Float] = [2, 1, 0, -1] + Array(repeating: -30, count: 60)

    func frequencies(_ p: SamplingParameters, draws: Int = 20_000) -> ([Double], [Int: Float]) {
        let sampler = TokenSampler()
        var rng = Xoshiro256(seed: p.seed)
        var counts = [Double](repeating: 0, count: logits.count)
        var logq: [Int: Float] = [:]
        for _ in 0..<draws {
            let c = sampler.choose(logits, vocabulary: logits.count, parameters: p, greedy: false, rng: &rng)
            counts[c.token] += 1
            logq[c.token] = c.sampledLogProb
            XCTAssertEqual(c.modelLogProb, logits[c.token] - logSumExp(logits), accuracy: 1e-5)
        }
        return (counts.map { $0 / Double(draws) }, logq)
    }

    func logSumExp(_ x: [Float]) -> Float {
        let m = x.max()!
        return m + log(x.map { exp($0 - m) }.reduce(0, +))
    }

    func softmax(_ x: [Float], _ t: Float = 1) -> [Double] {
        let e = x.map { exp(Double($0 / t)) }
        let s = e.reduce(0, +)
        return e.map { $0 / s }
    }

    func testTemperatureOneSamplesTheModelDistribution() {
        let (f, logq) = frequencies(SamplingParameters(temperature: 1, seed: 1))
        let p = softmax(logits)
        for i in 0..<4 { XCTAssertEqual(f[i], p[i], accuracy: 0.012, "token \(i)") }
        for (tok, lq) in logq { XCTAssertEqual(Double(lq), log(p[tok]), accuracy: 1e-4) }
    }

    func testTemperatureSharpens() {
        let (f, logq) = frequencies(SamplingParameters(temperature: 0.5, seed: 2))
        let q = softmax(logits, 0.5)
        for i in 0..<4 { XCTAssertEqual(f[i], q[i], accuracy: 0.012) }
        XCTAssertEqual(Double(logq[0]!), log(q[0]), accuracy: 1e-4)
    }

    func testTopKKeepsKTokensAndRenormalises() {
        let (f, logq) = frequencies(SamplingParameters(temperature: 1, topK: 2, seed: 3))
        XCTAssertEqual(f[2] + f[3], 0)
        let p = softmax(logits)
        XCTAssertEqual(f[0], p[0] / (p[0] + p[1]), accuracy: 0.012)
        XCTAssertEqual(Double(logq[1]!), log(p[1] / (p[0] + p[1])), accuracy: 1e-4)
    }

    func testTopPKeepsTheSmallestNucleus() {
        // p = [0.644, 0.237, 0.087, 0.032, ...]: top-p 0.85 keeps tokens 0 and 1 (0.881).
        let (f, logq) = frequencies(SamplingParameters(temperature: 1, topP: 0.85, seed: 4))
        XCTAssertEqual(f[2] + f[3], 0)
        XCTAssertGreaterThan(f[1], 0.2)
        let p = softmax(logits)
        XCTAssertEqual(Double(logq[0]!), log(p[0] / (p[0] + p[1])), accuracy: 1e-4)
        let (g, _) = frequencies(SamplingParameters(temperature: 1, topP: 0.5, seed: 5), draws: 200)
        XCTAssertEqual(g[0], 1, "a nucleus smaller than the top token keeps only it")
    }

    func testGreedyTakesTheLowestIdOnTies() {
        let sampler = TokenSampler()
        var rng = Xoshiro256(seed: 0)
        let tied: [Float] = [0, 3, 3, 1]
        let c = sampler.choose(tied, vocabulary: 4, parameters: SamplingParameters(), greedy: false, rng: &rng)
        XCTAssertEqual(c.token, 1)
        XCTAssertEqual(c.sampledLogProb, 0)
    }

    func testSeedsAreReproducibleAndStreamsIndependent() {
        var a = Xoshiro256(seed: 7), b = Xoshiro256(seed: 7), c = Xoshiro256(seed: 7, stream: 1)
        let xa = (0..<5).map { _ in a.next() }
        XCTAssertEqual(xa, (0..<5).map { _ in b.next() })
        XCTAssertNotEqual(xa, (0..<5).map { _ in c.next() })
    }

    func testParametersAreValidated() {
        XCTAssertThrowsError(try SamplingParameters(temperature: -1).validate()) { e in XCTAssertTrue("\(e)".contains("temperature")) }
        XCTAssertThrowsError(try SamplingParameters(topP: 0).validate()) { e in XCTAssertTrue("\(e)".contains("top_p")) }
        XCTAssertThrowsError(try SamplingParameters(maxNewTokens: 0).validate())
        XCTAssertThrowsError(try SamplingParameters(stopStrings: [""]).validate())
    }
}

/// Stop conditions on the real model (short runs).
final class StopConditionTests: XCTestCase {
    func testStopStringCutsTheTextAndEOSEndsTheSequence() throws {
        let (model, tok, template) = try Shared.model()
        let generator = Generator(model: model, tokenizer: tok)
        // The fibonacci prompt greedily continues "\n    if n == 0:\n        return 1\n...".
        let prompt = tok.encode("def fibonacci(n):")
        let (cut, _) = try generator.generate(prompt: prompt, samples: 1, parameters: SamplingParameters(maxNewTokens: 48, stopStrings: ["return"]))
        XCTAssertEqual(cut[0].text, "\n    if n == 0:\n        ")
        XCTAssertEqual(cut[0].finishReason, .stopString("return"))
        XCTAssertEqual(cut[0].tokens.count, cut[0].modelLogProbs.count)
        let (short, _) = try generator.generate(prompt: prompt, samples: 1, parameters: SamplingParameters(maxNewTokens: 5))
        XCTAssertEqual(short[0].tokens.count, 5)
        XCTAssertEqual(short[0].finishReason, .length)
        // The chat reply ends with <|im_end|> (id 2) well within 200 tokens.
        let chat = template!.tokens([ChatMessage(.user, "Say hello.")], tokenizer: tok)
        let (reply, _) = try generator.generate(prompt: chat, samples: 1, parameters: SamplingParameters(maxNewTokens: 200))
        XCTAssertEqual(reply[0].finishReason, .stopToken(2))
        XCTAssertEqual(reply[0].tokens.last, 2)
        XCTAssertFalse(reply[0].text.contains("<|im_end|>"))
    }

    /// Several prompts generated as one batch give each prompt the programs it gets alone: the
    /// greedy ones token for token, sampled ones too (the same random streams; logits differ
    /// only in summation order). SmolLM2, fp32 cache.
    func testBatchedPromptsGiveWhatEachPromptGetsAlone() throws {
        let (model, tok, _) = try Shared.model()
        let generator = Generator(model: model, tokenizer: tok, kvPrecision: .f32)
        let prompts = ["def fibonacci(n):", "# Return the sum of a list\ndef total(xs):", "def is_prime(k):\n    \"\"\"True when k is prime.\"\"\""]
        var jobs: [Generator.Job] = []
        for (i, text) in prompts.enumerated() {
            let p = SamplingParameters(temperature: 0.8, topP: 0.95, seed: 100 + UInt64(i), maxNewTokens: 24 + 8 * i)
            jobs.append(Generator.Job(prompt: tok.encode(text), samples: 2, parameters: p, greedyBaseline: i != 1))
        }
        let (together, stats) = try generator.generate(jobs)
        XCTAssertEqual(together.map(\.count), [3, 2, 3])
        XCTAssertEqual(stats.promptTokens, jobs.map(\.prompt.count).reduce(0, +))
        var sampledEqual = 0, sampled = 0
        for (j, job) in jobs.enumerated() {
            let (alone, _) = try generator.generate(prompt: job.prompt, samples: job.samples, parameters: job.parameters,
                                                    greedyBaseline: job.greedyBaseline)
            XCTAssertEqual(together[j].map(\.greedy), alone.map(\.greedy))
            for (a, b) in zip(together[j], alone) {
                XCTAssertLessThanOrEqual(a.tokens.count, job.parameters.maxNewTokens)
                if a.greedy {
                    XCTAssertEqual(a.tokens, b.tokens, "prompt \(j): the greedy program differs when batched")
                    XCTAssertEqual(a.text, b.text)
                } else {
                    sampled += 1
                    if a.tokens == b.tokens { sampledEqual += 1 }
                }
                for (x, y) in zip(a.modelLogProbs, b.modelLogProbs) where a.tokens == b.tokens { XCTAssertEqual(x, y, accuracy: 1e-3) }
            }
        }
        // Sampling is a discrete choice on nearly equal logits: a rare flip is allowed, not a rule.
        XCTAssertGreaterThanOrEqual(sampledEqual, sampled - 1, "\(sampledEqual) of \(sampled) sampled programs equal")
    }
}
