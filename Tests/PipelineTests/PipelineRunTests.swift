import CodeRL
import Execution
import ExecutorService
import Foundation
import Ledger
import Llama
import Optim
import ModelIO
import Pipeline
import Runtime
import Schema
import Synchronization
import Tensor
import Training
import Wire
import TestSupport
import XCTest
import ZeroMQ

/// The whole pipeline in one process on a tiny random model (with SmolLM2's tokenizer):
/// param-store, critic-labeler, an executor, a sampler and the learner, each on its own thread
/// and talking over ZeroMQ exactly as the processes do.
final class PipelineRunTests: XCTestCase {
    var dir: String!
    var threads: [Thread] = []
    var stops: [() -> Void] = []

    override func setUpWithError() throws {
        guard DefaultModel.isPresent else {
            throw XCTSkip("SmolLM2 GGUF not found at \(DefaultModel.path) (make model): these tests need its tokenizer")
        }
        Telemetry.start()
        dir = NSTemporaryDirectory() + "coderl-pipeline-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() {
        for stop in stops { stop() }
        for t in threads { while t.isExecuting { Thread.sleep(forTimeInterval: 0.01) } }
        try? FileManager.default.removeItem(atPath: dir)
    }

    func tinyModel() throws -> String { try writeTinyModel(to: dir + "/tiny.gguf") }

    func config(steps: Int, extra: [String] = []) throws -> PipelineConfig {
        try PipelineConfig.load(files: [], assignments: assignments(steps: steps, extra: extra)).0
    }

    /// The `--set` assignments of `config(steps:extra:)`.
    func assignments(steps: Int, extra: [String] = []) -> [String] {
        let ipc = "ipc://\(dir!)/"
        return [
            "run.dir=\(dir!)/run", "run.steps=\(steps)", "model.actor=\(dir!)/tiny.gguf", "model.critic_layers=1",
            "data.max_train_problems=6", "data.heldout_problems=2",
            "sampling.samples_per_problem=2", "sampling.max_new_tokens=8",
            "training.problems_per_step=2", "training.trained_layers=1", "training.micro_batch=4",
            "training.learning_rate=1e-3",
            "endpoints.params=\(ipc)params", "endpoints.announcements=\(ipc)announce", "endpoints.samples=\(ipc)samples",
            "endpoints.rollouts=\(ipc)rollouts", "endpoints.executors=\(ipc)executors",
            "execution.heartbeat_timeout_ms=3000", "execution.seconds_per_test=2",
        ] + extra
    }

    func spawn(_ name: String, _ body: @escaping @Sendable () throws -> Void) {
        let t = Thread {
            do { try body() } catch { print("[\(name)] failed: \(error)") }
        }
        t.start()
        threads.append(t)
    }

    /// Starts every role but the learner; the sampler's log lines go to `samplerLog` too.
    func startRoles(_ config: PipelineConfig, ledger: Ledger, samplerLog: (@Sendable (String) -> Void)? = nil,
                    serverLog: (@Sendable (String) -> Void)? = nil) throws {
        func log(_ role: String) -> Log { serverLog.map { sink in Log(role: role, instance: "t", sink: sink) } ?? Log(role: role, instance: "t") }
        var storeSettings = ParamStore.Settings(directory: config.weightsPath, endpoint: config.endpoints.params,
                                                announceEndpoint: config.endpoints.announcements)
        storeSettings.keepVersions = 10
        storeSettings.security = try LinkSecurity(config: config, role: .paramStore)
        let store = try ParamStore(settings: storeSettings, log: log("param-store"))
        if store.manifest(model: "actor", version: 0) == nil {
            try store.register(model: "actor", version: 0, file: try Setup.actorPath(config), link: true)
            try store.register(model: "tokenizer", version: 0, file: try Setup.tokenizerPath(config), link: true)
        }
        let storeBox = UncheckedBox(store)
        spawn("param-store") { try storeBox.value.run() }
        stops.append { store.stop() }

        var ls = LabelerService.Settings(config: config)
        ls.cacheDirectory = dir + "/cache/labeler"
        ls.security = try LinkSecurity(config: config, role: .labeler)
        let labeler = try LabelerService(settings: ls, log: log("critic-labeler"), ledger: ledger)
        let labelerBox = UncheckedBox(labeler)
        spawn("critic-labeler") { try labelerBox.value.run() }
        stops.append { labeler.stop() }

        let executor = try Executor(slots: 2, name: "test-executor")
        var es = ExecutorWorker.Settings(endpoint: config.endpoints.executors, name: "executor-t")
        es.heartbeatInterval = .milliseconds(200)
        if let local = try LinkSecurity.localExecutor(config) {
            es.serverKey = local.serverKey
            es.keys = try CurveKeyPair.read(file: local.keyFile)
        }
        let worker = try ExecutorWorker(settings: es, executor: executor, log: { _ in })
        let workerBox = UncheckedBox(worker)
        spawn("executor") { try workerBox.value.run() }
        stops.append { worker.stop() }

        let sampler = SamplerService(settings: try .init(config: config, name: "sampler-t", cacheDirectory: dir + "/cache/sampler"),
                                     log: samplerLog.map { sink in Log(role: "sampler", instance: "t", sink: sink) }
                                         ?? Log(role: "sampler", instance: "t"))
        let samplerBox = UncheckedBox(sampler)
        spawn("sampler") { try samplerBox.value.run() }
        stops.append { sampler.stop() }
    }

