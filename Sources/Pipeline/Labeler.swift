import CodeRL
import Execution
import Foundation
import Ledger
import Llama
import Runtime
import Schema
import Training
import Wire
import ZeroMQ

/// The critic-labeler role: takes generated rollouts from samplers into the ledger, has
/// executors judge them (see `Dispatcher`), turns verdicts into rewards and returns, attaches
/// the critic's per-token weights, and marks each rollout labeled.
///
/// Everything it knows is in the ledger: on start it picks up rollouts not yet labeled
/// (`generated` or `executed`) and carries on, so killing it loses nothing. A batch resent by a
/// sampler is recognised by its request id and stored once.
public final class LabelerService {
    public struct Settings: Sendable {
        public var name = "critic-labeler"
        public var ledgerPath: String
        public var rolloutsEndpoint: String
        public var executorsEndpoint: String
        public var paramsEndpoint: String
        public var announcementsEndpoint: String
        public var cacheDirectory: String
        public var leaseMs: UInt64 = 60_000
        public var heartbeatTimeoutMs: UInt64 = 5000
        public var maxAttempts: UInt32 = 8
        public var limits = ExecutionLimits()
        public var returnMode: Rewards.ReturnMode = .relative
        public var baseline: Rewards.Baseline = .greedy
        public var reward: Rewards.Scheme = .coderl
        public var criticWeights = true
        /// CURVE on the rollouts and executor sockets (links `rollouts` and `executors`) and
        /// toward the param-store.
        public var security = LinkSecurity.plain

        /// The settings a pipeline configuration gives (CURVE keys are read by the caller).
        public init(config: PipelineConfig) {
            self.init(ledgerPath: config.ledgerPath, rolloutsEndpoint: config.endpoints.rollouts, executorsEndpoint: config.endpoints.executors,
                      paramsEndpoint: config.endpoints.params, announcementsEndpoint: config.endpoints.announcements,
                      cacheDirectory: config.run.directory + "/cache/critic-labeler")
            leaseMs = UInt64(config.execution.leaseMs)
            heartbeatTimeoutMs = UInt64(config.execution.heartbeatTimeoutMs)
            maxAttempts = UInt32(config.execution.maxAttempts)
            limits = ExecutionLimits.with {
                $0.secondsPerTest = config.execution.secondsPerTest
                $0.memoryBytes = UInt64(config.execution.memoryMB) << 20
                $0.stopAtFirstFailure = config.execution.stopAtFirstFailure
            }
            returnMode = config.training.returnMode == .absolute ? .absolute : .relative
            baseline = config.sampling.baseline == .groupMean ? .groupMean : .greedy
            reward = config.training.reward == .pass ? .pass : .coderl
            criticWeights = config.training.criticWeights
        }

        public init(ledgerPath: String, rolloutsEndpoint: String, executorsEndpoint: String, paramsEndpoint: String,
                    announcementsEndpoint: String, cacheDirectory: String) {
            self.ledgerPath = ledgerPath
            self.rolloutsEndpoint = rolloutsEndpoint
            self.executorsEndpoint = executorsEndpoint
            self.paramsEndpoint = paramsEndpoint
            self.announcementsEndpoint = announcementsEndpoint
            self.cacheDirectory = cacheDirectory
        }
    }

    struct GroupKey: Hashable { let request: String; let problem: String }

    public let settings: Settings
    private let log: Log
    public let stopFlag = StopFlag()
    private let ledger: Ledger
    /// The executors (created when the event loop starts).
    private var pool: ExecutorPool!
    private var sender: Sender
    /// Unlabeled rollouts by sequence, and the members of each group.
    private var rollouts: [UInt64: Rollout] = [:]
    private var groups: [GroupKey: [UInt64]] = [:]
    private var suites: [String: (hash: [UInt8], suite: TestSuite)] = [:]
    /// The critic in memory, its version and each tensor's checksum (the next version is read
    /// over it in place: only the tensors that changed).
    private var critic: (version: UInt64, trainer: CriticTrainer, checksums: [String: String])?
    private var weights: WeightClient?
    private var lastWaitingNote: UInt64 = 0
    public private(set) var labeled = 0
    public private(set) var executed = 0

