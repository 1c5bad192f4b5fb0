import Foundation
import Llama
import Optim
import Tensor

extension LlamaTrainer {
    /// Optimizer ranges of the trained tensors.
    public var parameterRanges: [ParameterRange] {
        trainedTensors.map { ParameterRange(offset: $0.offset, count: $0.count, decays: $0.decays) }
    }
}

/// Everything that trains the actor: weights, gradients, AdamW, schedule and state; one
/// `step` is gradient accumulation over micro-batches, clipping and an AdamW update.
public final class ActorSession: @unchecked Sendable {  // confined to the training thread
    public let weights: LlamaWeights
    public let trainer: LlamaTrainer
    public let optimizer: AdamW
    public private(set) var state: TrainingState

    public init(weights: LlamaWeights, state: TrainingState) throws {
        self.weights = weights
        self.state = state
        trainer = try LlamaTrainer(weights: weights, trainedLayers: state.trainedLayers, trainsOutputHead: state.trainsOutputHead ?? true,
                                   trainsEmbedding: state.trainsEmbedding ?? true)
        optimizer = AdamW(ranges: trainer.parameterRanges, settings: state.adamw)
        optimizer.restore(step: state.step)
    }

    public struct StepReport: Sendable {
        /// Mean over the micro-batches.
        public var losses: TokenLosses
        /// Each micro-batch's own losses, in order.
        public var parts: [TokenLosses]
        public var gradientNorm: Double
        /// With `termsAfter`: the gradient norms of the first parts and of the rest (each term's
        /// own contribution, before clipping; nil for a term with no parts); nil otherwise.
        public var termNorms: (first: Double?, rest: Double?)? = nil
        public var learningRate: Float
        public var tokens: Int
    }

    /// One optimizer step over `microBatches` (their gradients averaged), consuming
    /// `examples` examples of the data stream.
    public func step(_ microBatches: [TrainingBatch], mix: LossMix = LossMix(), examples: Int, rng: Xoshiro256) throws -> StepReport {
        let parts = microBatches.map { b -> (TrainingBatch, LossMix) in
            var m = mix
            m.scale = mix.scale / Float(microBatches.count)
            return (b, m)
        }
        return try step(parts: parts, examples: examples, rng: rng)
    }

    /// One optimizer step over micro-batches that each carry their own loss mix (scale
    /// included): e.g. cross-entropy on reference solutions and the policy gradient on
    /// rollouts, each averaged over its own micro-batches. The report averages over all parts.
    /// `termsAfter` k also measures the gradient norm of the first k parts and of the others
    /// apart (the update is the same): with parts on both sides, the first term's gradients are
    /// kept in `firstTerm` and the rest's are the total minus them.
    public func step(parts: [(TrainingBatch, LossMix)], examples: Int, rng: Xoshiro256, termsAfter: Int? = nil) throws -> StepReport {
        trainer.zeroGradients()
        var ce: Double = 0, pg: Double = 0, scored = 0, tokens = 0
        var each: [TokenLosses] = []
        let ranges = trainer.parameterRanges
        let split = termsAfter.map { min(max($0, 0), parts.count) }
        var firstNorm: Double? = nil
        for (i, (b, m)) in parts.enumerated() {
            if i == split && i > 0 { firstNorm = keepFirstTerm(ranges) }
            let l = try trainer.forwardBackward(b, mix: m)
            each.append(l)
            ce += Double(l.crossEntropy)
            pg += Double(l.weighted)
            scored += l.scoredTokens
            tokens += b.sequences * b.length
        }
        let g = trainer.gradients.buffer.pointer
        let norm = gradientNorm(g, ranges: ranges)
        var termNorms: (first: Double?, rest: Double?)? = nil
        if let k = split {
            if let firstNorm, let kept = firstTerm {
                // kept - total = -(the rest's gradients).
                var at = 0
                for r in ranges {
                    Kernels.axpy(-1, g + r.offset, kept.pointer + at, r.count)
                    at += r.count
                }
                termNorms = (firstNorm, gradientNorm(kept.pointer, ranges: [ParameterRange(offset: 0, count: at, decays: false)]))
            } else {
                termNorms = (k == 0 ? nil : norm, k == parts.count ? nil : norm)
            }
        }
        let lr = state.schedule.rate(at: state.step)
        optimizer.update(parameters: weights.buffer.pointer, gradients: trainer.gradients.buffer.pointer, learningRate: lr,
                         gradientScale: state.clipNorm.map { clipFactor(norm: norm, maxNorm: $0) } ?? 1)
        state.step = optimizer.step
        state.position += examples
        state.rng = rng
        let n = Double(max(parts.count, 1))
        return StepReport(losses: TokenLosses(crossEntropy: Float(ce / n), weighted: Float(pg / n), scoredTokens: scored),
                          parts: each, gradientNorm: norm, termNorms: termNorms, learningRate: lr, tokens: tokens)
    }