    func testPipelineLabelsTrainsPublishesAndResumes() throws {
        _ = try tinyModel()
        let first = try config(steps: 2)
        let ledger = try Ledger(path: first.ledgerPath)
        _ = try Setup.importData(first, into: ledger)
        let samplerLines = Mutex<[String]>([])
        try startRoles(first, ledger: ledger, samplerLog: { line in samplerLines.withLock { $0.append(line) } })

        var lines: [String] = []
        let learner = try LearnerService(config: first, log: Log(role: "learner", instance: "t"), ledger: ledger) { lines.append($0) }
        let summary = try learner.run()
        // v1 is loaded whole (v0 is the GGUF); v2 arrives as a delta and is applied in place.
        XCTAssertTrue(samplerLines.withLock { $0 }.contains { $0.contains("applied actor v2 over v1 in place") },
                      samplerLines.withLock { $0 }.joined(separator: "\n"))
        XCTAssertEqual(lines.filter { $0.hasPrefix("step ") }.count, 2, "\(lines)")
        XCTAssertTrue(summary.contains("held-out pass rate (greedy): before"), summary)
        XCTAssertEqual(learner.state.step, 2)
        XCTAssertEqual(learner.state.version, 2)

        // Every labeled rollout carries CodeRL's reward and a return relative to its group's greedy program.
        var all: [Rollout] = []
        try ledger.scanRollouts { all.append($0); return true }
        let labeled = all.filter { $0.state == .labeled || $0.state == .consumed }
        XCTAssertGreaterThanOrEqual(labeled.filter { $0.purpose == "train" }.count, 2 * 2 * 3)
        let groups = Dictionary(grouping: labeled.filter { $0.purpose == "train" }, by: \.requestID)
        for (request, members) in groups {
            XCTAssertEqual(members.count, 3, "request \(request): 2 samples and the greedy baseline")
            let greedy = try XCTUnwrap(members.first { $0.baseline })
            for r in members {
                XCTAssertNotEqual(r.verdict.outcome, .unspecified)
                XCTAssertEqual(r.reward, Rewards.reward(r.verdict.outcome))
                XCTAssertEqual(r.advantage, r.baseline ? 0 : r.reward - greedy.reward, accuracy: 1e-6)
                if !r.baseline {
                    XCTAssertEqual(r.criticWeights.count, r.programTokens.count)
                    XCTAssertTrue(r.criticWeights.allSatisfy { $0 > 0 && $0 < 1 })
                }
            }
            XCTAssertEqual(Set(members.map(\.sampleIndex)).count, 3, "no sample stored twice")
        }
        let evals = labeled.filter { $0.purpose == "eval" }
        XCTAssertEqual(evals.count, 4, "2 held-out problems before and after")
        XCTAssertTrue(evals.allSatisfy { $0.baseline })
        let consumed = all.filter { $0.state == .consumed }
        XCTAssertEqual(consumed.count, 2 * 2 * 3)
        let position = learner.state.position
        XCTAssertEqual(consumed.map(\.sequence).max(), position - UInt64(all.filter { $0.sequence <= position && $0.purpose == "eval" && $0.sequence > consumed.map(\.sequence).max()! }.count))
        XCTAssertEqual(try ledger.runMetadata()?.learnerStep, 2)

        // Every role's metrics, as a Prometheus scrape of this process shows them (the
        // registry is per process: other tests may have added to the counters).
        let server = try MetricsServer(host: "127.0.0.1", port: 0)
        defer { server.stop() }
        let scrape = try httpGet(port: server.port, raw: "GET /metrics HTTP/1.1\r\n\r\n").body
        XCTAssertGreaterThanOrEqual(metricValue(scrape, "coderl_rollouts_labeled_total") ?? 0, Double(labeled.count), scrape)
        // A program the labeler judged before is answered from its verdict cache, not run again.
        let cached = metricValue(scrape, "coderl_verdict_cache_hits_total") ?? 0
        XCTAssertGreaterThanOrEqual((metricValue(scrape, "coderl_executions_total") ?? 0) + cached, Double(labeled.count))
        XCTAssertGreaterThanOrEqual((metricValue(scrape, "coderl_execution_seconds_count") ?? 0) + cached, Double(labeled.count))
        XCTAssertGreaterThanOrEqual((metricValue(scrape, "coderl_executor_jobs_total") ?? 0) + cached, Double(labeled.count))
        XCTAssertGreaterThanOrEqual(metricValue(scrape, "coderl_sampler_programs_total") ?? 0, Double(all.count))
        XCTAssertGreaterThanOrEqual(metricValue(scrape, "coderl_weight_fetch_seconds_count", ["model": "actor"]) ?? 0, 1)
        XCTAssertGreaterThanOrEqual(metricValue(scrape, "coderl_weight_chunks_served_total") ?? 0, 1)
        XCTAssertGreaterThanOrEqual(metricValue(scrape, "coderl_learner_step_seconds_count") ?? 0, 2)
        XCTAssertGreaterThanOrEqual(metricValue(scrape, "coderl_outcomes_total") ?? 0, Double(2 * 2 * 3))
        XCTAssertNotNil(metricValue(scrape, "coderl_loss", ["term": "critic"]))
        XCTAssertNotNil(metricValue(scrape, "coderl_critic_calibration_error"))
        XCTAssertNotNil(metricValue(scrape, "coderl_pass_rate"))
        XCTAssertNotNil(metricValue(scrape, "coderl_execution_queue_depth"))
        XCTAssertGreaterThanOrEqual(metricValue(scrape, "coderl_policy_lag_count") ?? 0, 1)

        // Versions 0..2 of actor and critic were published (version files kept by the store).
        for model in ["actor", "critic"] {
            let files = try FileManager.default.contentsOfDirectory(atPath: first.weightsPath + "/" + model).filter { $0.hasSuffix(".manifest") }.sorted()
            XCTAssertEqual(files, ["v000000.manifest", "v000001.manifest", "v000002.manifest"], model)
        }

        // A new learner resumes from the checkpoint: one more step on rollouts it has not used.
        let second = try config(steps: 3)
        let resumed = try LearnerService(config: second, log: Log(role: "learner", instance: "t2"), ledger: ledger) { lines.append($0) }
        _ = try resumed.run()
        XCTAssertEqual(resumed.state.step, 3)
        XCTAssertEqual(resumed.state.version, 3)
        var after: [Rollout] = []
        try ledger.scanRollouts { after.append($0); return true }
        let newlyConsumed = after.filter { $0.state == .consumed && !consumed.map(\.sequence).contains($0.sequence) }
        XCTAssertEqual(newlyConsumed.count, 2 * 3)
        XCTAssertTrue(newlyConsumed.allSatisfy { $0.sequence > position }, "the resumed learner starts after its checkpointed position")

        // Replay: a learner trained from the stored rollouts alone reproduces the online
        // learner's weights bit for bit, and two replays agree.
        var hashes: [String] = []
        for i in 0..<2 {
            var replayConfig = try config(steps: 2, extra: ["run.dir=\(dir!)/replay-\(i)"])
            replayConfig.run.directory = dir + "/replay-\(i)"
            let replayer = try LearnerService(config: replayConfig, log: Log(role: "replay", instance: "\(i)"), ledger: ledger) { _ in }
            let result = try replayer.replay()
            XCTAssertEqual(result.steps, 2)
            hashes.append(result.actorSHA256)
        }
        XCTAssertEqual(hashes[0], hashes[1])
        // `coderl replay` on one thread and on three (another machine's core count) gives the
        // same weights as this process on all cores: no sum's order depends on the thread count.
        for threads in [1, 3] {
            let (status, output) = try runProduct(["replay", "--ledger", first.ledgerPath, "--out", dir + "/replay-threads-\(threads)"]
                                                  + assignments(steps: 2).flatMap { ["--set", $0] }, threads: threads)
            XCTAssertEqual(status, 0, output)
            XCTAssertTrue(output.contains("actor  sha256 \(hashes[0])"), "replay on \(threads) thread(s):\n\(output)")
        }
        XCTAssertEqual(try differingTensors(first.weightsPath + "/actor/v000002.safetensors",
                                            dir + "/replay-0/learner/step-000002/replayed-actor.safetensors"), [],
                       "replayed tensors differ from the online learner's version 2")
    }
}

