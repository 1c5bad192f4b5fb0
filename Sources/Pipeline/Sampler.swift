import CodeRL
import Foundation
import Llama
import ModelIO
import Schema
import Synchronization
import Tensor
import Training
import Wire
import ZeroMQ
import Runtime

/// The sampler role: asks the learner for work, generates K programs per problem plus the
/// greedy baseline from one prompt prefill, and hands them to the critic-labeler, which
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
            security = try LinkSecurity(config: config, role: .sampler)
        }
    }

    public let settings: Settings
    private let log: Log
    public let stopFlag = StopFlag()
    private var sender: Sender
    private var weights: WeightClient?
    /// The actor in memory, by version and SHA-256 (an evaluation serves its own "version 0").
    private var loaded: (version: UInt64, sha256: Data, tokenizer: Data, generator: Generator)?

    /// Generation results handed from the worker thread to the event loop.
    private let finished = Mutex<Result<RolloutBatch, any Error>?>(nil)
    public private(set) var requestsDone = 0

    public init(settings: Settings, log: Log) {
        self.settings = settings
        self.log = log
        sender = Sender(name: settings.name)
    }

    public func stop() { stopFlag.set() }

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
        log("asking \(settings.learnerEndpoint) for work; rollouts go to \(settings.labelerEndpoint); \(settings.security.summary)")

        var current: SampleRequest? = nil          // being generated
        var pending: (request: SampleRequest, batch: RolloutBatch, id: String, first: ContinuousClock.Instant, last: ContinuousClock.Instant)? = nil
        var nextBeat = ContinuousClock.now
        // The batch of `pending` reached its destination: tell the learner, ask for more.
        func delivered() throws {
            let request = pending!.request
            pending = nil
            requestsDone += 1
            try sender.send(learner, .ack(Ack.with { $0.messageID = request.requestID }))
            try sender.send(learner, .workRequest(WorkRequest.with { $0.worker = settings.name; $0.capacity = 1 }))
            nextBeat = ContinuousClock.now + settings.heartbeatInterval
        }
        while !stopFlag.isSet {
            let now = ContinuousClock.now
            if now >= nextBeat {
                if current == nil && pending == nil {
                    try sender.send(learner, .workRequest(WorkRequest.with { $0.worker = settings.name; $0.capacity = 1 }))
                } else {
                    let id = current?.requestID ?? pending!.request.requestID
                    try sender.send(learner, .heartbeat(Heartbeat.with { $0.role = "sampler"; $0.instance = settings.name; $0.jobIds = [id] }))
                }
                nextBeat = now + settings.heartbeatInterval
            }
            // A finished generation: send it to the labeler.
            if let result = finished.withLock({ r in defer { r = nil }; return r }), let request = current {
                current = nil
                switch result {
                case .success(let batch):
                    let id = "batch-" + request.requestID
                    try sender.send(request.replyToRequester ? learner : labeler, .rollouts(batch), id: id)
                    pending = (request, batch, id, now, now)
                case .failure(let error):
                    log("request \(request.requestID) failed: \(error)")
                    try sender.send(learner, .error(ErrorReply.with {
                        $0.messageID = request.requestID
                        $0.code = error is WeightFetchError ? "unknown-version" : "sampling-failed"
                        $0.detail = String("\(error)".prefix(1000))
                    }))
                }
            }
            if let p = pending {
                if now - p.first > settings.giveUpAfter {
                    log("the \(p.request.replyToRequester ? "requester" : "labeler") did not acknowledge \(p.request.requestID) for \(settings.giveUpAfter); giving it back to the learner")
                    try sender.send(learner, .error(ErrorReply.with { $0.messageID = p.request.requestID; $0.code = "labeler-unreachable"; $0.detail = "no acknowledgement" }))
                    pending = nil
                } else if now - p.last > settings.resendAfter {
                    try sender.send(p.request.replyToRequester ? learner : labeler, .rollouts(p.batch), id: p.id)
                    pending!.last = now
                }
            }
            let ready = try Poller.poll([learner, labeler], timeout: .milliseconds(50))
            if ready[1] {
                while let incoming = try labeler.receiveMessage(router: false) {
                    guard case .message(_, let message) = incoming else {
                        if case .rejected(_, let reason) = incoming { log("bad message from the labeler: \(reason)") }
                        continue
                    }
                    switch message.body {
                    case .ack(let ack) where ack.messageID == pending?.id:
                        try delivered()
                    case .error(let e):
                        log("labeler refused \(e.messageID): \(e.code): \(e.detail)")
                        if e.messageID == pending?.id {
                            try sender.send(learner, .error(ErrorReply.with { $0.messageID = pending!.request.requestID; $0.code = e.code; $0.detail = e.detail }))
                            pending = nil
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
                        if case .ack(let ack) = message.body, ack.messageID == pending?.id, pending!.request.replyToRequester {
                            try delivered()
                            continue
                        }
                        guard case .sampleRequest(let request) = message.body else { continue }
                        if current != nil || pending != nil {
                            let busy = current?.requestID ?? pending!.request.requestID
                            if request.requestID != busy {
                                try sender.send(learner, .error(ErrorReply.with { $0.messageID = request.requestID; $0.code = "busy"; $0.detail = "working on \(busy)" }))
                            }
                            continue
                        }
                        guard request.problems.count == request.problemIds.count else {
                            try sender.send(learner, .error(ErrorReply.with { $0.messageID = request.requestID; $0.code = "bad-message"; $0.detail = "the request carries no prompt tokens" }))
                            continue
                        }
                        current = request
                        let box = UncheckedBox(self)
                        Thread { box.value.work(request) }.start()
                    }
                }
            }
        }
        log("stopped after \(requestsDone) requests")
    }

    private func work(_ request: SampleRequest) {
        let result = Result { try generate(request) }
        finished.withLock { $0 = result }
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
        let tokenizer = try Tokenizer(gguf: try GGUFFile(path: vocabulary.0))
        let model = try LoadedModel.load(actor.0)
        let generator = Generator(model: LlamaModel(weights: model.weights, precision: settings.precision), tokenizer: tokenizer)
        loaded = (version, actor.1.sha256, vocabulary.1.sha256, generator)
        log("loaded actor v\(version)\(settings.precision == .bf16 ? " (matrix products from bf16 weights)" : "")")
        return generator
    }

    private func fetch(_ model: String, _ version: UInt64) throws -> (String, WeightManifest) {
        do { return try weights!.fetch(model: model, version: version) } catch {
            throw WeightFetchError(description: "\(error)")
        }
    }

    func generate(_ request: SampleRequest) throws -> RolloutBatch {
        let generator = try generator(version: request.policyVersion)
        let started = ContinuousClock.now
        var batch = RolloutBatch()
        batch.requestID = request.requestID
        batch.sampler = settings.name
        var tokens = 0
        for (index, problem) in request.problems.enumerated() {
            let s = request.sampling
            var parameters = SamplingParameters(temperature: s.temperature, topK: Int(s.topK), topP: s.topP == 0 ? 1 : s.topP,
                                                seed: s.seed &+ UInt64(index) &* 0x9E37_79B9_7F4A_7C15,
                                                maxNewTokens: Int(max(1, s.maxNewTokens)), stopStrings: [PromptFormat.closingFence])
            if request.samplesPerProblem == 0 { parameters.temperature = 0 }
            let prompt = problem.promptTokens.map(Int.init)
            let (sequences, _) = try generator.generate(prompt: prompt, samples: Int(request.samplesPerProblem), parameters: parameters,
                                                        greedyBaseline: request.includeBaseline)
            for (i, seq) in sequences.enumerated() {
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
                r.purpose = request.purpose.isEmpty ? "train" : request.purpose
                tokens += seq.tokens.count
                batch.rollouts.append(r)
            }
        }
        let seconds = (ContinuousClock.now - started).seconds
        Telemetry.count("coderl_sampler_programs_total", by: batch.rollouts.count)
        Telemetry.count("coderl_sampler_tokens_total", by: tokens)
        Telemetry.seconds("coderl_sampler_request_seconds", seconds)
        Telemetry.gauge("coderl_sampler_tokens_per_second", Double(tokens) / max(seconds, 1e-9))
        log(String(format: "%@: %d programs, %d tokens in %.1f s (%.1f tokens/s) with actor v%llu",
                   request.requestID, batch.rollouts.count, tokens, seconds, Double(tokens) / max(seconds, 1e-9), request.policyVersion))
        return batch
    }
}

struct WeightFetchError: Error, CustomStringConvertible { let description: String }

/// Hands a non-Sendable value to a thread that is the only one using it meanwhile.
public struct UncheckedBox<T>: @unchecked Sendable {
    public let value: T
    public init(_ value: T) { self.value = value }
}
