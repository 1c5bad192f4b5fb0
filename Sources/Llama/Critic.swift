import Foundation
import Tensor

/// What the critic predicts: CodeRL's four outcome classes, or pass/fail.
public enum CriticClasses: String, Sendable, Codable, CaseIterable {
    /// 0 compile error, 1 runtime error (timeouts included), 2 failed test, 3 passed.
    case outcomes
    /// 0 failed (any failure), 1 passed.
    case binary

    public var count: Int { self == .outcomes ? 4 : 2 }
    public var names: [String] {
        self == .outcomes ? ["compile-error", "runtime-error", "failed-test", "passed"] : ["failed", "passed"]
    }
}

/// The critic: the first L blocks of an actor (with its embedding and final norm) and a
/// per-token head `Linear(C,128) -> ReLU -> Linear(128, classes)` on the final-norm output.
///
/// A program's class logits are the head's logits max-pooled over the program's tokens only
/// (CodeRL's reference pools over padding as well; we mask it). Head parameters live in one
/// buffer: w1[128, C], b1[128], w2[K, 128], b2[K].
public final class Critic: @unchecked Sendable {  // written only while loading or training
    public static let hiddenWidth = 128
    public let backbone: LlamaWeights
    public let classes: CriticClasses
    public let head: FloatBuffer

    public var config: LlamaConfig { backbone.config }

    public init(backbone: LlamaWeights, classes: CriticClasses) {
        self.backbone = backbone
        self.classes = classes
        head = FloatBuffer(count: Self.headParameterCount(channels: backbone.config.channels, classes: classes.count))
    }

    static func headParameterCount(channels C: Int, classes K: Int) -> Int {
        hiddenWidth * C + hiddenWidth + K * hiddenWidth + K
    }

    /// Head tensors under PyTorch `nn.Sequential` names, offsets into `head`.
    public var headTensors: [NamedTensor] {
        let C = config.channels, H = Self.hiddenWidth, K = classes.count
        return [
            NamedTensor(name: "critic_head.0.weight", shape: [H, C], offset: 0, layer: nil),
            NamedTensor(name: "critic_head.0.bias", shape: [H], offset: H * C, layer: nil),
            NamedTensor(name: "critic_head.2.weight", shape: [K, H], offset: H * C + H, layer: nil),
            NamedTensor(name: "critic_head.2.bias", shape: [K], offset: H * C + H + K * H, layer: nil),
        ]
    }

    /// A critic from the first `layers` blocks of `actor`, with a freshly initialised head
    /// (PyTorch's `nn.Linear` default: uniform in ±1/sqrt(fan-in)), deterministic in `seed`.
    public static func fromActor(_ actor: LlamaWeights, layers: Int, classes: CriticClasses, seed: UInt64) throws -> Critic {
        let a = actor.config
        guard layers >= 1 && layers <= a.layers else {
            throw LlamaError.badParameter(name: "critic layers", value: "\(layers)", expected: "1 to \(a.layers) (the actor's block count)")
        }
        var c = a
        c.layers = layers
        c.tiedEmbeddings = true  // only the embedding is needed; an untied output matrix is dropped
        let backbone = LlamaWeights(config: c)
        backbone.buffer.pointer.update(from: actor.buffer.pointer, count: layers * actor.layerStride)
        backbone.embedding.update(from: actor.embedding, count: a.vocabularySize * a.channels)
        backbone.finalNorm.update(from: actor.finalNorm, count: a.channels)
        let critic = Critic(backbone: backbone, classes: classes)
        critic.initializeHead(seed: seed)
        return critic
    }

    /// Default depth of a critic built from an actor: a quarter of its blocks, at least one.
    public static func defaultLayers(actorLayers: Int) -> Int { max(1, actorLayers / 4) }

    public func initializeHead(seed: UInt64) {
        var rng = Xoshiro256(seed: seed)
        let C = config.channels, H = Self.hiddenWidth
        for t in headTensors {
            let bound = 1 / Float(t.name.hasPrefix("critic_head.0") ? C : H).squareRoot()
            for i in 0..<t.count { head[t.offset + i] = (rng.nextUnit() * 2 - 1) * bound }
        }
    }
}

/// Programs for the critic: B sequences (prompt + program) padded to T, which positions are
/// program tokens, and (for training) each program's class.
public struct CriticBatch: Sendable {
    public let inputs: TrainingBatch
    public let programMask: [[Bool]]
    public let labels: [Int]?