    /// `ledger`: an environment this process already has open on `settings.ledgerPath` (LMDB
    /// must not be opened twice in one process); nil opens it.
    public init(settings: Settings, log: Log, ledger: Ledger? = nil) throws {
        self.settings = settings
        self.log = log
        self.ledger = try ledger ?? Ledger(path: settings.ledgerPath)
        sender = Sender(name: settings.name)
    }

    public func stop() { stopFlag.set() }

    static func jobID(_ sequence: UInt64) -> String { "r\(sequence)" }
    static func sequence(ofJob id: String) -> UInt64? { id.hasPrefix("r") ? UInt64(id.dropFirst()) : nil }

    /// Picks up what an earlier run left unlabeled.
    private func recover() throws {
        var found = 0
        try ledger.scanRollouts { r in
            if r.state == .generated || r.state == .executing || r.state == .executed {
                track(r)
                found += 1
            }
            return true
        }
        if found > 0 { log("resuming \(found) unlabeled rollouts from the ledger") }
        for seq in rollouts.keys.sorted() where rollouts[seq]!.state != .executed { try schedule(seq) }
    }

    private func track(_ r: Rollout) {
        rollouts[r.sequence] = r
        groups[GroupKey(request: r.requestID, problem: r.problemID), default: []].append(r.sequence)
    }

    private func suite(for problemID: String) throws -> (hash: [UInt8], suite: TestSuite) {
        if let known = suites[problemID] { return known }
        guard let problem = try ledger.problem(id: problemID) else { throw PipelineError("unknown problem '\(problemID)'") }
        let hash = [UInt8](problem.hiddenTests)
        guard !hash.isEmpty, let suite = try ledger.testSuite(hash: hash) else {
            throw PipelineError("problem '\(problemID)' has no hidden tests in the ledger")
        }
        suites[problemID] = (hash, suite)
        return (hash, suite)
    }

    /// Queues a rollout for execution, or takes its verdict from the cache.
    private func schedule(_ sequence: UInt64) throws {
        guard let r = rollouts[sequence] else { return }
        let (hash, suite) = try suite(for: r.problemID)
        if let cached = try ledger.cachedVerdict(program: r.program, suite: hash) {
            try record(sequence, verdict: cached, cached: true)
            return
        }
        pool.add(ExecutionJob.with {
            $0.jobID = Self.jobID(sequence)
            $0.problemID = r.problemID
            $0.program = r.program
            $0.suite = suite
            $0.suiteHash = Data(hash)
            $0.limits = settings.limits
        })
    }

    private func record(_ sequence: UInt64, verdict: Verdict, cached: Bool) throws {
        guard var r = rollouts[sequence] else { return }
        r.verdict = verdict
        r.state = .executed
        rollouts[sequence] = r
        try ledger.update(sequences: [sequence]) { $0.verdict = verdict; $0.state = .executed }
        if !cached && verdict.outcome != .unspecified {
            try ledger.cacheVerdict(verdict, program: r.program, suite: [UInt8](r.testSuite))
        }
        executed += 1
        if cached { Telemetry.count(.verdictCacheHits) }
        try labelIfComplete(GroupKey(request: r.requestID, problem: r.problemID))
    }

    /// Labels a group once every member has a verdict (or was parked).
    private func labelIfComplete(_ key: GroupKey) throws {
        guard let members = groups[key], members.allSatisfy({ rollouts[$0]?.state == .executed }) else { return }
        var group = members.map { rollouts[$0]! }
        if group.first?.use != .eval && settings.criticWeights
            && group.contains(where: { !$0.baseline && $0.verdict.outcome != .unspecified }) {
            guard let critic else {
                if nowMs() - lastWaitingNote > 10_000 {
                    log("waiting for a critic version from the param-store before labeling (\(groups.count) groups ready)")
                    lastWaitingNote = nowMs()
                }
                return
            }
            try Self.attachCriticWeights(&group, critic.trainer)
        }
        Rewards.label(&group, mode: settings.returnMode, baseline: settings.baseline, scheme: settings.reward)
        let updated = Dictionary(uniqueKeysWithValues: group.map { ($0.sequence, $0) })
        try ledger.update(sequences: members) { r in
            let u = updated[r.sequence]!
            r.reward = u.reward
            r.advantage = u.advantage
            r.criticWeights = u.criticWeights
            r.state = .labeled
        }
        for m in members { rollouts[m] = nil }
        groups[key] = nil
        labeled += members.count
        Telemetry.count(.rolloutsLabeled, by: members.count)
    }

