import CodeRL
import Foundation
import Ledger
import Llama
import ModelIO
import Optim
import Runtime
import Schema
import Tensor
import Training
import Wire
import ZeroMQ

/// The learner's position in the run, saved with its checkpoints (`learner.json`).
public struct LearnerState: Codable, Equatable, Sendable {
    public var step = 0
    /// Actor and critic version last published.
    public var version: UInt64 = 0
    /// Last rollout sequence consumed.
    public var position: UInt64 = 0
    /// Train sample requests issued so far (request i is `train-i`).
    public var requested = 0
    public var warmStartDone = 0
    public var evalBeforeIssued = false
    /// The version whose held-out evaluation was requested after warm-start.
    public var evalWarmVersion: UInt64? = nil
    /// The version whose held-out evaluation was requested at the end of the run.
    public var evalAfterVersion: UInt64? = nil
    public var totals = StepData.Counts()
    /// What RL has sampled of each problem and where the problem stream stands (absent in
    /// checkpoints written before it was kept).
    public var curriculum: Curriculum? = nil
    public init() {}
}

/// One line of progress per learner step (also written to `learner/progress.jsonl`).
public struct StepReport: Codable, Sendable {
    public var step: Int
    public var version: UInt64
    public var seconds: Double
    public var rolloutsPerSecond: Double
    public var executionsPerSecond: Double
    public var meanReward: Double
    public var passRate: Double
    public var outcomes: [Int]
    public var criticAccuracy: Double
    public var policyLag: Double
    public var stale: Int
    public var unscored: Int
    public var crossEntropy: Double
    public var policyLoss: Double
    public var criticLoss: Double
    /// Expected calibration error of the critic on this step's outcomes (absent in reports
    /// written before it was measured).
    public var criticCalibrationError: Double? = nil
    /// Diagnostics of the actor's update (absent in reports written before they were kept):
    /// the gradient's global norm before clipping, whether clipping scaled it, the learning
    /// rate, tokens in the step's batches, the share of fresh samples with a non-zero return
    /// (the rest carry no policy-gradient signal), their mean |return|, and the mean
    /// log-probability the sampler gave its tokens (minus: the sampled tokens' entropy estimate).
    public var gradientNorm: Double? = nil
    /// The gradient norms of the cross-entropy term and of the policy-gradient term alone.
    public var gradientNormCE: Double? = nil
    public var gradientNormPG: Double? = nil
    public var clipped: Bool? = nil
    public var learningRate: Double? = nil
    public var tokens: Int? = nil
    public var signalShare: Double? = nil
    public var meanAbsReturn: Double? = nil
    public var sampledLogProb: Double? = nil
    /// The sampling policy's KL divergence from the starting model, estimated on the step's
    /// fresh samples (every `training.kl_every` steps).
    public var klToStart: Double? = nil
    /// Training problems whose last sampled group had some but not all programs passing.
    public var frontier: Int? = nil
    /// The fresh samples' mean length in tokens, and the share of them cut off at
    /// `sampling.max_new_tokens`: a policy that stops ending its programs shows here first.
    public var programTokens: Double? = nil
    public var cutOffShare: Double? = nil
    /// When the step ended (seconds since 1970), for rates over several steps.
    public var finishedAt: Double? = nil
    /// Seconds of the step spent training (the rest of `seconds` waited for rollouts).
    public var trainSeconds: Double? = nil
    /// Where the training time went: the actor's update, the critic's, the KL estimate's
    /// forward passes on the starting model (seconds each).
    public var actorSeconds: Double? = nil
    public var criticSeconds: Double? = nil
    public var klSeconds: Double? = nil

    /// progress.jsonl's keys: snake_case, like every JSON this project writes.
    public enum CodingKeys: String, CodingKey, CaseIterable {
        case step = "step"
        case version = "version"
        case seconds = "seconds"
        case rolloutsPerSecond = "rollouts_per_second"
        case executionsPerSecond = "executions_per_second"
        case meanReward = "mean_reward"
        case passRate = "pass_rate"
        case outcomes = "outcomes"
        case criticAccuracy = "critic_accuracy"
        case policyLag = "policy_lag"
        case stale = "stale"
        case unscored = "unscored"
        case crossEntropy = "cross_entropy"
        case policyLoss = "policy_loss"
        case criticLoss = "critic_loss"
        case criticCalibrationError = "critic_calibration_error"
        case gradientNorm = "gradient_norm"
        case gradientNormCE = "gradient_norm_ce"
        case gradientNormPG = "gradient_norm_pg"
        case clipped = "clipped"
        case learningRate = "learning_rate"
        case tokens = "tokens"
        case signalShare = "signal_share"
        case meanAbsReturn = "mean_abs_return"
        case sampledLogProb = "sampled_log_prob"
        case klToStart = "kl_to_start"
        case frontier = "frontier"
        case programTokens = "program_tokens"
        case cutOffShare = "cut_off_share"
        case finishedAt = "finished_at"
        case trainSeconds = "train_seconds"
        case actorSeconds = "actor_seconds"
        case criticSeconds = "critic_seconds"
        case klSeconds = "kl_seconds"
    }

    /// One report as a line of progress.jsonl (snake_case keys, no newline).
    public func jsonLine() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }

    /// A line of progress.jsonl; lines written before the keys were snake_case (camelCase,
    /// the property names) are read too.
    public static func decode(line: some StringProtocol) throws -> StepReport {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .custom { path in
            let key = path.last!
            return CodingKeys(rawValue: snakeCase(key.stringValue)) ?? key
        }
        return try decoder.decode(StepReport.self, from: Data(line.utf8))
    }

    /// `gradientNormCE` → `gradient_norm_ce`: an underscore where a lower-case letter or digit
    /// meets a capital, or a run of capitals meets a capitalised word; all lower-cased.
    static func snakeCase(_ name: String) -> String {
        let chars = Array(name)
        var out = ""
        for (i, c) in chars.enumerated() {
            if c.isUppercase && i > 0 {
                let previous = chars[i - 1], next = i + 1 < chars.count ? chars[i + 1] : nil
                if previous.isLowercase || previous.isNumber || (previous.isUppercase && next?.isLowercase == true) { out += "_" }
            }
            out += c.lowercased()
        }
        return out
    }

    public var line: String {
        let total = max(1, outcomes.reduce(0, +))
        let mix = zip(Outcome.counted.map(\.name), outcomes).map { "\($0) \(Int((Double($1) * 100 / Double(total)).rounded()))%" }.joined(separator: " ")
        return String(format: "step %d v%llu | %.1fs | rollouts/s %.2f | exec/s %.2f | reward %+.3f | pass %.1f%% | %@ | critic acc %.0f%% | lag %.2f | stale %d | ce %.3f pg %+.4f critic %.3f",
                      step, version, seconds, rolloutsPerSecond, executionsPerSecond, meanReward, passRate * 100, mix,
                      criticAccuracy * 100, policyLag, stale, crossEntropy, policyLoss, criticLoss)
            + (gradientNorm.map { String(format: " | grad %.3g%@", $0, clipped == true ? " clipped" : "") } ?? "")
            + (gradientNormCE.flatMap { ce in gradientNormPG.map { String(format: " (ce %.3g, pg %.3g)", ce, $0) } } ?? "")
            + (signalShare.map { String(format: " | signal %.0f%%", $0 * 100) } ?? "")
            + (klToStart.map { String(format: " | kl %.4f", $0) } ?? "")
            + (frontier.map { " | frontier \($0)" } ?? "")
            + (programTokens.map { String(format: " | length %.0f", $0) } ?? "")
            + (cutOffShare.map { $0 > 0 ? String(format: " (cut off %.0f%%)", $0 * 100) : "" } ?? "")
    }
}