extension PipelineRunTests {
    /// Every server socket of the pipeline is CURVE with a per-link allow-list: a plain
    /// client and a client with an unlisted key get nothing (and are logged), whatever they
    /// send; an oversized frame drops its sender. A listed client that sends garbage and bodies
    /// a role does not take gets an ErrorReply (or is dropped when it cannot even be
    /// attributed), and every role goes on working. Nothing any of them sent reaches the ledger.
    func testHostileMessagesAreRejectedAndTheRolesGoOn() throws {
        _ = try tinyModel()
        let cfg = try config(steps: 1)
        let ledger = try Ledger(path: cfg.ledgerPath)
        _ = try Setup.importData(cfg, into: ledger)
        let serverLines = Mutex<[String]>([])
        try startRoles(cfg, ledger: ledger, serverLog: { line in serverLines.withLock { $0.append(line) } })

        let context = try Context()
        defer { context.shutdown() }
        let head = try CurveKeyPair.read(file: cfg.keysPath + "/head.key").publicKey
        let listed = try CurveKeyPair.read(file: cfg.keysPath + "/sampler.key")
        let unlisted = try CurveKeyPair.generate()
        func peer(_ endpoint: String, _ keys: CurveKeyPair?, type: SocketType = .dealer) throws -> Socket {
            let s = try Socket(context, type)
            try s.setLinger(.zero)
            if let keys { try s.makeCurveClient(keys: keys, serverKey: head) }
            if type == .sub { try s.subscribe() }
            try s.connect(endpoint)
            return s
        }
        func reply(_ s: Socket, wait: Duration = .seconds(5)) throws -> ErrorReply? {
            guard try s.waitForMessage(timeout: wait) else { return nil }
            guard case .message(_, let m)? = try s.receiveMessage(router: false), case .error(let e) = m.body else { return nil }
            return e
        }
        let garbage: [[UInt8]] = [[0xff, 0x00, 0x13, 0x37]]
        let forgedRollouts = try WireCodec.encode(.rollouts(RolloutBatch.with {
            $0.requestID = "forged"
            $0.rollouts = [Rollout.with { $0.problemID = "nope/1"; $0.programTokens = [1]; $0.logprobs = [-1] }]
        }), id: "h3", sender: "hostile")
        let forgedVerdict = try WireCodec.encode(.result(ExecutionResult.with { $0.jobID = "r1"; $0.verdict = Verdict.with { $0.outcome = .passed } }), id: "h4", sender: "hostile")
        let forgedWork = try WireCodec.encode(.workRequest(WorkRequest.with { $0.worker = "hostile"; $0.capacity = 4 }), id: "h5", sender: "hostile")
        let manifestRequest = try WireCodec.encode(.weightRequest(WeightRequest.with { $0.model = "actor"; $0.version = 0; $0.manifest = true }), id: "h6", sender: "hostile")

        // Plain clients and unlisted keys: on every link, nothing comes back, whatever is sent
        // (weights, sample requests, execution jobs, announcements).
        var hostile: [(String, String, Socket)] = []
        for (who, keys) in [("plain", nil as CurveKeyPair?), ("unlisted", unlisted)] {
            var sockets: [Socket] = []
            for endpoint in [cfg.endpoints.params, cfg.endpoints.samples, cfg.endpoints.rollouts, cfg.endpoints.executors] {
                let s = try peer(endpoint, keys)
                for message in [garbage, manifestRequest, forgedWork, forgedRollouts, forgedVerdict] { try s.send(message) }
                sockets.append(s)
            }
            let announcements = try peer(cfg.endpoints.announcements, keys, type: .sub)
            for (s, endpoint) in zip(sockets, ["params", "samples", "rollouts", "executors"]) {
                XCTAssertFalse(try s.waitForMessage(timeout: .milliseconds(endpoint == "params" ? 1500 : 300)), "a \(who) client got an answer on \(endpoint)")
                hostile.append((who, endpoint, s))
            }
            XCTAssertFalse(try announcements.waitForMessage(timeout: .seconds(4)), "a \(who) subscriber heard an announcement")
        }
        let refusals = serverLines.withLock { $0.filter { $0.contains("refused") } }
        // libzmq reports a plain client as a mechanism mismatch, or (when the client's side closes
        // first) as a failed handshake with the system error: both are logged by link.
        XCTAssertTrue(refusals.contains { $0.contains("refused a client of link") && $0.contains("in the handshake") }, "plain clients are logged: \(refusals)")
        XCTAssertTrue(refusals.contains { $0.contains(unlisted.publicKey) && $0.contains("not on the allow-list") }, "unlisted keys are logged: \(refusals)")
        // The same subscription with a listed key hears the param-store's announcements.
        let listening = try peer(cfg.endpoints.announcements, listed, type: .sub)
        XCTAssertTrue(try listening.waitForMessage(timeout: .seconds(8)), "a listed subscriber hears announcements")

        // A listed client (a sampler's key) is answered, but only within what its role may do.
        let params = try peer(cfg.endpoints.params, listed)
        try params.send(garbage)
        XCTAssertEqual(try reply(params)?.code, "bad-message")
        try params.send(try WireCodec.encode(.job(ExecutionJob.with { $0.jobID = "x"; $0.problemID = "p"; $0.program = "1"; $0.suiteHash = Data(repeating: 1, count: 32); $0.leaseMs = 1 }), id: "h1", sender: "hostile"))
        XCTAssertEqual(try reply(params)?.code, "bad-message")
        try params.send(try WireCodec.encode(.weightRequest(WeightRequest.with { $0.model = "actor"; $0.version = 99; $0.manifest = true }), id: "h2", sender: "hostile"))
        let unknown = try reply(params)
        XCTAssertEqual(unknown?.code, "unknown-version")
        XCTAssertTrue(unknown?.detail.contains("it has: 0") ?? false, unknown?.detail ?? "")
        // Only the learner publishes versions.
        try params.send(try WireCodec.encode(.announcement(VersionAnnouncement.with { $0.model = "actor"; $0.version = 7 }), id: "h7", sender: "hostile"))
        XCTAssertEqual(try reply(params)?.code, "not-allowed")

        let rollouts = try peer(cfg.endpoints.rollouts, listed)
        try rollouts.send(garbage)
        XCTAssertEqual(try reply(rollouts)?.code, "bad-message")
        // Rollouts for a problem the ledger does not have are refused, and nothing is stored.
        try rollouts.send(forgedRollouts)
        XCTAssertEqual(try reply(rollouts)?.code, "refused")
        // So are rollouts of a real problem for a request the learner never issued (here the
        // id its first request will have): nothing a sampler sends is stored unless the
        // learner gave it that request.
        let realProblem = try XCTUnwrap(try ledger.problems().first?.id)
        try rollouts.send(try WireCodec.encode(.rollouts(RolloutBatch.with {
            $0.requestID = "train-0"
            $0.rollouts = [Rollout.with { $0.problemID = realProblem; $0.programTokens = [1]; $0.logprobs = [-1] }]
        }), id: "h8", sender: "hostile"))
        let notIssued = try reply(rollouts)
        XCTAssertEqual(notIssued?.code, "refused")
        XCTAssertTrue(notIssued?.detail.contains("never issued") ?? false, notIssued?.detail ?? "")
        XCTAssertFalse(try ledger.hasRequest("train-0"))
        // Frames past a link's size limit drop the sender: no answer, nothing stored.
        let oversized = try peer(cfg.endpoints.rollouts, listed)
        try oversized.send([[UInt8](repeating: 7, count: 17 << 20)])
        XCTAssertNil(try reply(oversized, wait: .seconds(2)))
        let oversizedParams = try peer(cfg.endpoints.params, listed)
        try oversizedParams.send([[UInt8](repeating: 7, count: 2 << 20)])
        XCTAssertNil(try reply(oversizedParams, wait: .seconds(2)))
        // The learner's and the executors' links drop oversized frames too (the executor link
        // with the run's local-executor key; the learner is not running yet, so the frame
        // waits in the queue and is dropped when it binds).
        let executorKeys = try CurveKeyPair.read(file: cfg.keysPath + "/local-executor.key")
        let oversizedExecutor = try peer(cfg.endpoints.executors, executorKeys)
        try oversizedExecutor.send([[UInt8](repeating: 7, count: 17 << 20)])
        XCTAssertNil(try reply(oversizedExecutor, wait: .seconds(2)))
        let oversizedSamples = try peer(cfg.endpoints.samples, listed)
        try oversizedSamples.send([[UInt8](repeating: 7, count: 17 << 20)])
        hostile.append(("oversized", "samples", oversizedSamples))
        XCTAssertFalse(try ledger.hasRequest("forged"))

        // The pipeline still trains.
        let learner = try LearnerService(config: cfg, log: Log(role: "learner", instance: "t"), ledger: ledger) { _ in }
        _ = try learner.run()
        XCTAssertEqual(learner.state.step, 1)
        var passedWithoutTests = 0
        try ledger.scanRollouts { r in
            if r.verdict.outcome == .passed && r.verdict.executor == "hostile" { passedWithoutTests += 1 }
            return true
        }
        XCTAssertEqual(passedWithoutTests, 0, "a forged verdict was recorded")
        // While the learner ran, the plain and unlisted clients (one asked for sample requests
        // on the learner's link) still got nothing.
        for (who, endpoint, s) in hostile {
            XCTAssertFalse(try s.waitForMessage(timeout: .zero), "a \(who) client got a message on \(endpoint)")
        }

        // Relabel with critic v1 (the run used v0 and v1), re-executing every program.
        var before: [UInt64: Rollout] = [:]
        try ledger.scanRollouts { r in before[r.sequence] = r; return true }
        var relabeler = Relabeler()
        relabeler.critic = try CriticTrainer(critic: try Critic.load(checkpoint: cfg.weightsPath + "/critic/v000001.safetensors"), trainedLayers: 1)
        relabeler.executor = try Executor(slots: 1, name: "relabel")
        let summary = try relabeler.run(ledger: ledger, range: 1...UInt64.max)
        XCTAssertGreaterThanOrEqual(summary.rollouts, 2 * 3)
        XCTAssertEqual(summary.reexecuted, summary.rollouts)
        XCTAssertEqual(summary.changedVerdicts, 0, "the same programs on the same tests")
        var changedWeights = 0
        try ledger.scanRollouts { r in
            guard let old = before[r.sequence], r.purpose == "train", !r.baseline, r.state == .labeled || r.state == .consumed else { return true }
            XCTAssertEqual(r.criticWeights.count, r.programTokens.count)
            XCTAssertEqual(r.state, old.state, "relabeling keeps the lifecycle state")
            XCTAssertEqual(r.reward, old.reward)
            if r.criticWeights != old.criticWeights { changedWeights += 1 }
            return true
        }
        XCTAssertGreaterThan(changedWeights, 0, "critic v1 gives other weights than the critic that labeled them")
    }

