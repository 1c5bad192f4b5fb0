import Foundation
import ModelIO
import XCTest

enum TestFiles {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func temporary(_ name: String) -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("coderl-tests-\(getpid())")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.appendingPathComponent(name).path
    }

    static func write(_ bytes: [UInt8], _ name: String) throws -> String {
        let path = temporary(name)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// The default model, or a skip that says loudly how to get it.
    static func defaultModel() throws -> String {
        guard DefaultModel.isPresent else {
            print("SKIPPED: default model absent at \(DefaultModel.path); run `make setup` to fetch it")
            throw XCTSkip("default model absent at \(DefaultModel.path); run `make setup`")
        }
        return DefaultModel.path
    }
}