    /// `promptLengths[b]` tokens of `sequences[b]` are the prompt, the rest the program.
    public static func programs(_ sequences: [[Int]], promptLengths: [Int], labels: [Int]? = nil, classes: CriticClasses,
                                pad: Int, vocabularySize: Int) throws -> CriticBatch {
        let inputs = try TrainingBatch.completions(sequences, promptLengths: promptLengths, pad: pad, vocabularySize: vocabularySize)
        let T = inputs.length
        let mask = zip(sequences, promptLengths).map { s, p in (0..<T).map { $0 >= p && $0 < s.count } }
        if let labels {
            guard labels.count == sequences.count else {
                throw LlamaError.badParameter(name: "critic labels", value: "\(labels.count)", expected: "\(sequences.count), one per program")
            }
            if let b = labels.firstIndex(where: { $0 < 0 || $0 >= classes.count }) {
                throw LlamaError.badParameter(name: "critic label [\(b)]", value: "\(labels[b])",
                                              expected: "a class 0..<\(classes.count) (\(classes.names.joined(separator: ", ")))")
            }
        }
        return CriticBatch(inputs: inputs, programMask: mask, labels: labels)
    }
}

/// Critic forward and backward. Gradients of the backbone go to `backbone.gradients` (only its
/// top `trainedLayers` blocks and final norm, plus the embedding when all are trained), the
/// head's to `headGradients`.
public final class CriticTrainer: @unchecked Sendable {  // confined to one thread at a time
    public let critic: Critic
    public let backbone: LlamaTrainer
    public let headGradients: FloatBuffer

    /// `trainsEmbedding`: whether the embedding is trained too when every block is.
    public init(critic: Critic, trainedLayers: Int? = nil, trainsEmbedding: Bool = true) throws {
        self.critic = critic
        backbone = try LlamaTrainer(weights: critic.backbone, trainedLayers: trainedLayers, usesOutputHead: false,
                                    trainsEmbedding: trainsEmbedding)
        headGradients = FloatBuffer(count: critic.head.count)
    }

    public func zeroGradients() {
        backbone.zeroGradients()
        headGradients.zero()
    }

    public struct Result: Sendable {
        /// Class-weighted cross-entropy of the pooled logits (0 without labels).
        public var loss: Float
        /// Per program: softmax of the pooled class logits.
        public var probabilities: [[Float]]
    }

    /// Class probabilities per program; no gradients.
    public func predict(_ batch: CriticBatch) throws -> [[Float]] {
        try run(batch, classWeights: nil, backward: false).probabilities
    }

    /// Loss and probabilities; adds gradients of the loss (times `scale`).
    /// Loss = Σ_b w[y_b] * -log softmax(pooled_b)[y_b] / Σ_b w[y_b] (PyTorch's weighted mean).
    @discardableResult
    public func forwardBackward(_ batch: CriticBatch, classWeights: [Float]? = nil, scale: Float = 1) throws -> Result {
        guard batch.labels != nil else {
            throw LlamaError.badParameter(name: "critic batch", value: "without labels", expected: "a label per program to train on")
        }
        if let w = classWeights, w.count != critic.classes.count || w.contains(where: { !($0 >= 0) || !$0.isFinite }) {
            throw LlamaError.badParameter(name: "critic class weights", value: "\(w)",
                                          expected: "\(critic.classes.count) finite non-negative numbers")
        }
        return try run(batch, classWeights: classWeights, backward: true, scale: scale)
    }

    /// For each program, the probability of class `classes[b]` at every program token
    /// (softmax of that token's head logits): the weights CodeRL's actor loss uses.
    public func tokenProbabilities(_ batch: CriticBatch, classes: [Int]) throws -> [[Float]] {
        let K = critic.classes.count
        guard classes.count == batch.inputs.sequences, classes.allSatisfy({ $0 >= 0 && $0 < K }) else {
            throw LlamaError.badParameter(name: "classes", value: "\(classes)", expected: "one class in 0..<\(K) per program")
        }
        let (logits, _) = try tokenLogits(batch, keep: false)
        let T = batch.inputs.length
        return (0..<batch.inputs.sequences).map { b in
            (0..<T).filter { batch.programMask[b][$0] }.map { t in
                let row = logits.pointer + (b * T + t) * K
                let lse = Kernels.logSumExp(row, K)
                return expf(row[classes[b]] - lse)
            }
        }
    }