    /// Imports the config's problems, starts every role and runs a learner to the end; returns
    /// it, its progress lines and the ledger.
    func runToTheEnd(_ cfg: PipelineConfig) throws -> (learner: LearnerService, lines: [String], ledger: Ledger) {
        let ledger = try Ledger(path: cfg.ledgerPath)
        _ = try Setup.importData(cfg, into: ledger)
        try startRoles(cfg, ledger: ledger)
        var lines: [String] = []
        let learner = try LearnerService(config: cfg, log: Log(role: "learner", instance: "t"), ledger: ledger) { lines.append($0) }
        _ = try learner.run()
        return (learner, lines, ledger)
    }

    /// The switches: group-mean baseline (no greedy program), critic weights off, a KL penalty,
    /// a smaller CE weight, a warm start, the frontier curriculum and a held-out evaluation
    /// after training only all run through the real roles.
    func testReturnBaselineCriticAndKLSwitches() throws {
        _ = try tinyModel()
        let cfg = try config(steps: 2, extra: ["sampling.baseline=group-mean", "training.critic_weights=false", "training.kl_penalty=0.1",
                                               "training.ce_weight=0.5", "training.warm_start_steps=1", "training.curriculum=frontier",
                                               "data.heldout_points=[after]"])
        XCTAssertFalse(cfg.needsGreedy)
        let (learner, lines, ledger) = try runToTheEnd(cfg)
        XCTAssertEqual(learner.state.step, 2)
        XCTAssertEqual(learner.state.version, 3, "a warm-start version and two RL versions")
        XCTAssertTrue(lines.first?.hasPrefix("warm-start 1/1") ?? false, "\(lines)")
        // The curriculum knows every trained group's problem.
        let curriculum = try XCTUnwrap(learner.state.curriculum)
        XCTAssertGreaterThan(curriculum.cursor, 0, "the frontier curriculum chose the problems")
        XCTAssertFalse(curriculum.seen.isEmpty)
        XCTAssertTrue(lines.contains { $0.contains("| frontier ") }, "\(lines)")
        var groups: [String: [Rollout]] = [:]
        var evals = Set<String>()
        try ledger.scanRollouts { r in
            if r.purpose == "eval" { evals.insert(String(r.requestID.prefix(10))); return true }
            if r.state == .labeled || r.state == .consumed { groups[r.requestID, default: []].append(r) }
            return true
        }
        XCTAssertEqual(evals, ["eval-after"], "held-out evaluation after training only")
        XCTAssertFalse(groups.isEmpty)
        for (request, members) in groups {
            XCTAssertEqual(members.count, 2, "\(request): two samples, no greedy program")
            XCTAssertFalse(members.contains { $0.baseline })
            XCTAssertEqual(members.map(\.advantage).reduce(0, +), 0, accuracy: 1e-5, "returns relative to the group mean")
            XCTAssertTrue(members.allSatisfy { $0.criticWeights.isEmpty }, "critic weights are off")
        }
    }