extension StepReport {
    /// The step's figures as Prometheus gauges (names in the README).
    public func record() {
        Telemetry.gauge(.learnerStep, Double(step))
        Telemetry.gauge(.rewardMean, meanReward)
        Telemetry.gauge(.passRate, passRate)
        Telemetry.gauge(.policyLagMean, policyLag)
        Telemetry.gauge(.rolloutsPerSecond, rolloutsPerSecond)
        Telemetry.gauge(.executionsPerSecond, executionsPerSecond)
        Telemetry.gauge(.criticAccuracy, criticAccuracy)
        if let criticCalibrationError { Telemetry.gauge(.criticCalibrationError, criticCalibrationError) }
        if let gradientNorm { Telemetry.gauge(.gradientNorm, gradientNorm) }
        if let gradientNormCE { Telemetry.gauge(.gradientNormTerm, gradientNormCE, [("term", "cross_entropy")]) }
        if let gradientNormPG { Telemetry.gauge(.gradientNormTerm, gradientNormPG, [("term", "policy_gradient")]) }
        if let learningRate { Telemetry.gauge(.learningRate, learningRate) }
        if let signalShare { Telemetry.gauge(.signalShare, signalShare) }
        if let meanAbsReturn { Telemetry.gauge(.meanAbsReturn, meanAbsReturn) }
        if let klToStart { Telemetry.gauge(.klToStart, klToStart) }
        if let programTokens { Telemetry.gauge(.programTokensMean, programTokens) }
        if let cutOffShare { Telemetry.gauge(.cutOffShare, cutOffShare) }
        for (term, value) in [("cross_entropy", crossEntropy), ("policy_gradient", policyLoss), ("critic", criticLoss)] {
            Telemetry.gauge(.loss, value, [("term", term)])
        }
        for (name, n) in zip(Outcome.counted.map(\.name), outcomes) {
            Telemetry.count(.outcomes, [("outcome", name)], by: n)
        }
    }
}

/// The learner role: owns training. It hands sample requests to samplers (bounded so rollouts
/// are at most `max_policy_lag` versions old), reads labeled rollouts from the ledger in
/// sequence order, updates the actor with `ce_weight * L_ce(reference solutions) +
/// rl_weight * L_rl(rollouts)` and the critic on the outcomes, publishes versions to the
/// param-store and checkpoints itself with its ledger position.
///
/// Stale rule: a rollout more than `max_policy_lag` versions behind the actor is counted as
/// stale and left out of the policy-gradient term (its log-probabilities belong to a policy
/// too far away), but still trains the critic (its outcome is a fact about the program).
/// Rollouts whose execution was parked (infrastructure failures) are counted as unscored and
/// used for nothing.
public final class LearnerService {
    public let config: PipelineConfig
    private let log: Log
    public let stopFlag = StopFlag()
    private let ledger: Ledger
    private let format: PromptFormat
    private var actor: ActorSession!
    private var critic: CriticSession!
    private var reference: LlamaTrainer?
    public private(set) var state = LearnerState()
    private var sender: Sender
    private let progress: (String) -> Void
    private var trainProblems: [Problem] = []
    private var heldout: [Problem] = []
    private var prompts: [String: [Int]] = [:]
    private var problemByID: [String: Problem] = [:]

    /// The samplers (event loop only; nil in replay).
    private var samplers: SamplerPool!
    private var params: Socket!
    /// The newest actor version the param-store has taken (requests name this one).
    private var servedVersion: UInt64 = 0
    private var lastReportMs = nowMs()
    private var lastReportSequence: UInt64 = 0
    private var lastReportExecuted = 0
    private var executedBelow: UInt64 = 0
    private var executedBelowCount = 0
    /// Replay: the ledger is only read (no lifecycle updates, no run metadata).
    private var readOnly = false
    /// The step being trained consumed its rollouts before (a restart from a checkpoint older
    /// than the ledger's position): its version may exist in the param-store already.
    private var catchingUp = false
    /// The newest version of each model this process has published (the parent of its next delta).
    private var publishedHere: [String: UInt64] = [:]
    private var lastCheckpointMs = nowMs()
    /// The step of the last checkpoint written or resumed from.
    private var lastCheckpointStep = -1

    /// `ledger`: the run's ledger when this process has it open already; nil opens it.
    public init(config: PipelineConfig, log: Log, ledger: Ledger? = nil, progress: @escaping (String) -> Void) throws {
        self.config = config
        self.log = log
        self.progress = progress
        self.ledger = try ledger ?? Ledger(path: config.ledgerPath)
        format = try Setup.promptFormat(config)
        sender = Sender(name: "learner")
        trainProblems = try Setup.problems(self.ledger, selectors: config.data.trainSplits)
        if config.data.maxTrainProblems > 0 { trainProblems = Array(trainProblems.prefix(config.data.maxTrainProblems)) }
        let heldoutIDs = Set(trainProblems.map(\.id))
        heldout = Array(try Setup.problems(self.ledger, selectors: config.data.heldoutSplits).filter { !heldoutIDs.contains($0.id) }
                            .prefix(config.data.heldoutProblems))
        guard !trainProblems.isEmpty else {
            throw PipelineError("no training problems match data.train \(config.data.trainSplits) in the ledger \(config.ledgerPath)")
        }
        for p in trainProblems + heldout { problemByID[p.id] = p }
    }

    public func stop() { stopFlag.set() }

    // MARK: Checkpoints

    var checkpointRoot: String { config.learnerPath }

