import CodeRL
import Foundation
import Llama
import ModelIO
import Runtime
import Schema
import Synchronization
import Tensor
import Training
import Wire
import ZeroMQ

/// The sampler role: asks the learner for up to `batchRequests` requests at a time, generates
/// K programs per problem plus the greedy baseline for all of them as one batch (each prompt
/// prefilled once), and hands each request's programs to the critic-labeler, which
/// acknowledges once they are in the ledger; then it tells the learner the request is done.
///
/// Generation runs on a worker thread so the event loop keeps heart-beating (the learner
/// re-issues the request of a sampler that goes silent). Weights and the tokenizer come from
/// the param-store, cached in `cacheDirectory`.
public final class SamplerService: @unchecked Sendable {  // sockets are used by the event loop only
    public struct Settings: Sendable {
        public var name: String
        public var learnerEndpoint: String
        public var labelerEndpoint: String
        public var paramsEndpoint: String
        public var cacheDirectory: String
        public var heartbeatInterval: Duration = .seconds(1)
        /// A batch not acknowledged by the labeler is sent again after this long...
        public var resendAfter: Duration = .seconds(5)
        /// ...and given up (the learner re-issues the request) after this long.
        public var giveUpAfter: Duration = .seconds(300)
        /// The arithmetic of the model's matrix products (bf16: weights packed once per version).
        public var precision: MatrixPrecision = .fp32
        /// CURVE toward the learner, the labeler and the param-store.
        public var security = LinkSecurity.plain
        /// Requests taken at once and generated as one batch.
        public var batchRequests = 16

        public init(name: String, learnerEndpoint: String, labelerEndpoint: String, paramsEndpoint: String, cacheDirectory: String) {
            self.name = name
            self.learnerEndpoint = learnerEndpoint
            self.labelerEndpoint = labelerEndpoint
            self.paramsEndpoint = paramsEndpoint
            self.cacheDirectory = cacheDirectory
        }

        /// A pipeline's sampler: its endpoints and `sampling.precision` from the config (an
        /// error when this CPU cannot run it).
        public init(config: PipelineConfig, name: String, cacheDirectory: String) throws {
            self.init(name: name, learnerEndpoint: config.endpoints.samples, labelerEndpoint: config.endpoints.rollouts,
                      paramsEndpoint: config.endpoints.params, cacheDirectory: cacheDirectory)
            precision = try MatrixPrecision(config.sampling.precision, key: "sampling.precision")
            batchRequests = config.sampling.batchRequests
            security = try LinkSecurity(config: config, role: .sampler)
        }
    }

    public let settings: Settings
    private let log: Log
    public let stopFlag = StopFlag()
    private var sender: Sender
    private var weights: WeightClient?
    /// The actor in memory, by version and SHA-256 (an evaluation serves its own "version 0").
    /// The actor in memory: its version and identity, the tokenizer's identity, and (for a
    /// checkpoint) each tensor's checksum, which lets the next version be applied in place.
    private var loaded: (version: UInt64, sha256: Data, tokenizer: Data, generator: Generator, checksums: [String: String]?)?

    /// Generation results handed from the worker thread to the event loop, one per request.
    private let finished = Mutex<[(SampleRequest, Result<RolloutBatch, any Error>)]?>(nil)
    public private(set) var requestsDone = 0

    public init(settings: Settings, log: Log) {
        self.settings = settings
        self.log = log
        sender = Sender(name: settings.name)
    }

    public func stop() { stopFlag.set() }

    /// A finished request's programs on their way to the labeler (or the requester).
    private struct Delivery {
        var request: SampleRequest
        var batch: RolloutBatch
        var id: String
        var first: ContinuousClock.Instant
        var last: ContinuousClock.Instant
    }