    /// The first term's trained gradients while a step measures its terms apart (reused).
    private var firstTerm: FloatBuffer?

    /// Copies the trained gradients into `firstTerm` and returns their norm.
    private func keepFirstTerm(_ ranges: [ParameterRange]) -> Double {
        let g = trainer.gradients.buffer.pointer
        let count = ranges.reduce(0) { $0 + $1.count }
        if firstTerm?.count != count { firstTerm = FloatBuffer(count: count) }
        var at = 0
        for r in ranges {
            (firstTerm!.pointer + at).update(from: g + r.offset, count: r.count)
            at += r.count
        }
        return gradientNorm(g, ranges: ranges)
    }

    /// Moves the end of the learning-rate schedule (when a resumed run is extended).
    public func setTotalSteps(_ steps: Int) { state.schedule.totalSteps = steps }

    /// The model's weights as checkpoint tensors (no optimizer state).
    var weightTensors: [Checkpoint.Tensor] {
        weights.namedTensors.map { Checkpoint.Tensor(name: $0.name, shape: $0.shape, values: weights.buffer.pointer + $0.offset) }
    }

    var checkpointTensors: [Checkpoint.Tensor] {
        var out = weightTensors
        for t in trainer.trainedTensors {
            let at = t.offset - optimizer.base
            out.append(Checkpoint.Tensor(name: "optimizer.m." + t.name, shape: t.shape, values: optimizer.m.pointer + at))
            out.append(Checkpoint.Tensor(name: "optimizer.v." + t.name, shape: t.shape, values: optimizer.v.pointer + at))
        }
        return out
    }

    public func save(to path: String) throws {
        try Checkpoint.write(to: path, config: weights.config, state: state, tensors: checkpointTensors)
    }

    /// The session's checkpoint as it is now, to be written while training goes on: the trained
    /// tensors and their moments are copied, the frozen weights read in place when written.
    public func snapshot() -> Checkpoint.Snapshot {
        Checkpoint.Snapshot(config: weights.config, state: state, tensors: checkpointTensors,
                            frozen: Set(weightTensors.map(\.name)).subtracting(trainedNames), owner: self)
    }

    /// The weight tensors training changes (the rest never change while the session lives).
    var trainedNames: Set<String> { Set(trainer.trainedTensors.map(\.name)) }

    /// Checksums of the tensors this session does not train (computed once).
    private var frozenChecksums: [String: String] = [:]

    /// Writes the weights alone (a checkpoint `LoadedModel.load` reads; a published version);
    /// with `deltaOf`, only the trained tensors, as a delta of that version (`Checkpoint.Delta`).
    public func saveWeights(to path: String, durable: Bool = true, deltaOf parent: UInt64? = nil) throws {
        try Checkpoint.Delta.writeVersion(to: path, config: weights.config, state: state, tensors: weightTensors,
                                          trained: trainedNames, parent: parent, frozen: &frozenChecksums, durable: durable)
    }

    /// Restores a session exactly as saved (weights, moments, step, generator, position).
    public static func load(from path: String) throws -> ActorSession {
        let reader = try Checkpoint.Reader(path: path)
        guard reader.state.kind == .actor else {
            throw CheckpointError.incompatible(path: path, reason: "it holds a \(reader.state.kind) model, not an actor")
        }
        let weights = LlamaWeights(config: reader.config)
        try reader.read(into: weights)
        let session = try ActorSession(weights: weights, state: reader.state)
        for t in session.trainer.trainedTensors {
            let at = t.offset - session.optimizer.base
            guard reader.has("optimizer.m." + t.name) else {
                throw CheckpointError.incompatible(path: path, reason: "no optimizer moments for '\(t.name)'")
            }
            try reader.read("optimizer.m." + t.name, shape: t.shape, into: session.optimizer.m.pointer + at)
            try reader.read("optimizer.v." + t.name, shape: t.shape, into: session.optimizer.v.pointer + at)
        }
        return session
    }
}