    /// Sets each scored, sampled program's critic weights: the critic's probability of the
    /// program's true outcome at every program token (the greedy baseline is not trained on).
    public static func attachCriticWeights(_ group: inout [Rollout], _ trainer: CriticTrainer) throws {
        let needing = group.indices.filter { !group[$0].baseline && group[$0].verdict.outcome != .unspecified }
        guard !needing.isEmpty else { return }
        let binary = trainer.critic.classes == .binary
        let sequences = needing.map { (group[$0].promptTokens + group[$0].programTokens).map(Int.init) }
        let batch = try CriticBatch.programs(sequences, promptLengths: needing.map { group[$0].promptTokens.count },
                                             classes: trainer.critic.classes, pad: 0, vocabularySize: trainer.critic.config.vocabularySize)
        let classes = needing.map { Rewards.criticClass(group[$0].verdict.outcome, binary: binary)! }
        let weights = try trainer.tokenProbabilities(batch, classes: classes)
        for (k, i) in needing.enumerated() { group[i].criticWeights = weights[k] }
    }

    private func loadCritic(_ version: UInt64) {
        guard critic == nil || critic!.version < version else { return }
        do {
            if weights == nil {
                var weightSettings = WeightClient.Settings(endpoint: settings.paramsEndpoint, cacheDirectory: settings.cacheDirectory, name: settings.name + "-weights")
                weightSettings.security = settings.security
                weights = try WeightClient(settings: weightSettings, log: log)
            }
            let (path, _) = try weights!.fetch(model: "critic", version: version)
            let started = nowMs()
            let reader = try Checkpoint.Reader(path: path)
            let previous = critic
            critic = nil  // until the new version is wholly in memory
            if let previous, case let changed = reader.changed(since: previous.checksums),
               (try? previous.trainer.critic.read(reader, only: changed)) != nil {
                critic = (version, previous.trainer, reader.checksums)
                log("critic v\(version) applied over v\(previous.version) in place: \(changed.count) tensors changed")
            } else {
                critic = (version, try CriticTrainer(critic: try Critic.load(reader), trainedLayers: 1), reader.checksums)
                log("critic v\(version) loaded")
            }
            Telemetry.seconds(.weightLoadSeconds, Double(nowMs() - started) / 1000, [("model", "critic")])
            pool.touchAll(nowMs: nowMs())
            // Groups that waited for a critic.
            for key in Array(groups.keys) { try labelIfComplete(key) }
        } catch {
            log("cannot load critic v\(version): \(error)")
        }
    }

    // MARK: Event loop

    private var lastLedgerGauge: UInt64 = 0

    public func run() throws {
        let context = try Context()
        defer { context.shutdown() }
        let security = settings.security
        let authenticator = try security.authenticator(context: context) { [log] line in log(line) }
        defer { authenticator?.stop() }
        let samplers = try Socket(context, .router)
        try samplers.setLinger(.zero)
        try samplers.setHighWaterMarks(send: 0, receive: 0)
        try samplers.setMaxMessageSize(MessageSizeLimit.requests)
        try security.serve(samplers, .rollouts)
        try samplers.bind(settings.rolloutsEndpoint)
        pool = try ExecutorPool(context: context, endpoint: settings.executorsEndpoint,
                                curveKeys: security.executorServerKeys ?? security.serverKeys, domain: LinkSecurity.Link.executors.rawValue,
                                dispatcher: Dispatcher(leaseMs: settings.leaseMs, heartbeatTimeoutMs: settings.heartbeatTimeoutMs,
                                                       maxAttempts: settings.maxAttempts),
                                name: settings.name, log: log)
        defer { pool = nil }
        let handshakes = try security.watch(context: context, [(samplers, .rollouts), (pool.socket, .executors)]) { [log] line in log(line) }
        defer { handshakes?.stop() }
        let announcements = try Socket(context, .sub)
        try announcements.setLinger(.zero)
        try announcements.setMaxMessageSize(MessageSizeLimit.requests)
        try announcements.subscribe()
        try security.connect(announcements)
        try announcements.connect(settings.announcementsEndpoint)
        log("rollouts on \(settings.rolloutsEndpoint), executors on \(settings.executorsEndpoint); \(security.summary)")
        if let executorKeys = security.executorServerKeys ?? security.serverKeys {
            log("executors join with --server-key=\(executorKeys.publicKey)")
        }
        try recover()

        while !stopFlag.isSet {
            let ready = try Poller.poll([samplers, pool.socket, announcements], timeout: .milliseconds(100))
            if ready[2] {
                var newest: UInt64? = nil
                while let incoming = try announcements.receiveMessage(router: false) {
                    if case .message(_, let m) = incoming, case .announcement(let a) = m.body, a.model == "critic" {
                        newest = max(newest ?? 0, a.version)
                    }
                }
                if let newest, settings.criticWeights { loadCritic(newest) }
            }
            if ready[0] {
                while let incoming = try samplers.receiveMessage(router: true) { try handleSampler(incoming, samplers) }
            }
            if ready[1] {
                for o in try pool.receive() { try apply(o) }
            }
            for o in pool.maintain(nowMs: nowMs()) { try apply(o) }
            if nowMs() - lastLedgerGauge > 5000 {
                let size = (try? FileManager.default.attributesOfItem(atPath: ledger.path + "/data.mdb")[.size] as? UInt64) ?? nil
                Telemetry.gauge(.ledgerBytes, Double(size ?? 0))
                Telemetry.gauge(.rolloutsUnlabeled, Double(rollouts.count))
                lastLedgerGauge = nowMs()
            }
        }
        log("stopped: \(executed) executed, \(labeled) labeled; \(rollouts.count) unlabeled rollouts stay in the ledger for the next start")
    }