    /// Returns true on a fresh start (no checkpoint).
    private func loadOrCreate() throws -> Bool {
        try FileManager.default.createDirectory(atPath: checkpointRoot, withIntermediateDirectories: true)
        if let name = try? String(contentsOfFile: checkpointRoot + "/latest", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines),
           !name.isEmpty {
            let dir = checkpointRoot + "/" + name
            actor = try ActorSession.load(from: dir + "/actor.safetensors")
            critic = try CriticSession.load(from: dir + "/critic.safetensors")
            state = try JSONDecoder().decode(LearnerState.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/learner.json")))
            log("resumed from \(dir): step \(state.step), version \(state.version), ledger position \(state.position)")
            lastCheckpointStep = state.step
            actor.setTotalSteps(config.run.steps)
            try setPrecision()
            return false
        }
        let loaded = try LoadedModel.load(try Setup.actorPath(config))
        let weights = loaded.weights
        let layers = weights.config.layers
        let trained = config.training.trainedLayers == 0 ? layers : min(config.training.trainedLayers, layers)
        actor = try ActorSession(weights: weights, state: TrainingState(
            kind: .actor, trainedLayers: trained,
            adamw: AdamWSettings(weightDecay: Float(config.training.weightDecay)),
            schedule: LearningRateSchedule(peak: Float(config.training.learningRate), totalSteps: config.run.steps),
            clipNorm: config.training.clipNorm > 0 ? config.training.clipNorm : nil, rng: Xoshiro256(seed: config.run.seed),
            trainsOutputHead: config.training.trainHead))
        let classes: CriticClasses = config.model.criticClasses == .binary ? .binary : .outcomes
        let c = try startingCritic(actor: weights, classes: classes)
        let criticLayers = c.config.layers
        let criticTrained = config.training.criticTrainedLayers == 0 ? criticLayers : min(config.training.criticTrainedLayers, criticLayers)
        critic = try CriticSession(critic: c, state: TrainingState(
            kind: .critic, trainedLayers: criticTrained, adamw: AdamWSettings(),
            schedule: LearningRateSchedule(peak: Float(config.training.criticLearningRate), totalSteps: config.run.steps),
            clipNorm: 1, rng: Xoshiro256(seed: config.run.seed &+ 1), criticClasses: classes,
            trainsEmbedding: config.training.criticTrainEmbedding))
        state = LearnerState()
        try setPrecision()
        log("fresh start: actor \(layers) blocks (top \(trained) trained), critic \(criticLayers) blocks (\(classes.rawValue))")
        return true
    }

    /// `model.critic` when set (a trained critic, checked against the actor: same vocabulary
    /// and width, classes as `model.critic_classes`), else a new critic from the actor's first
    /// blocks with a random head.
    private func startingCritic(actor weights: LlamaWeights, classes: CriticClasses) throws -> Critic {
        let layers = weights.config.layers
        guard !config.model.critic.isEmpty else {
            let criticLayers = config.model.criticLayers == 0 ? Critic.defaultLayers(actorLayers: layers) : config.model.criticLayers
            guard criticLayers <= layers else {
                throw PipelineError("model.critic_layers is \(criticLayers) but the actor has \(layers) blocks")
            }
            return try Critic.fromActor(weights, layers: criticLayers, classes: classes, seed: config.run.seed)
        }
        let path = config.model.critic
        let critic: Critic
        do { critic = try Critic.load(checkpoint: path) } catch {
            throw PipelineError("model.critic: \(path) is not a critic checkpoint: \(error)")
        }
        guard critic.classes == classes else {
            throw PipelineError("model.critic: \(path) predicts \(critic.classes.rawValue) but model.critic_classes is \(classes.rawValue)")
        }
        let a = weights.config, c = critic.config
        guard c.vocabularySize == a.vocabularySize, c.channels == a.channels else {
            throw PipelineError("model.critic: \(path) does not fit the actor (vocabulary \(c.vocabularySize), width \(c.channels); the actor's: \(a.vocabularySize), \(a.channels))")
        }
        if config.training.criticTrainedLayers > c.layers {
            throw PipelineError("training.critic_trained_layers is \(config.training.criticTrainedLayers) but the critic in \(path) has \(c.layers) blocks")
        }
        log("starting critic: \(path) (\(c.layers) blocks, \(classes.rawValue))")
        return critic
    }

    /// The configured arithmetic for both trainers' matrix products (a runtime choice: the
    /// checkpoints are the same either way).
    private func setPrecision() throws {
        let precision = try MatrixPrecision(config.training.precision, key: "training.precision")
        actor.trainer.precision = precision
        critic.trainer.backbone.precision = precision
        log("matrix products in \(precision.rawValue) (training.precision \(config.training.precision.rawValue))")
    }

    /// Every `checkpoint_every` versions, after `checkpoint_minutes`, and at the last step. A
    /// learner killed in between resumes from the last checkpoint and trains the steps after
    /// it again from the ledger (their rollouts are stored; the versions it published then
    /// stay in the param-store).
    private func checkpointDue() -> Bool {
        let t = config.training
        return state.version % UInt64(t.checkpointEvery) == 0 || state.step >= config.run.steps
            || (t.checkpointMinutes > 0 && Double(nowMs() - lastCheckpointMs) >= t.checkpointMinutes * 60_000)
    }

    /// A checkpoint being written on a thread of its own while training goes on.
    private struct PendingCheckpoint {
        let name: String
        let state: LearnerState
        let startedMs: UInt64
        let result: Handoff<Result<Void, any Error>>
    }
    private var pendingCheckpoint: PendingCheckpoint?

    /// Writes a checkpoint and returns once it is on disk.
    private func saveCheckpoint() throws {
        try beginCheckpoint()
        try finishCheckpoint(wait: true)
    }

    /// Starts a checkpoint of the step just trained: the trained tensors and the optimizer's
    /// moments are copied here (the next step changes them), and a thread of its own writes
    /// the files, flushed, then points `latest` at them. Until then `latest` names the previous
    /// checkpoint, so a learner killed while the files are written resumes from that one and
    /// the ledger. One checkpoint is written at a time.
    private func beginCheckpoint() throws {
        try finishCheckpoint(wait: true)
        let started = nowMs()
        lastCheckpointStep = state.step
        let name = String(format: "step-%06d", state.step)
        let dir = checkpointRoot + "/" + name
        let root = checkpointRoot, log = self.log
        let actorSnapshot = actor.snapshot(), criticSnapshot = critic.snapshot()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let learnerJSON = try encoder.encode(state)
        Telemetry.seconds(.checkpointSeconds, Double(nowMs() - started) / 1000)
        let result = Handoff<Result<Void, any Error>>()
        let thread = Thread {
            result.put(Result {
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                try actorSnapshot.write(to: dir + "/actor.safetensors")
                try criticSnapshot.write(to: dir + "/critic.safetensors")
                try AtomicFile.write(learnerJSON, to: dir + "/learner.json")
                Failpoint.reach(.checkpointWritten, name, log: log)
                try AtomicFile.write(Data((name + "\n").utf8), to: root + "/latest")
                // Older checkpoints are not needed: keep the newest two.
                let all = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).filter { $0.hasPrefix("step-") }.sorted()
                for old in all.dropLast(2) { try? FileManager.default.removeItem(atPath: root + "/" + old) }
            })
        }
        thread.start()
        pendingCheckpoint = PendingCheckpoint(name: name, state: state, startedMs: started, result: result)
    }