extension Critic {
    /// A critic's weights from a critic checkpoint (with or without optimizer state).
    public static func load(_ reader: Checkpoint.Reader) throws -> Critic {
        guard reader.state.kind == .critic, let classes = reader.state.criticClasses else {
            throw CheckpointError.incompatible(path: reader.path, reason: "it holds an \(reader.state.kind) model, not a critic")
        }
        let critic = Critic(backbone: LlamaWeights(config: reader.config), classes: classes)
        try critic.read(reader)
        return critic
    }

    /// Reads the tensors named in `only` (every tensor when nil) from a critic checkpoint of the
    /// same shape into this critic's memory: a newer version applied in place.
    public func read(_ reader: Checkpoint.Reader, only: Set<String>? = nil) throws {
        guard reader.state.kind == .critic, reader.state.criticClasses == classes, reader.config == backbone.config else {
            throw CheckpointError.incompatible(path: reader.path, reason: "it holds another model than this critic (kind, classes or shape differ)")
        }
        try reader.read(into: backbone, only: only)
        for t in headTensors where only?.contains(t.name) ?? true { try reader.read(t.name, shape: t.shape, into: head.pointer + t.offset) }
    }

    public static func load(checkpoint path: String) throws -> Critic { try load(try Checkpoint.Reader(path: path)) }
}

/// Everything that trains the critic: backbone and head, their optimizers and state.
public final class CriticSession: @unchecked Sendable {  // confined to the training thread
    public let critic: Critic
    public let trainer: CriticTrainer
    public let backboneOptimizer: AdamW
    public let headOptimizer: AdamW
    public private(set) var state: TrainingState
    public var classWeights: [Float]?

    public init(critic: Critic, state: TrainingState, classWeights: [Float]? = nil) throws {
        self.critic = critic
        self.state = state
        self.classWeights = classWeights
        trainer = try CriticTrainer(critic: critic, trainedLayers: state.trainedLayers, trainsEmbedding: state.trainsEmbedding ?? true)
        backboneOptimizer = AdamW(ranges: trainer.backbone.parameterRanges, settings: state.adamw)
        headOptimizer = AdamW(ranges: critic.headTensors.map { ParameterRange(offset: $0.offset, count: $0.count, decays: $0.decays) },
                              settings: state.adamw)
        backboneOptimizer.restore(step: state.step)
        headOptimizer.restore(step: state.step)
    }

    /// One optimizer step over micro-batches; returns the mean loss and the gradient norm.
    /// `probabilities` are the class probabilities of every program before the update (one
    /// row per program, micro-batches in order), e.g. for the critic's accuracy.
    public func step(_ microBatches: [CriticBatch], examples: Int, rng: Xoshiro256) throws
        -> (loss: Float, gradientNorm: Double, probabilities: [[Float]]) {
        trainer.zeroGradients()
        var loss: Double = 0
        var probabilities: [[Float]] = []
        for b in microBatches {
            let r = try trainer.forwardBackward(b, classWeights: classWeights, scale: 1 / Float(microBatches.count))
            loss += Double(r.loss)
            probabilities += r.probabilities
        }
        let backboneRanges = trainer.backbone.parameterRanges
        let headRanges = headOptimizer.ranges
        let g1 = gradientNorm(trainer.backbone.gradients.buffer.pointer, ranges: backboneRanges)
        let g2 = gradientNorm(trainer.headGradients.pointer, ranges: headRanges)
        let norm = (g1 * g1 + g2 * g2).squareRoot()
        let scale = state.clipNorm.map { clipFactor(norm: norm, maxNorm: $0) } ?? 1
        let lr = state.schedule.rate(at: state.step)
        backboneOptimizer.update(parameters: critic.backbone.buffer.pointer, gradients: trainer.backbone.gradients.buffer.pointer,
                                 learningRate: lr, gradientScale: scale)
        headOptimizer.update(parameters: critic.head.pointer, gradients: trainer.headGradients.pointer, learningRate: lr, gradientScale: scale)
        state.step += 1
        state.position += examples
        state.rng = rng
        return (Float(loss / Double(max(microBatches.count, 1))), norm, probabilities)
    }