    /// `training.kl_every`: the KL divergence of the sampling policy from the starting model,
    /// estimated from the sampler's log-probabilities and a forward pass of the starting model.
    /// The first step's programs were sampled by version 0, the starting model itself, so its
    /// estimate is zero up to rounding; misaligned tokens would make it large.
    func testKLToTheStartingModelIsMeasured() throws {
        _ = try tinyModel()
        let cfg = try config(steps: 2, extra: ["training.kl_every=1", "data.heldout_problems=0"])
        let (_, lines, ledger) = try runToTheEnd(cfg)
        let reports = try String(contentsOfFile: cfg.learnerPath + "/progress.jsonl", encoding: .utf8).split(separator: "\n")
            .map { try StepReport.decode(line: $0) }
        XCTAssertEqual(reports.count, 2)
        print("KL to the starting model by step: \(reports.map { $0.klToStart.map { String(format: "%.2e", $0) } ?? "-" })")
        let first = try XCTUnwrap(reports[0].klToStart, "step 1 measured the KL")
        XCTAssertEqual(first, 0, accuracy: 1e-3, "version 0 is the starting model")
        XCTAssertNotNil(reports[1].klToStart)
        XCTAssertTrue(lines.allSatisfy { !$0.hasPrefix("step") || $0.contains(" | kl ") }, "\(lines)")

        // The fresh samples' length and cut-off share: two steps of equally many fresh samples
        // (a 2-step run trains on nothing stale), so the mean of the steps' figures is the
        // ledger's over the consumed sampled programs.
        var lengths: [Int] = []
        try ledger.scanRollouts { r in
            if r.state == .consumed && !r.baseline && r.purpose != "eval" { lengths.append(r.programTokens.count) }
            return true
        }
        XCTAssertFalse(lengths.isEmpty)
        let tokens = reports.compactMap(\.programTokens), cut = reports.compactMap(\.cutOffShare)
        XCTAssertEqual(tokens.count, 2)
        XCTAssertEqual(cut.count, 2)
        XCTAssertEqual(tokens.reduce(0, +) / 2, Double(lengths.reduce(0, +)) / Double(lengths.count), accuracy: 1e-9)
        XCTAssertEqual(cut.reduce(0, +) / 2, Double(lengths.filter { $0 >= cfg.sampling.maxNewTokens }.count) / Double(lengths.count), accuracy: 1e-9)
        XCTAssertTrue(lines.allSatisfy { !$0.hasPrefix("step") || $0.contains(" | length ") }, "\(lines)")
    }

