import Foundation
import Schema

func temporaryDirectory(_ label: String) -> String {
    let path = NSTemporaryDirectory() + "coderl-\(label)-\(UUID().uuidString)"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func sampleRollout(problem: String, tokens: [UInt32]) -> Rollout {
    var rollout = Rollout()
    rollout.problemID = problem
    rollout.programTokens = tokens
    rollout.logprobs = tokens.map { -Float($0) / 100 }
    rollout.program = "print(\(tokens.count))"
    rollout.policyVersion = 3
    rollout.sampler = "sampler-1"
    return rollout
}