    /// Takes the result of the checkpoint being written, if any: with `wait`, once it is done;
    /// otherwise only if it is done already. A checkpoint that could not be written is an error
    /// (as it would have been on the training thread). The ledger records the learner's
    /// position once its checkpoint is on disk.
    private func finishCheckpoint(wait: Bool) throws {
        guard let pending = pendingCheckpoint else { return }
        var outcome = pending.result.take()
        while outcome == nil && wait {
            if samplers != nil { serviceSamplers(timeoutMs: 5) } else { usleep(2_000) }
            outcome = pending.result.take()
        }
        guard let outcome else { return }
        pendingCheckpoint = nil
        lastCheckpointMs = nowMs()
        Telemetry.seconds(.checkpointWriteSeconds, Double(lastCheckpointMs - pending.startedMs) / 1000)
        do { try outcome.get() } catch { throw PipelineError("checkpoint \(pending.name) could not be written: \(error)") }
        guard !readOnly else { return }
        var meta = try ledger.runMetadata() ?? RunMetadata()
        meta.actorVersion = pending.state.version
        meta.criticVersion = pending.state.version
        meta.learnerPosition = pending.state.position
        meta.learnerStep = UInt64(pending.state.step)
        try ledger.saveRunMetadata(meta)
    }

    // MARK: Publishing

    /// Writes the current actor and critic as `version` and has the param-store take them.
    private func publish(version: UInt64, models: [String] = ["critic", "actor"]) throws {
        for model in models {
            let started = nowMs()
            let dir = config.weightsPath + "/" + model + "/incoming"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let path = dir + String(format: "/v%06llu.safetensors", version)
            // Not flushed to disk: the param-store checks every chunk of every version it holds
            // when it starts, and a version lost with the machine is published again on resume.
            // After the first version this process published, only the trained tensors go (a
            // delta of that version); should the store refuse it, the whole version follows.
            func write(deltaOf parent: UInt64?) throws {
                if model == "actor" {
                    try actor.saveWeights(to: path, durable: false, deltaOf: parent)
                } else {
                    try critic.saveWeights(to: path, durable: false, deltaOf: parent)
                }
            }
            let parent = publishedHere[model].flatMap { $0 < version ? $0 : nil }
            try write(deltaOf: parent)
            do {
                try announce(model: model, version: version)
            } catch let error where parent != nil && !stopFlag.isSet {
                log("the param-store did not take \(model) v\(version) as a delta of v\(parent!) (\(error)); publishing it whole")
                try write(deltaOf: nil)
                try announce(model: model, version: version)
            }
            publishedHere[model] = version
            if model == "actor" {
                servedVersion = version
                Telemetry.gauge(.actorVersion, Double(version))
            }
            Telemetry.seconds(.weightPublishSeconds, Double(nowMs() - started) / 1000, [("model", model)])
        }
    }

    /// Sends the publication and waits for the param-store's Ack (resending; bounded).
    private func announce(model: String, version: UInt64) throws {
        let deadline = nowMs() + 120_000
        while nowMs() < deadline && !stopFlag.isSet {
            let id = try sender.send(params, .announcement(VersionAnnouncement.with { $0.model = model; $0.version = version; $0.step = UInt64(state.step) }))
            let waitUntil = nowMs() + 10_000
            while nowMs() < waitUntil {
                serviceSamplers(timeoutMs: 20)
                guard try Poller.poll([params], timeout: .milliseconds(20))[0] else { continue }
                while let incoming = try params.receiveMessage(router: false) {
                    guard case .message(_, let m) = incoming else { continue }
                    switch m.body {
                    case .ack(let ack) where ack.messageID == id: return
                    case .error(let e) where e.messageID == id && e.code == "version-exists" && catchingUp:
                        // Trained again after a restart from an older checkpoint: the store's
                        // version (the one samplers used) stands.
                        log("\(model) v\(version) was published before the restart; the param-store keeps that one")
                        return
                    case .error(let e) where e.messageID == id:
                        throw PipelineError("the param-store refused \(model) v\(version): \(e.code): \(e.detail)")
                    default: continue
                    }
                }
            }
            log("the param-store did not acknowledge \(model) v\(version) yet; sending again")
        }
        throw PipelineError("the param-store at \(config.endpoints.params) did not take \(model) v\(version) within 120 s")
    }

    // MARK: Samplers

    private func prompt(_ problem: Problem) throws -> [Int] {
        if let known = prompts[problem.id] { return known }
        let example = problem.exampleTests.isEmpty ? nil : try ledger.testSuite(hash: [UInt8](problem.exampleTests))
        let tokens = format.promptTokens(problem, exampleTests: example)
        prompts[problem.id] = tokens
        return tokens
    }

    /// What RL has sampled of each problem (created on first use: checkpoints written before it
    /// was kept have none).
    private var curriculum: Curriculum {
        get { state.curriculum ?? Curriculum() }
        set { state.curriculum = newValue }
    }