    public func run() throws {
        let context = try Context()
        defer { context.shutdown() }
        let learner = try Socket(context, .dealer)
        try learner.setRoutingID(Array(settings.name.utf8))
        try learner.setLinger(.zero)
        try learner.setMaxMessageSize(MessageSizeLimit.requests)
        try settings.security.connect(learner)
        try learner.connect(settings.learnerEndpoint)
        let labeler = try Socket(context, .dealer)
        try labeler.setRoutingID(Array(settings.name.utf8))
        try labeler.setLinger(.zero)
        try labeler.setHighWaterMarks(send: 0, receive: 0)
        try labeler.setMaxMessageSize(MessageSizeLimit.requests)
        try settings.security.connect(labeler)
        try labeler.connect(settings.labelerEndpoint)
        log("asking \(settings.learnerEndpoint) for up to \(settings.batchRequests) requests at a time; rollouts go to \(settings.labelerEndpoint); \(settings.security.summary)")

        var held: [SampleRequest] = []             // received, not started
        var working: [SampleRequest] = []          // being generated as one batch
        var pending: [Delivery] = []               // sent, not acknowledged
        var lastArrival = ContinuousClock.now
        var nextBeat = ContinuousClock.now
        var holding: [String] { held.map(\.requestID) + working.map(\.requestID) + pending.map(\.request.requestID) }
        func askForWork() throws {
            try sender.send(learner, .workRequest(WorkRequest.with { $0.worker = settings.name; $0.capacity = UInt32(settings.batchRequests) }))
            nextBeat = ContinuousClock.now + settings.heartbeatInterval
        }
        // The batch of `pending[i]` reached its destination: tell the learner; ask for more
        // when nothing is held any more.
        func delivered(_ i: Int) throws {
            let request = pending.remove(at: i).request
            requestsDone += 1
            try sender.send(learner, .ack(Ack.with { $0.messageID = request.requestID }))
            if holding.isEmpty { try askForWork() }
        }
        func refuse(_ id: String, _ code: String, _ detail: String) throws {
            try sender.send(learner, .error(ErrorReply.with { $0.messageID = id; $0.code = code; $0.detail = detail }))
        }
        while !stopFlag.isSet {
            let now = ContinuousClock.now
            if now >= nextBeat {
                if holding.isEmpty {
                    try askForWork()
                } else {
                    try sender.send(learner, .heartbeat(Heartbeat.with { $0.role = "sampler"; $0.instance = settings.name; $0.jobIds = holding }))
                    nextBeat = now + settings.heartbeatInterval
                }
            }
            // Finished generations: send each request's programs on.
            if let results = finished.withLock({ r in defer { r = nil }; return r }) {
                working = []
                for (request, result) in results {
                    switch result {
                    case .success(let batch):
                        let id = "batch-" + request.requestID
                        try sender.send(request.replyToRequester ? learner : labeler, .rollouts(batch), id: id)
                        pending.append(Delivery(request: request, batch: batch, id: id, first: now, last: now))
                    case .failure(let error):
                        log("request \(request.requestID) failed: \(error)")
                        try refuse(request.requestID, error is WeightFetchError ? "unknown-version" : "sampling-failed", String("\(error)".prefix(1000)))
                    }
                }
                if holding.isEmpty { try askForWork() }
            }
            // Requests arrive together (the learner hands out a batch at once): start when
            // none came for a moment.
            if working.isEmpty && !held.isEmpty && now - lastArrival > .milliseconds(20) {
                // One batch per actor version: the first request's, the rest wait.
                let version = held[0].policyVersion
                working = held.filter { $0.policyVersion == version }
                held.removeAll { $0.policyVersion == version }
                let box = UncheckedBox(self), batch = working
                Thread { box.value.work(batch) }.start()
            }
            var index = 0
            while index < pending.count {
                let p = pending[index]
                if now - p.first > settings.giveUpAfter {
                    log("the \(p.request.replyToRequester ? "requester" : "labeler") did not acknowledge \(p.request.requestID) for \(settings.giveUpAfter); giving it back to the learner")
                    try refuse(p.request.requestID, "labeler-unreachable", "no acknowledgement")
                    pending.remove(at: index)
                    if holding.isEmpty { try askForWork() }
                    continue
                } else if now - p.last > settings.resendAfter {
                    try sender.send(p.request.replyToRequester ? learner : labeler, .rollouts(p.batch), id: p.id)
                    pending[index].last = now
                }
                index += 1
            }
            let ready = try Poller.poll([learner, labeler], timeout: .milliseconds(held.isEmpty ? 50 : 10))
            if ready[1] {
                while let incoming = try labeler.receiveMessage(router: false) {
                    guard case .message(_, let message) = incoming else {
                        if case .rejected(_, let reason) = incoming { log("bad message from the labeler: \(reason)") }
                        continue
                    }
                    switch message.body {
                    case .ack(let ack):
                        if let i = pending.firstIndex(where: { $0.id == ack.messageID }) { try delivered(i) }
                    case .error(let e):
                        log("labeler refused \(e.messageID): \(e.code): \(e.detail)")
                        if let i = pending.firstIndex(where: { $0.id == e.messageID }) {
                            try refuse(pending[i].request.requestID, e.code, e.detail)
                            pending.remove(at: i)
                            if holding.isEmpty { try askForWork() }
                        }
                    default:
                        break
                    }
                }
            }
            if ready[0] {
                while let incoming = try learner.receiveMessage(router: false) {
                    switch incoming {
                    case .rejected(_, let reason):
                        log("bad message from the learner: \(reason)")
                    case .message(_, let message):
                        if case .ack(let ack) = message.body, let i = pending.firstIndex(where: { $0.id == ack.messageID && $0.request.replyToRequester }) {
                            try delivered(i)
                            continue
                        }
                        guard case .sampleRequest(let request) = message.body else { continue }
                        if holding.contains(request.requestID) { continue }
                        if holding.count >= settings.batchRequests {
                            try refuse(request.requestID, "busy", "holding \(holding.count) requests")
                            continue
                        }
                        guard request.problems.count == request.problemIds.count else {
                            try refuse(request.requestID, "bad-message", "the request carries no prompt tokens")
                            continue
                        }
                        held.append(request)
                        lastArrival = ContinuousClock.now
                    }
                }
            }
        }
        log("stopped after \(requestsDone) requests")
    }