    private func handleSampler(_ incoming: Incoming, _ socket: Socket) throws {
        switch incoming {
        case .rejected(let peer, let reason):
            log("bad message from a sampler: \(reason)")
            if let peer { try sender.send(socket, .error(ErrorReply.with { $0.code = "bad-message"; $0.detail = String(reason.prefix(500)) }), to: peer) }
        case .message(let peer, let message):
            guard case .rollouts(let batch) = message.body else {
                if case .heartbeat = message.body { return }
                try sender.send(socket, .error(ErrorReply.with {
                    $0.messageID = message.envelope.messageID; $0.code = "bad-message"
                    $0.detail = "the labeler takes RolloutBatch, not \(WireCodec.bodyName(message.body))"
                }), to: peer)
                return
            }
            do {
                // Stored only as an answer to a request the learner gave this sampler.
                let sampler = String(decoding: peer ?? [], as: UTF8.self)
                guard let issued = try ledger.issued(batch.requestID) else {
                    throw PipelineError("request \(batch.requestID) was never issued by the learner")
                }
                if let why = issued.refusal(sampler: sampler, key: socket.lastPeerKey, problems: batch.rollouts.map(\.problemID)) {
                    throw PipelineError("not an answer to request \(batch.requestID): \(why)")
                }
                var records = batch.rollouts
                for i in records.indices {
                    records[i].testSuite = Data(try suite(for: records[i].problemID).hash)
                    records[i].state = .generated
                    if records[i].sampler.isEmpty { records[i].sampler = batch.sampler }
                    records[i].requestID = batch.requestID
                }
                if let sequences = try ledger.append(records, request: batch.requestID) {
                    Telemetry.count(.rolloutsReceived, by: sequences.count)
                    for (i, seq) in sequences.enumerated() {
                        var r = records[i]
                        r.sequence = seq
                        track(r)
                    }
                    for seq in sequences { try schedule(seq) }
                }
                try sender.send(socket, .ack(Ack.with { $0.messageID = message.envelope.messageID }), to: peer)
            } catch {
                log("refused rollouts of \(batch.requestID) from \(batch.sampler): \(error)")
                try sender.send(socket, .error(ErrorReply.with {
                    $0.messageID = message.envelope.messageID; $0.code = "refused"; $0.detail = String("\(error)".prefix(1000))
                }), to: peer)
            }
        }
    }

    private func apply(_ outcome: Dispatcher.Outcome) throws {
        switch outcome {
        case .verdict(let jobID, let verdict):
            guard let seq = Self.sequence(ofJob: jobID) else { return }
            try record(seq, verdict: verdict, cached: false)
        case .parked(let jobID, let reason):
            log("job \(jobID) parked, not scored: \(reason)")
            guard let seq = Self.sequence(ofJob: jobID) else { return }
            var v = Verdict()
            v.outcome = .unspecified
            v.errorType = "InfrastructureError"
            v.errorMessage = String(reason.prefix(500))
            try record(seq, verdict: v, cached: false)
        }
    }
}