    /// The problem of train request `index`: an epoch-wise shuffle of the training problems.
    func trainProblem(_ index: Int) -> Problem {
        let n = trainProblems.count
        let epoch = index / n
        var order = Array(0..<n)
        var rng = Xoshiro256(seed: config.run.seed &+ 0x5EED, stream: epoch)
        for i in stride(from: n - 1, to: 0, by: -1) { order.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        return trainProblems[order[index % n]]
    }

    private func makeRequest(id: String, problem: Problem, samples: Int, baseline: Bool, purpose: Purpose, seed: UInt64) throws -> SampleRequest {
        let tokens = try prompt(problem)
        return SampleRequest.with {
            $0.requestID = id
            $0.problemIds = [problem.id]
            $0.problems = [SampleProblem.with { $0.problemID = problem.id; $0.promptTokens = tokens.map { UInt32($0) } }]
            $0.samplesPerProblem = UInt32(samples)
            $0.policyVersion = servedVersion
            $0.includeBaseline = baseline
            $0.use = purpose
            $0.sampling = SamplingSettings.with {
                $0.temperature = Float(config.sampling.temperature)
                $0.topP = Float(config.sampling.topP)
                $0.topK = UInt32(config.sampling.topK)
                $0.maxNewTokens = UInt32(config.sampling.maxNewTokens)
                $0.seed = seed
            }
        }
    }

    private func enqueue(_ request: SampleRequest) throws {
        if try ledger.hasRequest(request.requestID) { return }   // answered before a restart
        if samplers.knows(request.requestID) { return }
        samplers.enqueue(request)
    }

    /// Keeps enough train requests in flight: the groups for this step and `requests_ahead` more.
    private func topUp(available: Int) throws {
        let target = (1 + config.training.requestsAhead) * config.training.problemsPerStep
        var outstanding = samplers.pending.filter { $0.use == .train }.count + samplers.assigned.values.filter { $0.request.use == .train }.count
        while available + outstanding < target {
            let index = state.requested
            state.requested += 1
            let id = "train-\(index)"
            if try ledger.hasRequest(id) { continue }
            // RL continues the shuffled order where warm-start stopped: its first problems are
            // ones warm-start did not train on.
            let offset = config.training.warmStartSteps * config.training.problemsPerStep
            var position = index
            if config.training.curriculum == .frontier {
                position = curriculum.next(count: trainProblems.count, retryAfter: config.training.frontierRetry) { trainProblem(offset + $0).id }
            }
            let problem = trainProblem(offset + position)
            try enqueue(try makeRequest(id: id, problem: problem, samples: config.sampling.samplesPerProblem,
                                        baseline: config.needsGreedy, purpose: .train,
                                        seed: config.run.seed &* 1_000_003 &+ UInt64(index)))
            outstanding += 1
        }
    }

    /// Answers samplers: work requests, heartbeats, completions, refusals; hands out requests.
    /// Records the request queue's gauges.
    func serviceSamplers(timeoutMs: Int) {
        guard samplers != nil else { return }   // replay: no samplers
        do {
            if try Poller.poll([samplers.socket], timeout: .milliseconds(Int64(timeoutMs)))[0] {
                _ = try samplers.receive()   // rollouts reach the ledger through the labeler
            }
            let version = servedVersion
            try samplers.maintain(nowMs: nowMs()) { request in
                if request.use == .train { request.policyVersion = version }
            }
            Telemetry.gauge(.sampleRequests, Double(samplers.pending.count), [("state", "queued")])
            Telemetry.gauge(.sampleRequests, Double(samplers.assigned.count), [("state", "assigned")])
            Telemetry.gauge(.samplersConnected, Double(samplers.samplerCount))
        } catch {
            log("sampler socket: \(error)")
        }
    }

    // MARK: Training

    /// One learner step on `data`; returns its report.
    private func train(_ data: StepData, started: UInt64) throws -> StepReport {
        let trainStarted = nowMs()
        let counts = data.counts(version: state.version, maxLag: config.training.maxPolicyLag)
        let scored = data.rollouts.filter { $0.verdict.outcome != .unspecified }
        let fresh = scored.filter { !$0.baseline && !StepData.isStale($0, version: state.version, maxLag: config.training.maxPolicyLag) }
        let builder = BatchBuilder(maxTokens: config.model.maxSequenceTokens, microBatch: config.training.microBatch,
                                   vocabularySize: actor.weights.config.vocabularySize, pad: 0)
        let useCritic = config.training.criticWeights && state.step >= config.training.criticWarmupSteps
        let scale = Rewards.CriticScale(rawValue: config.training.criticScale.rawValue)!
        // A zero return contributes nothing unless a KL penalty applies.
        let trained = fresh.filter { $0.advantage != 0 || config.training.klPenalty > 0 }
        var rl: [(prompt: [Int], completion: [Int], weights: [Float]?)] = []
        for r in trained {
            let weights = Rewards.tokenWeights(advantage: r.advantage, critic: useCritic ? r.criticWeights : nil,
                                               count: r.programTokens.count, scale: scale)
            rl.append((r.promptTokens.map(Int.init), r.programTokens.map(Int.init), weights))
        }
        var rlBatches = try builder.batches(rl)
        var klToStart: Double? = nil
        let klStarted = nowMs()
        if config.training.klPenalty > 0 && !rlBatches.isEmpty {
            let initial = try initialLogProbs(rlBatches)
            rlBatches = try applyKL(rlBatches, rollouts: trained, initial: initial)
            klToStart = Self.klEstimate(trained, initial: initial)
        } else if config.training.klEvery > 0 && (state.step + 1) % config.training.klEvery == 0 && !fresh.isEmpty {
            let batches = try builder.batches(fresh.map { r -> (prompt: [Int], completion: [Int], weights: [Float]?) in
                (r.promptTokens.map(Int.init), r.programTokens.map(Int.init), nil)
            })
            klToStart = Self.klEstimate(fresh, initial: try initialLogProbs(batches))
        }
        let klSeconds = Double(nowMs() - klStarted) / 1000
        var ce: [(prompt: [Int], completion: [Int], weights: [Float]?)] = []
        var seen = Set<String>()
        for r in data.rollouts where seen.insert(r.problemID).inserted {
            guard let p = try problemByID[r.problemID] ?? ledger.problem(id: r.problemID), let solution = p.solutions.first else { continue }
            ce.append((try prompt(p), format.solutionTokens(solution), nil))
        }
        let ceBatches = config.training.ceWeight > 0 ? try builder.batches(ce) : []
        var parts: [(TrainingBatch, LossMix)] = []
        for b in ceBatches { parts.append((b, LossMix(crossEntropy: Float(config.training.ceWeight), weighted: 0, scale: 1 / Float(ceBatches.count)))) }
        if config.training.rlWeight > 0 {
            for b in rlBatches { parts.append((b, LossMix(crossEntropy: 0, weighted: Float(config.training.rlWeight), scale: 1 / Float(rlBatches.count)))) }
        }
        var ceLoss = 0.0, pgLoss = 0.0
        var update: ActorSession.StepReport? = nil
        let actorStarted = nowMs()
        if !parts.isEmpty {
            let actor = self.actor!
            let split = ceBatches.count   // the cross-entropy parts come first
            let report = try serving { try actor.step(parts: parts, examples: data.rollouts.count, rng: actor.state.rng, termsAfter: split) }
            update = report
            // Each term's own mean: the cross-entropy parts come first, then the policy-gradient ones.
            let ceParts = report.parts.prefix(ceBatches.count), pgParts = report.parts.dropFirst(ceBatches.count)
            ceLoss = ceParts.map { Double($0.crossEntropy) }.reduce(0, +) / Double(max(1, ceParts.count))
            pgLoss = pgParts.map { Double($0.weighted) }.reduce(0, +) / Double(max(1, pgParts.count))
        }
        let actorSeconds = Double(nowMs() - actorStarted) / 1000
        // The critic learns every scored outcome (stale ones included).
        let criticStarted = nowMs()
        let classes = critic.critic.classes
        var criticLoss = 0.0, accuracy = 0.0
        var calibration: Double? = nil
        let criticBatches = try builder.criticBatches(scored, classes: classes)
        if !criticBatches.isEmpty {
            let critic = self.critic!
            let result = try serving { try critic.step(criticBatches, examples: scored.count, rng: critic.state.rng) }
            criticLoss = Double(result.loss)
            let labels = criticBatches.flatMap { $0.labels ?? [] }
            let right = zip(result.probabilities, labels).filter { p, y in p.indices.max(by: { p[$0] < p[$1] }) == y }.count
            accuracy = Double(right) / Double(max(1, labels.count))
            calibration = Calibration.expectedError(probabilities: result.probabilities, labels: labels)
        }
        let criticSeconds = Double(nowMs() - criticStarted) / 1000
        state.step += 1
        state.position = data.lastSequence
        state.totals.add(counts)
        curriculum.record(scored.filter { !$0.baseline })
        if !readOnly { try ledger.update(sequences: data.rollouts.map(\.sequence)) { $0.state = .consumed } }

        let now = nowMs()
        let seconds = Double(now - lastReportMs) / 1000
        let last = try ledger.lastSequence()
        let executedTotal = try executedCount()
        let report = StepReport(
            step: state.step, version: state.version, seconds: Double(now - started) / 1000,
            rolloutsPerSecond: Double(last - min(last, lastReportSequence)) / max(seconds, 1e-3),
            executionsPerSecond: Double(executedTotal - lastReportExecuted) / max(seconds, 1e-3),
            meanReward: counts.rewardSum / Double(max(1, counts.rollouts - counts.unscored)),
            passRate: Double(counts.passed) / Double(max(1, counts.rollouts - counts.unscored)),
            outcomes: counts.outcomes, criticAccuracy: accuracy,
            policyLag: counts.lagSum / Double(max(1, counts.rollouts - counts.unscored)), stale: counts.stale, unscored: counts.unscored,
            crossEntropy: ceLoss, policyLoss: pgLoss, criticLoss: criticLoss, criticCalibrationError: calibration,
            gradientNorm: update.map(\.gradientNorm),
            gradientNormCE: update?.termNorms?.first, gradientNormPG: update?.termNorms?.rest, clipped: update.map { u in config.training.clipNorm > 0 && u.gradientNorm > config.training.clipNorm },
            learningRate: update.map { Double($0.learningRate) }, tokens: update?.tokens,
            signalShare: fresh.isEmpty ? nil : Double(fresh.filter { $0.advantage != 0 }.count) / Double(fresh.count),
            meanAbsReturn: fresh.isEmpty ? nil : fresh.map { Double(abs($0.advantage)) }.reduce(0, +) / Double(fresh.count),
            sampledLogProb: Self.meanLogProb(fresh), klToStart: klToStart, frontier: curriculum.frontierCount,
            programTokens: fresh.isEmpty ? nil : Double(fresh.map(\.programTokens.count).reduce(0, +)) / Double(fresh.count),
            cutOffShare: fresh.isEmpty ? nil : Double(fresh.filter { $0.programTokens.count >= config.sampling.maxNewTokens }.count) / Double(fresh.count),
            finishedAt: Date().timeIntervalSince1970,
            trainSeconds: Double(now - trainStarted) / 1000, actorSeconds: actorSeconds, criticSeconds: criticSeconds,
            klSeconds: klSeconds)
        report.record()
        Telemetry.seconds(.learnerStepSeconds, report.seconds)
        Telemetry.seconds(.learnerTrainSeconds, report.trainSeconds ?? 0)
        Telemetry.count(.rolloutsConsumed, by: data.rollouts.count)
        Telemetry.count(.rolloutsStale, by: counts.stale)
        for r in scored where !r.baseline {
            Telemetry.observe(.policyLag, Double(state.version - min(state.version, r.policyVersion)))
        }
        lastReportMs = now
        lastReportSequence = last
        lastReportExecuted = executedTotal
        return report
    }

    /// The mean log-probability of the sampled tokens under the policy that sampled them.
    static func meanLogProb(_ rollouts: [Rollout]) -> Double? {
        var sum = 0.0, n = 0
        for r in rollouts { for l in r.logprobs where l > -1e29 { sum += Double(l); n += 1 } }
        return n == 0 ? nil : sum / Double(n)
    }

    /// Runs `work` (a training step) on a thread of its own while this one keeps answering
    /// samplers: a sampler that finishes during a step gets its next requests at once instead
    /// of waiting for the step to end. Without samplers (replay) it runs here.
    private func serving<T>(_ work: @escaping () throws -> T) throws -> T {
        guard samplers != nil else { return try work() }
        let result = Handoff<Result<T, any Error>>()
        let box = UncheckedBox(work)
        let thread = Thread { result.put(Result { try box.value() }) }
        thread.stackSize = 8 << 20
        thread.start()
        while true {
            if let r = result.take() {
                samplers.touchAll(nowMs: nowMs())
                return try r.get()
            }
            serviceSamplers(timeoutMs: 5)
        }
    }

    /// Rollouts with a verdict (executed, labeled or consumed), for executions per second.
    /// Everything up to `executedBelow` is known to have one, so each call reads only the
    /// rollouts after the oldest one still waiting for its verdict.
    private func executedCount() throws -> Int {
        var above = 0, contiguous = true
        try ledger.scanRollouts(from: executedBelow + 1) { r in
            let judged = r.state == .executed || r.state == .labeled || r.state == .consumed
            if judged && contiguous {
                executedBelow = r.sequence
                executedBelowCount += 1
            } else {
                contiguous = false
                if judged { above += 1 }
            }
            return true
        }
        return executedBelowCount + above
    }

    /// The log-probability the starting model gives each completion token of `batches`: one
    /// list per sequence, in the batches' order.
    private func initialLogProbs(_ batches: [TrainingBatch]) throws -> [[Float]] {
        if reference == nil {
            let initial = try LoadedModel.load(try Setup.actorPath(config)).weights
            reference = try LlamaTrainer(weights: initial, trainedLayers: 1)
            reference!.precision = actor.trainer.precision
        }
        let reference = self.reference!
        let V = actor.weights.config.vocabularySize
        return try serving {
            var out: [[Float]] = []
            for b in batches {
                let logits = try reference.logits(b)
                let T = b.length
                for s in 0..<b.sequences {
                    var row: [Float] = []
                    for t in 0..<(T - 1) where b.lossMask[s][t] > 0 {
                        row.append(logits.withUnsafeBufferPointer { all in
                            let p = all.baseAddress! + (s * T + t) * V
                            return p[b.tokens[s][t + 1]] - Kernels.logSumExp(p, V)
                        })
                    }
                    out.append(row)
                }
            }
            return out
        }
    }

    /// The mean over sampled tokens of `log p_sampler - log p_initial`: an estimate of the
    /// sampling policy's KL divergence from the starting model (tokens the sampler gave no
    /// log-probability are left out).
    static func klEstimate(_ rollouts: [Rollout], initial: [[Float]]) -> Double? {
        var sum = 0.0, n = 0
        for (r, reference) in zip(rollouts, initial) {
            for (k, l) in reference.enumerated() where k < r.logprobs.count && r.logprobs[k] > -1e29 {
                sum += Double(r.logprobs[k] - l)
                n += 1
            }
        }
        return n == 0 ? nil : sum / Double(n)
    }

    /// Subtracts `kl_penalty * (log p_sampler - log p_initial)` from each token's weight.
    private func applyKL(_ batches: [TrainingBatch], rollouts: [Rollout], initial: [[Float]]) throws -> [TrainingBatch] {
        let beta = Float(config.training.klPenalty)
        var out: [TrainingBatch] = []
        var index = 0
        let V = actor.weights.config.vocabularySize
        for b in batches {
            var weights = b.weights!
            let T = b.length
            for s in 0..<b.sequences {
                let r = rollouts[index], reference = initial[index]
                index += 1
                var k = 0
                for t in 0..<(T - 1) where b.lossMask[s][t] > 0 {
                    let sampled = k < r.logprobs.count ? r.logprobs[k] : reference[k]
                    weights[s][t] -= beta * (sampled - reference[k])
                    k += 1
                }
            }
            out.append(try TrainingBatch(tokens: b.tokens, keyMask: b.keyMask, lossMask: b.lossMask, weights: weights, vocabularySize: V))
        }
        return out
    }

    /// Warm-start: cross-entropy steps on reference solutions before RL.
    private func warmStart() throws {
        let builder = BatchBuilder(maxTokens: config.model.maxSequenceTokens, microBatch: config.training.microBatch,
                                   vocabularySize: actor.weights.config.vocabularySize, pad: 0)
        while state.warmStartDone < config.training.warmStartSteps && !stopFlag.isSet {
            let t0 = nowMs()
            var items: [(prompt: [Int], completion: [Int], weights: [Float]?)] = []
            for k in 0..<config.training.problemsPerStep {
                let p = trainProblem(state.warmStartDone * config.training.problemsPerStep + k)
                if let s = p.solutions.first { items.append((try prompt(p), format.solutionTokens(s), nil)) }
            }
            let batches = try builder.batches(items)
            let parts = batches.map { ($0, LossMix(crossEntropy: 1, weighted: 0, scale: 1 / Float(batches.count))) }
            let actor = self.actor!
            let report = try serving { try actor.step(parts: parts, examples: items.count, rng: actor.state.rng) }
            state.warmStartDone += 1
            serviceSamplers(timeoutMs: 1)
            progress(String(format: "warm-start %d/%d | ce %.3f | %.1fs", state.warmStartDone, config.training.warmStartSteps,
                            report.losses.crossEntropy, Double(nowMs() - t0) / 1000))
        }
    }

    // MARK: Evaluation

    private func issueEval(_ point: PipelineConfig.HeldOutPoint) throws {
        for (i, p) in heldout.enumerated() {
            try enqueue(try makeRequest(id: "eval-\(point.rawValue)-v\(state.version)-\(i)", problem: p, samples: 0, baseline: true, purpose: .eval, seed: 0))
        }
    }

    // MARK: Run

    /// Trains until `run.steps`, then evaluates the held-out problems and returns the summary.
    @discardableResult
    public func run() throws -> String {
        let context = try Context()
        defer { context.shutdown() }
        // Closed before the context ends, so peers see the endpoint go (a new learner in the
        // same process can bind it again).
        defer { samplers = nil; params = nil }
        let security = try LinkSecurity(config: config, role: .learner)
        let authenticator = try security.authenticator(context: context) { [log] line in log(line) }
        defer { authenticator?.stop() }
        samplers = try SamplerPool(context: context, endpoint: config.endpoints.samples,
                                   heartbeatTimeoutMs: UInt64(config.execution.heartbeatTimeoutMs), name: "learner-samples",
                                   security: security, log: log)
        // Every request is recorded as issued (to whom, for what) before it is sent: the
        // labeler stores only answers to recorded requests, from the samplers given them.
        let ledger = self.ledger
        samplers.onAssign = { request, sampler, key in
            let perProblem = Int(request.samplesPerProblem) + (request.includeBaseline ? 1 : 0)
            try ledger.recordIssued(request.requestID, holder: IssuedRequest.Holder(sampler: sampler, key: key),
                                    problems: request.problemIds, maxRollouts: perProblem * max(1, request.problemIds.count))
        }
        let handshakes = try security.watch(context: context, [(samplers.socket, .samples)]) { [log] line in log(line) }
        defer { handshakes?.stop() }
        params = try Socket(context, .dealer)
        try params.setLinger(.zero)
        try params.setMaxMessageSize(MessageSizeLimit.requests)
        try security.connect(params)
        try params.connect(config.endpoints.params)
        log(security.summary)
        let fresh = try loadOrCreate()
        servedVersion = state.version
        if fresh {
            // Actor v0 is the starting model, registered by the param-store itself.
            try publish(version: 0, models: ["critic"])
            try saveCheckpoint()
        } else {
            // Published versions are not flushed to disk: a param-store that lost the
            // checkpoint's version with its machine gets it again (one it kept is left as it is).
            catchingUp = true
            try publish(version: state.version, models: state.version == 0 ? ["critic"] : ["critic", "actor"])
            catchingUp = false
        }
        lastReportSequence = try ledger.lastSequence()
        lastReportExecuted = try executedCount()
        log("\(trainProblems.count) training problems, \(heldout.count) held out; \(config.run.steps) steps of \(config.training.problemsPerStep) problems x \(config.rolloutsPerProblem) programs")
        let points = config.data.heldoutPoints
        if !heldout.isEmpty && points.contains(.before) && !state.evalBeforeIssued {
            try issueEval(.before)
            state.evalBeforeIssued = true
        }
        if state.warmStartDone < config.training.warmStartSteps {
            try warmStart()
            guard !stopFlag.isSet else { return "stopped" }
            state.version += 1
            try publish(version: state.version)
            if !heldout.isEmpty && points.contains(.warm) {
                // The second of three evaluations: base, after warm-start, after RL.
                try issueEval(.warm)
                state.evalWarmVersion = state.version
            }
            try saveCheckpoint()
        }
        while state.step < config.run.steps && !stopFlag.isSet {
            let started = nowMs()
            var data: StepData? = nil
            var lastWaitNote = nowMs()
            while !stopFlag.isSet {
                try finishCheckpoint(wait: false)
                data = try StepData.collect(from: ledger, after: state.position, problems: config.training.problemsPerStep)
                if data != nil { break }
                try topUp(available: try availableGroups())
                serviceSamplers(timeoutMs: 200)
                if nowMs() - lastWaitNote > 30_000 {
                    log("waiting for labeled rollouts: \(samplers.pending.count) requests queued, \(samplers.assigned.count) with samplers, \(samplers.samplerCount) samplers known")
                    lastWaitNote = nowMs()
                }
            }
            guard let data, !stopFlag.isSet else { break }
            try topUp(available: max(0, try availableGroups() - config.training.problemsPerStep))
            serviceSamplers(timeoutMs: 1)
            catchingUp = !data.rollouts.isEmpty && data.rollouts.allSatisfy { $0.state == .consumed }
            if catchingUp { log("step \(state.step + 1) trains on rollouts consumed before the restart (catching up with the ledger)") }
            let report = try train(data, started: started)
            // Time spent training is not silence on the samplers' part.
            samplers.touchAll(nowMs: nowMs())
            var r = report
            if state.step % config.training.publishEvery == 0 || state.step == config.run.steps {
                state.version += 1
                r.version = state.version
                // Stopped during the step: the step is kept (checkpointed below) and its
                // version published when the run resumes, as after any restart.
                if !stopFlag.isSet {
                    try publish(version: state.version)
                    if checkpointDue() { try beginCheckpoint() }
                }
            }
            progress(r.line)
            if !catchingUp { try appendProgress(r) }
        }
        try finishCheckpoint(wait: true)
        guard !stopFlag.isSet else {
            // A stop between steps keeps every finished step: a resumed run starts after it
            // instead of training the steps since the last checkpoint again.
            if state.step > lastCheckpointStep && !catchingUp {
                try saveCheckpoint()
                log("stopped after step \(state.step); checkpointed")
            }
            return "stopped"
        }
        return try finish()
    }

    // MARK: Replay

    public struct ReplayResult: Sendable {
        public var steps: Int
        public var firstSequence: UInt64
        public var lastSequence: UInt64
        /// SHA-256 of the final actor and critic weight files.
        public var actorSHA256: String
        public var criticSHA256: String
        public var checkpoint: String
    }

    /// Trains a fresh learner (the configured starting model and seed) on stored rollouts with
    /// no sampler or executor: the same steps, stale rule and losses as the online learner,
    /// reading labeled train rollouts in sequence order from `from` up to `to`. The ledger is
    /// not changed. Two replays of the same rollouts with the same configuration give
    /// bit-identical weights.
    public func replay(from: UInt64 = 1, to: UInt64 = .max) throws -> ReplayResult {
        readOnly = true
        guard try loadOrCreate() else {
            throw PipelineError("\(checkpointRoot) holds a checkpoint already; replay into an empty run directory")
        }
        state.position = from > 0 ? from - 1 : 0
        let first = state.position + 1
        if config.training.warmStartSteps > 0 {
            try warmStart()
            state.version += 1
        }
        lastReportSequence = try ledger.lastSequence()
        lastReportExecuted = try executedCount()
        while state.step < config.run.steps && !stopFlag.isSet {
            let started = nowMs()
            guard let data = try StepData.collect(from: ledger, after: state.position, problems: config.training.problemsPerStep),
                  data.lastSequence <= to else { break }
            let report = try train(data, started: started)
            if state.step % config.training.publishEvery == 0 { state.version += 1 }
            progress(report.line)
        }
        try saveCheckpoint()
        let dir = checkpointRoot + "/" + String(format: "step-%06d", state.step)
        let actorFile = dir + "/replayed-actor.safetensors", criticFile = dir + "/replayed-critic.safetensors"
        try actor.saveWeights(to: actorFile)
        try critic.saveWeights(to: criticFile)
        return ReplayResult(steps: state.step, firstSequence: first, lastSequence: state.position,
                            actorSHA256: try WeightClient.sha256(of: actorFile).hex, criticSHA256: try WeightClient.sha256(of: criticFile).hex,
                            checkpoint: dir)
    }

    /// Train groups in the ledger after the position (labeled or not).
    private func availableGroups() throws -> Int {
        var requests = Set<String>()
        try ledger.scanRollouts(from: state.position + 1, pageSize: 512) { r in
            if r.use != .eval { requests.insert(r.requestID) }
            return true
        }
        return requests.count
    }

    private func appendProgress(_ report: StepReport) throws {
        let path = checkpointRoot + "/progress.jsonl"
        if !FileManager.default.fileExists(atPath: path) { FileManager.default.createFile(atPath: path, contents: nil) }
        guard let h = FileHandle(forWritingAtPath: path) else { return }
        defer { try? h.close() }
        h.seekToEndOfFile()
        h.write(try report.jsonLine() + Data("\n".utf8))
    }

    /// Held-out evaluation of the final version and the summary line.
    private func finish() throws -> String {
        var summary = "trained \(state.step) steps; actor v\(state.version); \(state.totals.rollouts) rollouts (\(state.totals.passed) passed, \(state.totals.stale) stale, \(state.totals.unscored) unscored)"
        let points = config.data.heldoutPoints
        guard !heldout.isEmpty, !points.isEmpty else { return summary }
        var afterIssuedMs: UInt64? = nil
        if points.contains(.after) && state.evalAfterVersion != state.version {
            afterIssuedMs = nowMs()
            try issueEval(.after)
            state.evalAfterVersion = state.version
            try saveCheckpoint()
        }
        var before: [String: Bool]? = nil, warm: [String: Bool]? = nil, after: [String: Bool]? = nil
        let warmName = state.evalWarmVersion.map { "warm-v\($0)" }
        let deadline = nowMs() + 3_600_000
        while !stopFlag.isSet && nowMs() < deadline {
            // Each evaluation once every held-out problem's greedy program has its verdict.
            let done = try HeldOutEvaluation.all(in: ledger).filter { $0.pending == 0 && $0.passed.count >= heldout.count }
            before = done.last { $0.point == PipelineConfig.HeldOutPoint.before.rawValue }?.passed
            if let warmName { warm = done.last { $0.name == warmName }?.passed }
            after = done.last { $0.name == "after-v\(state.version)" }?.passed
            if (before != nil || !state.evalBeforeIssued) && (after != nil || !points.contains(.after))
                && (warmName == nil || warm != nil) { break }
            serviceSamplers(timeoutMs: 500)
        }
        // How long the samplers and executors took over the final evaluation (greedy, batched).
        let afterSeconds = after == nil ? nil : afterIssuedMs.map { Double(nowMs() - $0) / 1000 }
        if let afterSeconds, let after {
            log("held-out evaluation after training: \(after.count) problems in \(String(format: "%.1f", afterSeconds)) s")
        }
        func rate(_ r: [String: Bool]?) -> String {
            guard let r else { return "n/a" }
            let passed = r.values.filter { $0 }.count
            return String(format: "%.1f%% (%d/%d)", Double(passed) * 100 / Double(max(1, r.count)), passed, r.count)
        }
        summary += "\nheld-out pass rate (greedy): "
            + [state.evalBeforeIssued ? "before \(rate(before))" : nil, warmName != nil ? "after warm-start \(rate(warm))" : nil,
               points.contains(.after) ? "after \(rate(after))" + (afterSeconds.map { String(format: " (evaluated in %.1f s)", $0) } ?? "") : nil]
            .compactMap { $0 }.joined(separator: ", ")
        // Paired: the same problems before and after, McNemar's exact test on those that changed.
        for (name, a) in [("base", before), ("warm-start", warm)] {
            guard let a, let after else { continue }
            let shared = a.keys.filter { after[$0] != nil }.sorted()
            let c = PairedComparison(shared.map { PairedComparison.Problem(id: $0, a: a[$0]! ? 1 : 0, b: after[$0]! ? 1 : 0) })
            summary += String(format: "\nafter vs %@: %+.1f points (95%% interval %+.1f to %+.1f), %d gained, %d lost, McNemar p = %.3g",
                              name, c.difference * 100, c.interval.low * 100, c.interval.high * 100, c.gained.count, c.lost.count, c.pValue)
        }
        try AtomicFile.write(Data((summary + "\n").utf8), to: checkpointRoot + "/summary.txt")
        return summary
    }
}

/// One value handed from a worker thread to the thread waiting for it.
final class Handoff<T>: @unchecked Sendable {  // guarded by the lock
    private let lock = NSLock()
    private var value: T?
    func put(_ v: T) { lock.withLock { value = v } }
    func take() -> T? { lock.withLock { defer { value = nil }; return value } }
}