    private func work(_ requests: [SampleRequest]) {
        let results: [(SampleRequest, Result<RolloutBatch, any Error>)]
        do {
            let batches = try generate(requests)
            results = zip(requests, batches).map { ($0, .success($1)) }
        } catch {
            results = requests.map { ($0, .failure(error)) }
        }
        finished.withLock { $0 = results }
    }

    /// Loads the requested version (and the tokenizer) when needed. The manifest is asked for
    /// every time: versions are immutable within one param-store, but a sampler may outlive
    /// an evaluation's store that served another model under the same number. When the store
    /// cannot be reached, the version already in memory is used.
    func generator(version: UInt64) throws -> Generator {
        if weights == nil {
            var weightSettings = WeightClient.Settings(endpoint: settings.paramsEndpoint, cacheDirectory: settings.cacheDirectory, name: settings.name + "-weights")
            weightSettings.security = settings.security
            weights = try WeightClient(settings: weightSettings, log: log)
        }
        let actor: (String, WeightManifest), vocabulary: (String, WeightManifest)
        do {
            vocabulary = try fetch("tokenizer", 0)
            actor = try fetch("actor", version)
        } catch let error where loaded?.version == version {
            log("using actor v\(version) already loaded: \(error)")
            return loaded!.generator
        }
        if let loaded, loaded.version == version, loaded.sha256 == actor.1.sha256, loaded.tokenizer == vocabulary.1.sha256 {
            return loaded.generator
        }
        let started = ContinuousClock.now
        defer { Telemetry.seconds(.weightLoadSeconds, (ContinuousClock.now - started).seconds, [("model", "actor")]) }
        let previous = loaded
        loaded = nil  // until the new version is wholly in memory
        let reader = try? Checkpoint.Reader(path: actor.0)
        if let previous, let reader, let checksums = previous.checksums, previous.tokenizer == vocabulary.1.sha256,
           reader.config == previous.generator.model.config {
            // In place: only the tensors that changed since the version in memory are read (and
            // packed again under bf16).
            let changed = reader.changed(since: checksums)
            let weights = previous.generator.model.weights
            try reader.read(into: weights, only: changed)
            Failpoint.reach(.weightsApplying, "actor v\(version) over v\(previous.version)", log: log)
            previous.generator.model.weightsChanged(changed)
            loaded = (version, actor.1.sha256, vocabulary.1.sha256, previous.generator, reader.checksums)
            log(String(format: "applied actor v%llu over v%llu in place: %d of %d tensors changed, %.2f s", version, previous.version,
                       changed.count, weights.namedTensors.count, (ContinuousClock.now - started).seconds))
            return previous.generator
        }
        let tokenizer = try Tokenizer(gguf: try GGUFFile(path: vocabulary.0))
        let model = try LoadedModel.load(actor.0)
        let generator = Generator(model: LlamaModel(weights: model.weights, precision: settings.precision), tokenizer: tokenizer)
        loaded = (version, actor.1.sha256, vocabulary.1.sha256, generator, reader?.checksums)
        log("loaded actor v\(version); matrix products in \(settings.precision.rawValue)\(settings.precision == .bf16 ? " (weights packed once as bf16)" : "")")
        return generator
    }

