import Foundation
import Llama
import Tensor
import Training

/// Weight files of published versions: an actor or critic checkpoint without optimizer state.
public enum VersionFiles {
    /// Writes the actor's weights (a checkpoint `LoadedModel.load` reads).
    public static func writeActor(_ session: ActorSession, to path: String) throws {
        let w = session.weights
        let tensors = w.namedTensors.map { Checkpoint.Tensor(name: $0.name, shape: $0.shape, values: w.buffer.pointer + $0.offset) }
        try Checkpoint.write(to: path, config: w.config, state: session.state, tensors: tensors)
    }

    /// Writes the critic's weights (backbone and head).
    public static func writeCritic(_ session: CriticSession, to path: String) throws {
        let c = session.critic
        var tensors = c.backbone.namedTensors.map { Checkpoint.Tensor(name: $0.name, shape: $0.shape, values: c.backbone.buffer.pointer + $0.offset) }
        tensors += c.headTensors.map { Checkpoint.Tensor(name: $0.name, shape: $0.shape, values: c.head.pointer + $0.offset) }
        try Checkpoint.write(to: path, config: c.config, state: session.state, tensors: tensors)
    }

    /// Reads a critic's weights from a version file or a full critic checkpoint.
    public static func readCritic(_ path: String) throws -> Critic {
        let reader = try Checkpoint.Reader(path: path)
        guard reader.state.kind == .critic, let classes = reader.state.criticClasses else {
            throw CheckpointError.incompatible(path: path, reason: "it holds an \(reader.state.kind) model, not a critic")
        }
        let critic = Critic(backbone: LlamaWeights(config: reader.config), classes: classes)
        for t in critic.backbone.namedTensors { try reader.read(t.name, shape: t.shape, into: critic.backbone.buffer.pointer + t.offset) }
        for t in critic.headTensors { try reader.read(t.name, shape: t.shape, into: critic.head.pointer + t.offset) }
        return critic
    }
}
