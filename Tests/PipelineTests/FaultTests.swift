import CodeRL
import Foundation
import Ledger
import Llama
import ModelIO
import Schema
import Training
import TestSupport
import XCTest

/// The fault checks of the pipeline, on real processes started by `coderl run`: roles are
/// killed with SIGKILL at random moments; the run must finish with every rollout stored once,
/// labeled, and consumed once, and no execution scored as the model's failure because an
/// executor died.
final class FaultTests: XCTestCase {
    var dir: String!

    override func setUpWithError() throws {
        guard DefaultModel.isPresent else {
            throw XCTSkip("SmolLM2 GGUF not found at \(DefaultModel.path) (make model): these tests need its tokenizer")
        }
        dir = "/tmp/coderl-fault-\(UUID().uuidString.prefix(6))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() {
        if let dir { try? FileManager.default.removeItem(atPath: dir) }
    }

    func pipelineFile(steps: Int) throws -> String {
        let model = try writeTinyModel(to: dir + "/tiny.gguf")
        let path = dir + "/pipeline.yaml"
        try """
            run: {dir: \(dir!)/run, steps: \(steps), seed: 3}
            roles: {samplers: 2, executors: 2, executor_slots: 1, restart_backoff_ms: 200, restart_limit: 50}
            endpoints:
              params: ipc://\(dir!)/params
              announcements: ipc://\(dir!)/announce
              samples: ipc://\(dir!)/samples
              rollouts: ipc://\(dir!)/rollouts
              executors: ipc://\(dir!)/executors
            model: {actor: \(model), critic_layers: 1}
            data: {max_train_problems: 20, heldout_problems: 2}
            sampling: {samples_per_problem: 2, max_new_tokens: 8}
            training: {problems_per_step: 2, trained_layers: 1, learning_rate: 1.0e-3}
            execution: {heartbeat_timeout_ms: 1500, lease_ms: 4000, seconds_per_test: 2}
            """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Starts `coderl run` on a pipeline of `steps` steps; its output goes to `output`.
    func startRun(steps: Int, environment: [String: String] = [:]) throws -> (run: Process, output: String) {
        let pipeline = try pipelineFile(steps: steps)
        let run = Process()
        run.executableURL = productsDirectory.appendingPathComponent("coderl")
        run.arguments = ["run", pipeline]
        if !environment.isEmpty { run.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let output = dir + "/run.out"
        FileManager.default.createFile(atPath: output, contents: nil)
        run.standardOutput = FileHandle(forWritingAtPath: output)
        run.standardError = run.standardOutput
        try run.run()
        return (run, output)
    }

    func testKilledRolesAreRestartedAndNothingIsLostOrCountedTwice() throws {
        // Long enough that every kill lands while the run goes on (about 30 s on 2 cores).
        let steps = 80
        let (run, output) = try startRun(steps: steps)

        // Kill a random role every 0.5-1.5 s while the run goes on (each role at least once).
        // The schedule comes from a printed seed: CODERL_FAULT_SEED=S replays it.
        let seed = ProcessInfo.processInfo.environment["CODERL_FAULT_SEED"].flatMap { UInt64($0) } ?? UInt64.random(in: 1...999_999)
        print("fault schedule seed \(seed) (replay with CODERL_FAULT_SEED=\(seed))")
        var rng = Xoshiro256(seed: seed)
        var victims = ["executor-0", "sampler-0", "critic-labeler", "param-store", "learner", "executor-1", "sampler-1"]
        var killed: [String] = []
        let deadline = Date().addingTimeInterval(300)
        Thread.sleep(forTimeInterval: 3)
        while run.isRunning && Date() < deadline && killed.count < 10 {
            Thread.sleep(forTimeInterval: Double.random(in: 0.5...1.5, using: &rng))
            let role = victims.isEmpty ? ["executor-0", "sampler-0", "critic-labeler", "param-store", "learner"].randomElement(using: &rng)! : victims.removeFirst()
            guard let text = try? String(contentsOfFile: dir + "/run/pids/\(role).pid", encoding: .utf8), let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) else { continue }
            if kill(pid, SIGKILL) == 0 { killed.append(role) }
        }
        while run.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.2) }
        if run.isRunning { run.terminate(); run.waitUntilExit() }
        let log = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        XCTAssertEqual(run.terminationStatus, 0, "the run did not finish after killing \(killed) (fault schedule seed \(seed)):\n\(log.suffix(3000))")
        XCTAssertGreaterThanOrEqual(killed.count, 6, "killed: \(killed)")
        XCTAssertTrue(log.contains("restarted"), log)
        XCTAssertTrue(log.contains("held-out pass rate"), log)
        print("killed with SIGKILL: \(killed.joined(separator: ", "))")

