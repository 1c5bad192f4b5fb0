import Foundation
import Pipeline
import Runtime
import XCTest
import ZeroMQ

/// Which keys each role takes from the configuration.
final class LinkSecurityTests: XCTestCase {
    func testRolesTakeTheirKeysAndARemoteSamplerTheHeadsPublicKey() throws {
        let dir = NSTemporaryDirectory() + "coderl-links-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let config = try PipelineConfig.load(files: [], assignments: ["run.dir=\(dir)/run"]).0
        try LinkSecurity.makeKeys(config)
        let head = try CurveKeyPair.read(file: config.keysPath + "/head.key")
        XCTAssertEqual(try CurveKeyPair.readPublicKey(file: config.keysPath + "/head.pub"), head.publicKey)
        let store = try LinkSecurity(config: config, role: .paramStore)
        XCTAssertEqual(store.serverKeys, head)
        XCTAssertEqual(store.learnerKey, try CurveKeyPair.read(file: config.keysPath + "/learner.key").publicKey)
        XCTAssertEqual(Set(store.clients.keys), [.params])
        XCTAssertEqual(store.clients[.params]?.keys.count, 3, "learner, labeler, local samplers")
        let labeler = try LinkSecurity(config: config, role: .labeler)
        XCTAssertEqual(Set(labeler.clients.keys), [.rollouts, .executors])
        XCTAssertEqual(labeler.clients[.executors]?.keys, [try CurveKeyPair.read(file: config.keysPath + "/local-executor.key").publicKey])
        let local = try LinkSecurity(config: config, role: .sampler)
        XCTAssertEqual(local.serverPublicKey, head.publicKey)
        XCTAssertEqual(local.clientKeys, try CurveKeyPair.read(file: config.keysPath + "/sampler.key"))
        XCTAssertNil(local.serverKeys)

        // A sampler on another machine: no keys directory of the run, the head's public key
        // and its own key file from the configuration.
        let remote = try PipelineConfig.load(files: [], assignments: [
            "run.dir=\(dir)/elsewhere", "security.server_key='\(head.publicKey)'", "security.key_file=\(dir)/mine.key",
        ]).0
        let joined = try LinkSecurity(config: remote, role: .sampler)
        XCTAssertEqual(joined.serverPublicKey, head.publicKey)
        XCTAssertEqual(joined.clientKeys, try CurveKeyPair.read(file: dir + "/mine.key"))
        // Without the head's key it says what to give.
        let lost = try PipelineConfig.load(files: [], assignments: ["run.dir=\(dir)/nowhere"]).0
        XCTAssertThrowsError(try LinkSecurity(config: lost, role: .sampler)) { error in
            XCTAssertTrue("\(error)".contains("security.server_key"), "\(error)")
        }
        // Off: plain TCP for every role.
        let plain = try PipelineConfig.load(files: [], assignments: ["run.dir=\(dir)/plain", "security.curve=false"]).0
        XCTAssertFalse(try LinkSecurity(config: plain, role: .labeler).isOn)
        XCTAssertNil(try LinkSecurity.localExecutor(plain))
    }
}
