import Foundation
import Schema

func temporaryDirectory(_ label: String) -> String {
    let path = NSTemporaryDirectory() + "coderl-\(label)-\(UUID().uuidString)"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// The folder holding the test bundle, where SwiftPM also puts the package's executables.
func productsDirectory() -> URL {
    var url = Bundle.main.bundleURL
    for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
        url = bundle.bundleURL.deletingLastPathComponent()
    }
    return url
}

/// Runs a program to completion and returns its exit status and standard output.
@discardableResult
func runTool(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
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
