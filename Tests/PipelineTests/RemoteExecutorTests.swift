import Foundation
import Ledger
import ModelIO
import Pipeline
import Schema
import TestSupport
import XCTest
import ZeroMQ

/// Executors on another host join a running pipeline over CURVE: two network namespaces
/// joined by a veth pair stand in for the head machine and an executor machine. The head runs
/// `coderl run` with no local executor; an executor whose key is not on the allow-list is
/// refused (and the run cannot progress), one whose key is listed does all the work.
final class RemoteExecutorTests: XCTestCase {
    var dir: String!
    var id = String(UUID().uuidString.prefix(4)).lowercased()
    var head: String { "crlh\(id)" }
    var node: String { "crle\(id)" }
    var processes: [Process] = []

    @discardableResult
    func sh(_ command: String) throws -> (Int32, String) {
        let result = try runProcess("/bin/sh", ["-c", command])
        return (result.status, result.output)
    }

    override func setUpWithError() throws {
        guard DefaultModel.isPresent else { throw XCTSkip("SmolLM2 GGUF not found at \(DefaultModel.path) (make model): needed for its tokenizer") }
        guard getuid() == 0 else { throw XCTSkip("network namespaces need root") }
        let (status, out) = try sh("ip netns add \(head) && ip netns add \(node)")
        guard status == 0 else { throw XCTSkip("ip netns is not available here: \(out)") }
        try XCTAssertEqual(sh("""
            ip link add v\(id)h type veth peer name v\(id)e && \
            ip link set v\(id)h netns \(head) && ip link set v\(id)e netns \(node) && \
            ip -n \(head) addr add 10.231.7.1/24 dev v\(id)h && ip -n \(node) addr add 10.231.7.2/24 dev v\(id)e && \
            ip -n \(head) link set v\(id)h up && ip -n \(node) link set v\(id)e up && \
            ip -n \(head) link set lo up && ip -n \(node) link set lo up
            """).0, 0)
        dir = "/tmp/coderl-netns-\(id)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() {
        for p in processes where p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
        _ = try? sh("ip netns del \(head); ip netns del \(node)")
        if let dir { try? FileManager.default.removeItem(atPath: dir) }
    }

    func start(_ namespace: String, _ arguments: [String], log: String) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        p.arguments = ["netns", "exec", namespace] + arguments
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        p.standardOutput = FileHandle(forWritingAtPath: log)
        p.standardError = p.standardOutput
        try p.run()
        processes.append(p)
        return p
    }

    func testAnExecutorOnAnotherHostJoinsWithAListedCurveKeyOnly() throws {
        let model = try writeTinyModel(to: dir + "/tiny.gguf")
        let bin = productsDirectory.path, executor = productPath("coderl-executor")
        guard FileManager.default.isExecutableFile(atPath: executor) else { return XCTFail("\(executor) is missing: `swift build` builds it with the tests") }
        // The executor host's keys: one listed, one not.
        let listed = try CurveKeyPair.loadOrCreate(file: dir + "/listed.key")
        _ = try CurveKeyPair.loadOrCreate(file: dir + "/unlisted.key")
        try "# executors allowed to join\n\(listed.publicKey)\n".write(toFile: dir + "/allowed", atomically: true, encoding: .utf8)
        let pipeline = dir + "/pipeline.yaml"
        try """
            run: {dir: \(dir!)/run, steps: 2}
            roles: {samplers: 1, executors: 0}
            endpoints:
              params: tcp://10.231.7.1:5801
              announcements: tcp://10.231.7.1:5802
              samples: tcp://10.231.7.1:5803
              rollouts: tcp://10.231.7.1:5804
              executors: tcp://10.231.7.1:5805
              executor_key_file: \(dir!)/head.key
              executor_allow: \(dir!)/allowed
            model: {actor: \(model), critic_layers: 1}
            data: {max_train_problems: 4, heldout_problems: 0}
            sampling: {samples_per_problem: 2, max_new_tokens: 8}
            training: {problems_per_step: 2, trained_layers: 1}
            """.write(toFile: pipeline, atomically: true, encoding: .utf8)
        let serverKey = try CurveKeyPair.loadOrCreate(file: dir + "/head.key").publicKey
        let run = try start(head, [bin + "/coderl", "run", pipeline], log: dir + "/run.log")

        // An executor with a key the head does not list: refused, so nothing gets executed.
        let intruder = try start(node, [executor, "--connect", "tcp://10.231.7.1:5805", "--server-key=\(serverKey)",
                                        "--key-file", dir + "/unlisted.key", "--name", "intruder", "--slots", "1"], log: dir + "/intruder.log")
        let labelerLog = dir + "/run/logs/critic-labeler.log"
        var refused = false
        for _ in 0..<100 where !refused {
            Thread.sleep(forTimeInterval: 0.2)
            refused = ((try? String(contentsOfFile: labelerLog, encoding: .utf8)) ?? "").contains("is not on the allow-list")
        }
        XCTAssertTrue(refused, "the labeler did not log a refusal")
        Thread.sleep(forTimeInterval: 2)
        XCTAssertTrue(run.isRunning, "the run cannot finish without an accepted executor")
        intruder.terminate()
        let stopBy = Date().addingTimeInterval(15)
        while intruder.isRunning && Date() < stopBy { Thread.sleep(forTimeInterval: 0.1) }
        XCTAssertFalse(intruder.isRunning, "a refused executor must still stop on SIGTERM")

        // The listed executor joins from the other namespace and does all the work.
        let worker = try start(node, [executor, "--connect", "tcp://10.231.7.1:5805", "--server-key=\(serverKey)",
                                      "--key-file", dir + "/listed.key", "--name", "remote-1", "--slots", "2"], log: dir + "/remote.log")
        let deadline = Date().addingTimeInterval(180)
        while run.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.2) }
        let log = (try? String(contentsOfFile: dir + "/run.log", encoding: .utf8)) ?? ""
        // (A process still running has no exit status to read: tearDown kills it.)
        guard !run.isRunning else { return XCTFail("the run did not finish: \(log.suffix(2000))") }
        XCTAssertEqual(run.terminationStatus, 0, log.suffix(2000).description)
        worker.terminate()
        let ledger = try Ledger.openForReading(path: dir + "/run/ledger")
        var executors = Set<String>()
        var count = 0
        try ledger.scanRollouts { r in
            // Rollouts sampled ahead for a step the run did not reach have no verdict yet.
            guard [.executed, .labeled, .consumed].contains(r.state) else { return true }
            count += 1
            executors.insert(r.verdict.executor)
            return true
        }
        XCTAssertGreaterThanOrEqual(count, 2 * 2 * 3)
        XCTAssertEqual(executors, ["remote-1"], "every verdict came from the executor on the other host")
    }
}