    /// Head logits per token, tok[N, K], and the ReLU outputs a[N, 128] (kept for backward).
    private func tokenLogits(_ batch: CriticBatch, keep: Bool) throws -> (FloatBuffer, FloatBuffer) {
        let N = batch.inputs.sequences * batch.inputs.length, C = critic.config.channels
        let H = Critic.hiddenWidth, K = critic.classes.count
        let s = try backbone.normalizedHidden(batch.inputs, keep: keep)
        let h = critic.head.pointer, (w1, b1, w2, b2) = (h, h + H * C, h + H * C + H, h + H * C + H + K * H)
        let a = FloatBuffer(count: N * H), tok = FloatBuffer(count: N * K)
        // a[N,H] = relu(xn · W1^T + b1); tok[N,K] = a · W2^T + b2
        for n in 0..<N { (a.pointer + n * H).update(from: b1, count: H) }
        Layers.linearForward(a.pointer, s.xn.pointer, w1, rows: N, in: C, out: H, accumulate: true)
        for i in 0..<N * H where a[i] < 0 { a[i] = 0 }
        for n in 0..<N { (tok.pointer + n * K).update(from: b2, count: K) }
        Layers.linearForward(tok.pointer, a.pointer, w2, rows: N, in: H, out: K, accumulate: true)
        return (tok, a)
    }

    private func run(_ batch: CriticBatch, classWeights: [Float]?, backward: Bool, scale: Float = 1) throws -> Result {
        let B = batch.inputs.sequences, T = batch.inputs.length, N = B * T
        let C = critic.config.channels, H = Critic.hiddenWidth, K = critic.classes.count
        let (tok, a) = try tokenLogits(batch, keep: backward)
        // Max-pool over program tokens: pooled[b,k] and the position it came from.
        var pooled = [Float](repeating: -.infinity, count: B * K), arg = [Int](repeating: -1, count: B * K)
        for b in 0..<B {
            for t in 0..<T where batch.programMask[b][t] {
                for k in 0..<K where tok[(b * T + t) * K + k] > pooled[b * K + k] {
                    pooled[b * K + k] = tok[(b * T + t) * K + k]
                    arg[b * K + k] = b * T + t
                }
            }
        }
        var probabilities: [[Float]] = []
        for b in 0..<B {
            var row = Array(pooled[(b * K)..<(b * K + K)])
            row.withUnsafeMutableBufferPointer { _ = Kernels.softmax($0.baseAddress!, K) }
            probabilities.append(row)
        }
        guard let labels = batch.labels else { return Result(loss: 0, probabilities: probabilities) }
        let w = classWeights ?? Array(repeating: 1, count: K)
        let total = labels.reduce(Float(0)) { $0 + w[$1] }
        var loss: Double = 0
        for b in 0..<B { loss -= Double(w[labels[b]]) * Double(logf(max(probabilities[b][labels[b]], .leastNormalMagnitude))) }
        let result = Result(loss: total > 0 ? Float(loss / Double(total)) : 0, probabilities: probabilities)
        guard backward, total > 0 else { return result }

        // d pooled[b,k] = scale * w[y_b] / Σw * (p[b,k] - [k == y_b]), routed to the argmax token.
        let dtok = FloatBuffer(count: N * K)
        for b in 0..<B {
            let c = scale * w[labels[b]] / total
            for k in 0..<K where arg[b * K + k] >= 0 {
                dtok[arg[b * K + k] * K + k] += c * (probabilities[b][k] - (k == labels[b] ? 1 : 0))
            }
        }
        let h = critic.head.pointer, g = headGradients.pointer
        let (w1, w2) = (h, h + H * C + H)
        let (gw1, gb1, gw2, gb2) = (g, g + H * C, g + H * C + H, g + H * C + H + K * H)
        let s = backbone.prepare(rows: N, length: T)  // the scratch normalizedHidden filled
        // Second layer: dW2 += dtok^T · a, db2 += Σ dtok, da = dtok · W2 masked by ReLU.
        let da = FloatBuffer(count: N * H)
        Layers.linearBackward(dx: da.pointer, dw: gw2, dy: dtok.pointer, x: a.pointer, w: w2, rows: N, in: H, out: K)
        for n in 0..<N { for k in 0..<K { gb2[k] += dtok[n * K + k] } }
        for i in 0..<N * H where a[i] <= 0 { da[i] = 0 }
        // First layer: dW1 += da^T · xn, db1 += Σ da, dxn = da · W1.
        Layers.linearBackward(dx: s.dxn.pointer, dw: gw1, dy: da.pointer, x: s.xn.pointer, w: w1, rows: N, in: C, out: H)
        for n in 0..<N { Kernels.axpy(1, da.pointer + n * H, gb1, H) }
        backbone.backwardBlocks(batch.inputs, scratch: s)
        return result
    }
}