    private func fetch(_ model: String, _ version: UInt64) throws -> (String, WeightManifest) {
        do { return try weights!.fetch(model: model, version: version) } catch {
            throw WeightFetchError(description: "\(error)")
        }
    }

    /// The programs of one request.
    func generate(_ request: SampleRequest) throws -> RolloutBatch {
        try generate([request])[0]
    }

    /// The programs of several requests of one actor version, every problem of every request
    /// decoded as one batch; one `RolloutBatch` per request, in order.
    func generate(_ requests: [SampleRequest]) throws -> [RolloutBatch] {
        guard let version = requests.first?.policyVersion else { return [] }
        precondition(requests.allSatisfy { $0.policyVersion == version }, "one batch, one actor version")
        let generator = try generator(version: version)
        let started = ContinuousClock.now
        var jobs: [Generator.Job] = []
        for request in requests {
            for (index, problem) in request.problems.enumerated() {
                let s = request.sampling
                var parameters = SamplingParameters(temperature: s.temperature, topK: Int(s.topK), topP: s.topP == 0 ? 1 : s.topP,
                                                    seed: s.seed &+ UInt64(index) &* 0x9E37_79B9_7F4A_7C15,
                                                    maxNewTokens: Int(max(1, s.maxNewTokens)), stopStrings: [PromptFormat.closingFence])
                if request.samplesPerProblem == 0 { parameters.temperature = 0 }
                jobs.append(Generator.Job(prompt: problem.promptTokens.map(Int.init), samples: Int(request.samplesPerProblem),
                                          parameters: parameters, greedyBaseline: request.includeBaseline))
            }
        }
        let (sequences, stats) = try generator.generate(jobs)
        var batches: [RolloutBatch] = []
        var job = 0, programs = 0
        for request in requests {
            var batch = RolloutBatch()
            batch.requestID = request.requestID
            batch.sampler = settings.name
            for problem in request.problems {
                for (i, seq) in sequences[job].enumerated() {
                    var r = Rollout()
                    r.problemID = problem.problemID
                    r.promptTokens = problem.promptTokens
                    r.programTokens = seq.tokens.map { UInt32($0) }
                    r.logprobs = seq.modelLogProbs.map { $0.isFinite ? $0 : -1e30 }
                    r.policyVersion = request.policyVersion
                    r.sampler = settings.name
                    r.baseline = seq.greedy
                    r.completion = seq.text
                    r.program = PromptFormat.program(fromCompletion: seq.text)
                    r.requestID = request.requestID
                    r.sampleIndex = UInt32(i)
                    r.use = request.use
                    batch.rollouts.append(r)
                }
                job += 1
            }
            programs += batch.rollouts.count
            batches.append(batch)
        }
        let seconds = (ContinuousClock.now - started).seconds
        let tokens = stats.generatedTokens
        Telemetry.count(.samplerPrograms, by: programs)
        Telemetry.count(.samplerTokens, by: tokens)
        Telemetry.seconds(.samplerRequestSeconds, seconds)
        Telemetry.gauge(.samplerTokensPerSecond, Double(tokens) / max(seconds, 1e-9))
        Telemetry.gauge(.samplerBatchSequences, Double(sequences.map(\.count).reduce(0, +)))
        let names = requests.count == 1 ? requests[0].requestID : "\(requests.count) requests (\(requests[0].requestID)...)"
        log(String(format: "%@: %d programs, %d tokens in %.1f s (prefill %.1f s, decode %.1f tok/s) with actor v%llu",
                   names, programs, tokens, seconds, stats.prefillSeconds, stats.decodeTokensPerSecond, version))
        return batches
    }
}

struct WeightFetchError: Error, CustomStringConvertible { let description: String }

/// Hands a non-Sendable value to a thread that is the only one using it meanwhile.
public struct UncheckedBox<T>: @unchecked Sendable {
    public let value: T
    public init(_ value: T) { self.value = value }
}