        try assertRunWhole(steps: steps)
        XCTAssertEqual(Set(try trainRollouts().map { String($0.sampler.prefix(9)) }).count, 2, "both samplers contributed (fault schedule seed \(seed))")
    }

    func trainRollouts() throws -> [Rollout] {
        var all: [Rollout] = []
        try Ledger.openForReading(path: dir + "/run/ledger").scanRollouts { all.append($0); return true }
        return all.filter { $0.purpose == "train" }
    }

    /// What a run that finished must hold whatever was killed during it: every request's
    /// rollouts stored once, exactly `steps` steps of groups consumed in ledger order, each
    /// judged by an executor and labeled, and the learner's position at the last step.
    func assertRunWhole(steps: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        let ledger = try Ledger.openForReading(path: dir + "/run/ledger")
        var all: [Rollout] = []
        try ledger.scanRollouts { all.append($0); return true }
        let train = all.filter { $0.purpose == "train" }
        for (request, members) in Dictionary(grouping: train, by: \.requestID) {
            XCTAssertEqual(members.map(\.sampleIndex).sorted(), [0, 1, 2], "request \(request)", file: file, line: line)
        }
        let consumed = train.filter { $0.state == .consumed }
        XCTAssertEqual(consumed.count, steps * 2 * 3, file: file, line: line)
        XCTAssertEqual(consumed.map(\.sequence), train.prefix(steps * 2 * 3).map(\.sequence), "consumed rollouts are the first groups, each once",
                       file: file, line: line)
        for r in all {
            XCTAssertTrue(r.state == .labeled || r.state == .consumed || r.state == .generated || r.state == .executed, "\(r.sequence)",
                          file: file, line: line)
        }
        for r in consumed {
            XCTAssertNotEqual(r.verdict.outcome, .unspecified, "rollout \(r.sequence) was not judged: \(r.verdict.errorMessage)", file: file, line: line)
            XCTAssertFalse(r.verdict.executor.isEmpty, file: file, line: line)
            XCTAssertEqual(r.reward, Rewards.reward(r.verdict.outcome), file: file, line: line)
        }
        XCTAssertEqual(try XCTUnwrap(try ledger.runMetadata()).learnerStep, UInt64(steps), file: file, line: line)
    }

    /// Kills at the three moments of the weight path where a half-done write could be taken
    /// for a whole one, each reached on purpose (`CODERL_FAILPOINTS` pauses the role there):
    /// the learner after a checkpoint's files are written (on its writer thread, while the
    /// next steps train) and before `latest` names them; the param-store after it made a whole
    /// version from a delta over its oldest version and before it checked and registered it;
    /// a sampler after it read a new version's changed tensors into its model in place and
    /// before it packed them and recorded the version. Each is SIGKILLed while paused there;
    /// the run must finish whole, the learner resuming from the checkpoint before.
    func testKillsMidCheckpointMidDeltaAndMidApplyLeaveTheRunWhole() throws {
        let steps = 30
        // The learner's second checkpoint is its first periodic one (step 10), written while
        // step 11 trains; the store's third delta; a sampler's second version applied in place.
        let (run, output) = try startRun(steps: steps, environment: [
            "CODERL_FAILPOINTS": "checkpoint-written=6000@2,delta-materialized=6000@3,weights-applying=6000@2",
        ])

        let targets = ["learner": "checkpoint-written", "param-store": "delta-materialized", "sampler-0": "weights-applying"]
        var killedAt: [String: String] = [:]
        let deadline = Date().addingTimeInterval(300)
        while run.isRunning && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.05)
            for (role, failpoint) in targets where killedAt[role] == nil {
                let log = (try? String(contentsOfFile: dir + "/run/logs/\(role).log", encoding: .utf8)) ?? ""
                guard let line = log.split(separator: "\n").first(where: { $0.contains("failpoint \(failpoint) reached") }),
                      let text = try? String(contentsOfFile: dir + "/run/pids/\(role).pid", encoding: .utf8),
                      let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), kill(pid, SIGKILL) == 0 else { continue }
                killedAt[role] = String(line)
            }
        }
        if run.isRunning { run.terminate(); run.waitUntilExit() }
        let log = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        XCTAssertEqual(run.terminationStatus, 0, "the run did not finish after the kills \(killedAt):\n\(log.suffix(3000))")
        XCTAssertEqual(Set(killedAt.keys), Set(targets.keys), "each role was killed at its failpoint: \(killedAt)")
        print("killed at failpoints:\n" + killedAt.values.sorted().joined(separator: "\n"))
        try assertRunWhole(steps: steps)

        // The checkpoint being written when the learner died is not the one it resumed from.
        let learnerLog = try String(contentsOfFile: dir + "/run/logs/learner.log", encoding: .utf8)
        XCTAssertTrue(killedAt["learner"]?.contains("(step-000010)") ?? false, killedAt["learner"] ?? "")
        XCTAssertTrue(learnerLog.contains("/learner/step-000000: step 0"), "resumed from the checkpoint before step 10:\n\(learnerLog.suffix(3000))")
        // The param-store came back without the version it had not registered; the learner
        // published it again.
        let storeLog = try String(contentsOfFile: dir + "/run/logs/param-store.log", encoding: .utf8)
        let starts = storeLog.split(separator: "\n").filter { $0.contains("versions on disk: ") }
        XCTAssertGreaterThanOrEqual(starts.count, 2, "the log of the store killed is kept, then its successor's:\n\(storeLog)")
        // "failpoint delta-materialized reached (actor v7): ..." and, after the restart,
        // "versions on disk: actor 0,5,6; critic 0,5,6".
        let detail = try XCTUnwrap(killedAt["param-store"]?.components(separatedBy: "reached (").last?.split(separator: ")").first)
        let parts = detail.split(separator: " ")
        let model = String(parts[0]), version = String(parts[1].dropFirst())
        let listed = try XCTUnwrap(starts.dropFirst().first?.components(separatedBy: "versions on disk: ").last?.split(separator: ";")
            .first { $0.trimmingCharacters(in: .whitespaces).hasPrefix(model + " ") })
        XCTAssertFalse(listed.split(separator: " ").last!.split(separator: ",").contains(Substring(version)),
                       "\(model) v\(version) was not registered before the kill, so the restarted store does not serve it: \(listed)")
        // The restarted sampler loaded a whole version instead of trusting a half-applied one.
        let samplerLog = try String(contentsOfFile: dir + "/run/logs/sampler-0.log", encoding: .utf8)
        let afterKill = samplerLog.components(separatedBy: "failpoint weights-applying reached").dropFirst().joined()
        XCTAssertTrue(afterKill.contains("loaded actor v"), samplerLog.suffix(3000).description)
    }

    /// SIGTERM to `coderl run` mid-run: every role is gone, the ledger opens and holds only
    /// whole requests, and running the same command again finishes the run.
    func testSigtermStopsEveryProcessAndTheRunResumes() throws {
        let pipeline = try pipelineFile(steps: 30)
        let output = dir + "/run.out"
        FileManager.default.createFile(atPath: output, contents: nil)
        func start() throws -> Process {
            let run = Process()
            run.executableURL = productsDirectory.appendingPathComponent("coderl")
            run.arguments = ["run", pipeline]
            run.standardOutput = FileHandle(forWritingAtPath: output)
            run.standardError = run.standardOutput
            try run.run()
            return run
        }
        let run = try start()
        var pids: [Int32] = []
        let until = Date().addingTimeInterval(60)
        while Date() < until {
            Thread.sleep(forTimeInterval: 0.5)
            let names = (try? FileManager.default.contentsOfDirectory(atPath: dir + "/run/pids")) ?? []
            pids = names.compactMap { try? String(contentsOfFile: dir + "/run/pids/" + $0, encoding: .utf8) }.compactMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            if pids.count == 7, (try? Ledger.openForReading(path: dir + "/run/ledger").lastSequence()) ?? 0 > 10 { break }
        }
        XCTAssertEqual(pids.count, 7, "all roles started")
        kill(run.processIdentifier, SIGTERM)
        let stopBy = Date().addingTimeInterval(30)
        while run.isRunning && Date() < stopBy { Thread.sleep(forTimeInterval: 0.1) }
        XCTAssertFalse(run.isRunning)
        if run.isRunning { run.terminate(); return XCTFail("coderl run did not stop within 30 s of SIGTERM") }
        XCTAssertEqual(run.terminationStatus, 1, "a stopped run says it did not finish")
        for pid in pids { XCTAssertNotEqual(kill(pid, 0), 0, "process \(pid) outlived the run") }
        var requests: [String: Int] = [:]
        try Ledger.openForReading(path: dir + "/run/ledger").scanRollouts { r in
            if r.purpose == "train" { requests[r.requestID, default: 0] += 1 }
            return true
        }
        XCTAssertTrue(requests.values.allSatisfy { $0 == 3 }, "\(requests)")
        // The learner finished the step it was in and checkpointed: no finished step is lost
        // (the periodic checkpoints alone come every 10 versions).
        let learner = dir + "/run/learner"
        let finished = ((try? String(contentsOfFile: learner + "/progress.jsonl", encoding: .utf8)) ?? "").split(separator: "\n").count
        let latest = try String(contentsOfFile: learner + "/latest", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(latest, String(format: "step-%06d", finished), "the checkpoint after SIGTERM holds every finished step")
        let again = try start()
        let deadline = Date().addingTimeInterval(240)
        while again.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.2) }
        if again.isRunning { again.terminate(); return XCTFail("the resumed run did not finish within 240 s (see \(dir!)/run/logs)") }
        XCTAssertEqual(again.terminationStatus, 0)
        XCTAssertEqual(try Ledger.openForReading(path: dir + "/run/ledger").runMetadata()?.learnerStep, 30)
        // The finished run names its trained actor and the command that exports it, which
        // takes the run directory.
        let said = try String(contentsOfFile: output, encoding: .utf8)
        let versions = try FileManager.default.contentsOfDirectory(atPath: dir + "/run/weights/actor").compactMap { name -> Int? in
            name.hasSuffix(".safetensors") ? Int(name.dropFirst().dropLast(12)) : nil
        }
        let last = try XCTUnwrap(versions.max())
        let path = dir + "/run/weights/actor/" + String(format: "v%06d.safetensors", last)
        XCTAssertTrue(said.contains("[run] trained actor: v\(last) in \(path)"), String(said.suffix(2000)))
        XCTAssertTrue(said.contains("coderl export --checkpoint \(dir!)/run --format gguf"), String(said.suffix(2000)))
        let export = try runProduct(["export", "--checkpoint", dir + "/run", "--format", "gguf", "--out", dir + "/actor.gguf"])
        XCTAssertEqual(export.status, 0, export.output)
        XCTAssertTrue(export.output.contains("actor v\(last)"), export.output)
        let exported = try LoadedModel.load(dir + "/actor.gguf")
        let trained = try LoadedModel.load(path)
        XCTAssertEqual(Array(UnsafeBufferPointer(start: exported.weights.buffer.pointer, count: exported.weights.buffer.count)),
                       Array(UnsafeBufferPointer(start: trained.weights.buffer.pointer, count: trained.weights.buffer.count)))
        XCTAssertNotNil(exported.tokenizerPath, "the GGUF carries the run's tokenizer")
    }
}