    /// `model.critic`: the run starts from a trained critic (here one with its own head and 2
    /// blocks where a new one would have 1), publishes it as critic v0 and trains it on; a
    /// critic of other classes, or a file that is no critic, is refused by name.
    func testAPipelineStartsFromATrainedCritic() throws {
        let actor = try tinyModel()
        let given = try Critic.fromActor(try LoadedModel.load(actor).weights, layers: 2, classes: .binary, seed: 77)
        let session = try CriticSession(critic: given, state: TrainingState(kind: .critic, trainedLayers: 2, adamw: AdamWSettings(),
                                                                             schedule: LearningRateSchedule(peak: 1e-3), rng: Xoshiro256(seed: 1),
                                                                             criticClasses: .binary))
        let path = dir + "/trained-critic.safetensors"
        try session.save(to: path)

        let cfg = try config(steps: 1, extra: ["model.critic=\(path)", "model.critic_classes=binary", "data.heldout_problems=0"])
        let ledger = try Ledger(path: cfg.ledgerPath)
        _ = try Setup.importData(cfg, into: ledger)
        let wrongClasses = try config(steps: 1, extra: ["model.critic=\(path)", "model.critic_classes=outcomes", "data.heldout_problems=0"])
        XCTAssertThrowsError(try LearnerService(config: wrongClasses, log: Log(role: "learner", instance: "t"), ledger: ledger) { _ in }.run()) { e in
            XCTAssertTrue("\(e)".contains("predicts binary but model.critic_classes is outcomes"), "\(e)")
        }
        let notACritic = try config(steps: 1, extra: ["model.critic=\(actor)", "data.heldout_problems=0"])
        XCTAssertThrowsError(try LearnerService(config: notACritic, log: Log(role: "learner", instance: "t"), ledger: ledger) { _ in }.run()) { e in
            XCTAssertTrue("\(e)".contains("model.critic: \(actor) is not a critic checkpoint"), "\(e)")
        }

        try startRoles(cfg, ledger: ledger)
        let lines = Mutex<[String]>([])
        let learner = try LearnerService(config: cfg, log: Log(role: "learner", instance: "t") { line in lines.withLock { $0.append(line) } }, ledger: ledger) { _ in }
        _ = try learner.run()
        XCTAssertEqual(learner.state.step, 1)
        XCTAssertTrue(lines.withLock { $0.contains { $0.contains("starting critic: \(path) (2 blocks, binary)") } })
        let published = try Critic.load(checkpoint: cfg.weightsPath + "/critic/v000000.safetensors")
        XCTAssertEqual(published.config.layers, 2)
        XCTAssertEqual(published.head.array, given.head.array, "critic v0 is the trained critic")
        XCTAssertEqual(published.backbone.buffer.array, given.backbone.buffer.array)
    }