    /// Backbone and head weights as checkpoint tensors (no optimizer state).
    var weightTensors: [Checkpoint.Tensor] {
        let w = critic.backbone, h = critic.head
        return w.namedTensors.map { Checkpoint.Tensor(name: $0.name, shape: $0.shape, values: w.buffer.pointer + $0.offset) }
            + critic.headTensors.map { Checkpoint.Tensor(name: $0.name, shape: $0.shape, values: h.pointer + $0.offset) }
    }

    var checkpointTensors: [Checkpoint.Tensor] {
        var out = weightTensors
        for t in trainer.backbone.trainedTensors {
            let at = t.offset - backboneOptimizer.base
            out.append(Checkpoint.Tensor(name: "optimizer.m." + t.name, shape: t.shape, values: backboneOptimizer.m.pointer + at))
            out.append(Checkpoint.Tensor(name: "optimizer.v." + t.name, shape: t.shape, values: backboneOptimizer.v.pointer + at))
        }
        for t in critic.headTensors {
            out.append(Checkpoint.Tensor(name: "optimizer.m." + t.name, shape: t.shape, values: headOptimizer.m.pointer + t.offset - headOptimizer.base))
            out.append(Checkpoint.Tensor(name: "optimizer.v." + t.name, shape: t.shape, values: headOptimizer.v.pointer + t.offset - headOptimizer.base))
        }
        return out
    }

    /// The state a checkpoint records (the class weights among its settings).
    private var checkpointState: TrainingState {
        var s = state
        if let w = classWeights { s.settings["class_weights"] = w.map { "\($0)" }.joined(separator: ",") }
        return s
    }

    public func save(to path: String) throws {
        try Checkpoint.write(to: path, config: critic.config, state: checkpointState, tensors: checkpointTensors)
    }

    /// The session's checkpoint as it is now, to be written while training goes on (see
    /// `ActorSession.snapshot`).
    public func snapshot() -> Checkpoint.Snapshot {
        Checkpoint.Snapshot(config: critic.config, state: checkpointState, tensors: checkpointTensors,
                            frozen: Set(weightTensors.map(\.name)).subtracting(trainedNames), owner: self)
    }

    /// The tensors training changes: the trained blocks of the backbone and the head.
    var trainedNames: Set<String> { Set((trainer.backbone.trainedTensors + critic.headTensors).map(\.name)) }

    /// Checksums of the tensors this session does not train (computed once).
    private var frozenChecksums: [String: String] = [:]

    /// Writes backbone and head alone (a published critic version; `Critic.load` reads it);
    /// with `deltaOf`, only the trained tensors, as a delta of that version (`Checkpoint.Delta`).
    public func saveWeights(to path: String, durable: Bool = true, deltaOf parent: UInt64? = nil) throws {
        try Checkpoint.Delta.writeVersion(to: path, config: critic.config, state: state, tensors: weightTensors,
                                          trained: trainedNames, parent: parent, frozen: &frozenChecksums, durable: durable)
    }

    public static func load(from path: String) throws -> CriticSession {
        let reader = try Checkpoint.Reader(path: path)
        let critic = try Critic.load(reader)
        let weights = reader.state.settings["class_weights"].map { $0.split(separator: ",").compactMap { Float(String($0)) } }
        let session = try CriticSession(critic: critic, state: reader.state, classWeights: weights)
        for (t, opt) in session.trainer.backbone.trainedTensors.map({ ($0, session.backboneOptimizer) })
            + critic.headTensors.map({ ($0, session.headOptimizer) }) {
            guard reader.has("optimizer.m." + t.name) else {
                throw CheckpointError.incompatible(path: path, reason: "no optimizer moments for '\(t.name)'")
            }
            try reader.read("optimizer.m." + t.name, shape: t.shape, into: opt.m.pointer + t.offset - opt.base)
            try reader.read("optimizer.v." + t.name, shape: t.shape, into: opt.v.pointer + t.offset - opt.base)
        }
        return session
    }
}