    /// `sampling.precision: bf16` and `training.precision: bf16`: the sampler loads each actor
    /// version with bf16 packed weights (its log says so), the learner trains in mixed
    /// precision, and the run completes its steps with rollouts labeled.
    func testAPipelineSamplesAndTrainsInBF16() throws {
        if let reason = MatrixPrecision.bf16.unavailableReason { throw XCTSkip(reason) }
        _ = try tinyModel()
        let cfg = try config(steps: 2, extra: ["sampling.precision=bf16", "training.precision=bf16", "data.heldout_problems=0"])
        let ledger = try Ledger(path: cfg.ledgerPath)
        _ = try Setup.importData(cfg, into: ledger)
        let samplerLines = Mutex<[String]>([])
        try startRoles(cfg, ledger: ledger) { line in samplerLines.withLock { $0.append(line) } }
        let learnerLines = Mutex<[String]>([])
        let learnerLog = Log(role: "learner", instance: "t") { line in learnerLines.withLock { $0.append(line) } }
        let learner = try LearnerService(config: cfg, log: learnerLog, ledger: ledger) { _ in }
        _ = try learner.run()
        XCTAssertEqual(learner.state.step, 2)
        XCTAssertTrue(learnerLines.withLock { $0.contains { $0.contains("matrix products in bf16") } })
        var labeled = 0
        try ledger.scanRollouts { r in
            if r.state == .labeled || r.state == .consumed { labeled += 1 }
            return true
        }
        XCTAssertGreaterThanOrEqual(labeled, 4, "two steps of two problems, two samples and a greedy program each")
        let loaded = samplerLines.withLock { $0.filter { $0.contains("loaded actor") } }
        XCTAssertFalse(loaded.isEmpty)
        XCTAssertTrue(loaded.allSatisfy { $0.contains("bf16") }, "\(loaded)")
    }
}
