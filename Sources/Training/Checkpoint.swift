import Foundation
import Llama
import ModelIO
import Optim
import Schema
import Tensor

/// What a training checkpoint records besides tensors: enough to continue exactly.
public struct TrainingState: Codable, Equatable, Sendable {
    public enum Kind: String, Codable, Sendable { case actor, critic }

    public var kind: Kind
    /// Optimizer steps taken.
    public var step: Int
    public var trainedLayers: Int
    public var adamw: AdamWSettings
    public var schedule: LearningRateSchedule
    public var clipNorm: Double?
    /// The data-order generator, as it stands after `position` examples.
    public var rng: Xoshiro256
    /// Examples consumed so far (the position in the data stream).
    public var position: Int
    public var criticClasses: CriticClasses?
    /// Whether the output head (the tied embedding) is trained; nil (checkpoints written before
    /// the choice existed) means it is.
    public var trainsOutputHead: Bool?
    /// Whether the embedding is trained when every block is; nil (older checkpoints) means it is.
    public var trainsEmbedding: Bool?
    /// Free-form settings of the command that trains (batch size, data file, ...).
    public var settings: [String: String]

    public init(kind: Kind, step: Int = 0, trainedLayers: Int, adamw: AdamWSettings, schedule: LearningRateSchedule,
                clipNorm: Double? = 1, rng: Xoshiro256, position: Int = 0, criticClasses: CriticClasses? = nil,
                trainsOutputHead: Bool? = nil, trainsEmbedding: Bool? = nil, settings: [String: String] = [:]) {
        self.trainsOutputHead = trainsOutputHead
        self.trainsEmbedding = trainsEmbedding
        self.kind = kind
        self.step = step
        self.trainedLayers = trainedLayers
        self.adamw = adamw
        self.schedule = schedule
        self.clipNorm = clipNorm
        self.rng = rng
        self.position = position
        self.criticClasses = criticClasses
        self.settings = settings
    }
}

public enum CheckpointError: Error, CustomStringConvertible, Equatable {
    case notACheckpoint(path: String, reason: String)
    case corrupt(path: String, reason: String)
    case incompatible(path: String, reason: String)
    case missing(path: String)

    public var description: String {
        switch self {
        case let .missing(path): return "\(path): no such file or directory (a model is a GGUF file, a training checkpoint, or a Hugging Face directory)"
        case let .notACheckpoint(path, reason): return "\(path): not a coderl training checkpoint: \(reason)"
        case let .corrupt(path, reason): return "\(path): corrupt checkpoint, not loaded: \(reason)"
        case let .incompatible(path, reason): return "\(path): checkpoint does not fit: \(reason)"
        }
    }
}

/// A training checkpoint is a safetensors file (so any safetensors reader can look inside):
/// the weights under their Hugging Face names, the critic head, the AdamW moments as
/// `optimizer.m.<name>` / `optimizer.v.<name>`, and in the header's metadata the model config,
/// the `TrainingState`, an XXH64 checksum of every tensor's bytes and one of the metadata
/// itself. It is written to a temporary file, flushed and renamed, so a crash leaves the previous
/// checkpoint; a truncated or altered file is refused with the tensor or field that is wrong.
public enum Checkpoint {
    public static let formatVersion = "1"
    /// Where the tensor data starts (bytes from the start of the file): far enough for the
    /// header of any model we train, so versions of one model keep their tensors at the same
    /// offsets (see `SafetensorsWriter.alignment`).
    public static let dataAlignment = 256 << 10

    public struct Tensor {
        public let name: String
        public let shape: [Int]
        public let values: UnsafeMutablePointer<Float>
        public init(name: String, shape: [Int], values: UnsafeMutablePointer<Float>) {
            self.name = name
            self.shape = shape
            self.values = values
        }
    }

    static func hex(_ v: UInt64) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }

    static func metadataDigest(_ metadata: [String: String]) -> String {
        let text = metadata.filter { $0.key != "metadata_xxh64" }.sorted { $0.key < $1.key }
            .map { "\($0.key)=\($0.value)" }.joined(separator: "\n")
        return hex(XXH64.hash(Array(text.utf8)))
    }

    /// The XXH64 (hex) of a tensor's bytes, as a checkpoint records it.
    public static func checksum(_ t: Tensor) -> String {
        hex(XXH64.hash(UnsafeRawBufferPointer(start: t.values, count: t.shape.reduce(1, *) * 4)))
    }

    /// Writes `tensors` with the config and state. With `delta`, the file is a delta of version
    /// `delta.parent` (see `Delta`): `tensors` are the ones that may have changed, and
    /// `delta.unchanged` the checksums of the others, which the parent must have.
    public static func write(to path: String, config: LlamaConfig, state: TrainingState, tensors: [Tensor], durable: Bool = true,
                             delta: (parent: UInt64, unchanged: [String: String])? = nil) throws {
        var writer = SafetensorsWriter(alignment: dataAlignment)
        var sums: [String: String] = [:]
        for t in tensors {
            writer.add(t.name, shape: t.shape, values: t.values)
            sums[t.name] = checksum(t)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var meta = writer.metadata
        meta["coderl.checkpoint"] = formatVersion
        meta["config"] = String(decoding: try encoder.encode(config), as: UTF8.self)
        meta["state"] = String(decoding: try encoder.encode(state), as: UTF8.self)
        meta["checksums"] = String(decoding: try encoder.encode(sums), as: UTF8.self)
        if let delta {
            meta[Delta.parentKey] = String(delta.parent)
            meta[Delta.checksumsKey] = String(decoding: try encoder.encode(delta.unchanged.merging(sums) { $1 }), as: UTF8.self)
        }
        meta["metadata_xxh64"] = metadataDigest(meta)
        writer.metadata = meta
        try writer.write(to: path, durable: durable)
    }

    /// An opened, verified checkpoint.
    public final class Reader {
        public let path: String
        public let config: LlamaConfig
        public let state: TrainingState
        /// Each tensor's XXH64 (hex), verified when the file opened.
        public let checksums: [String: String]
        let file: SafetensorsFile

        public init(path: String) throws {
            self.path = path
            do {
                file = try SafetensorsFile(path: path)
            } catch let e as SafetensorsError {
                if case .truncated = e { throw CheckpointError.corrupt(path: path, reason: "\(e)") }
                throw CheckpointError.notACheckpoint(path: path, reason: "\(e)")
            }
            let meta = file.metadata
            guard meta["coderl.checkpoint"] == Checkpoint.formatVersion else {
                throw CheckpointError.notACheckpoint(path: path, reason: "metadata 'coderl.checkpoint' is \(meta["coderl.checkpoint"].map { "'\($0)'" } ?? "missing"), expected '\(Checkpoint.formatVersion)'")
            }
            guard meta["metadata_xxh64"] == Checkpoint.metadataDigest(meta) else {
                throw CheckpointError.corrupt(path: path, reason: "header metadata checksum mismatch")
            }
            let decoder = JSONDecoder()
            func decode<T: Decodable>(_ type: T.Type, _ key: String) throws -> T {
                guard let text = meta[key], let value = try? decoder.decode(T.self, from: Data(text.utf8)) else {
                    throw CheckpointError.corrupt(path: path, reason: "metadata '\(key)' is missing or unreadable")
                }
                return value
            }
            config = try decode(LlamaConfig.self, "config")
            try config.validate()
            state = try decode(TrainingState.self, "state")
            let sums = try decode([String: String].self, "checksums")
            checksums = sums
            guard Set(sums.keys) == Set(file.entries.keys) else {
                throw CheckpointError.corrupt(path: path, reason: "tensor list does not match the checksum list")
            }
            for (name, sum) in sums {
                let bytes = try file.rawBytes(name)
                guard Checkpoint.hex(XXH64.hash(bytes)) == sum else {
                    throw CheckpointError.corrupt(path: path, reason: "tensor '\(name)' fails its checksum")
                }
            }
        }

        public func has(_ name: String) -> Bool { file.entries[name] != nil }

        /// Reads the tensors of `weights` named in `only` (all of them when nil) into its memory.
        public func read(into weights: LlamaWeights, only: Set<String>? = nil) throws {
            for t in weights.namedTensors where only?.contains(t.name) ?? true {
                try read(t.name, shape: t.shape, into: weights.buffer.pointer + t.offset)
            }
        }

        /// The tensors whose contents differ from a checkpoint with checksums `previous` (those
        /// it did not hold included): what a holder of that checkpoint must read to hold this one.
        public func changed(since previous: [String: String]) -> Set<String> {
            Set(checksums.filter { previous[$0.key] != $0.value }.keys)
        }

        public func read(_ name: String, shape: [Int], into out: UnsafeMutablePointer<Float>) throws {
            do {
                try file.read(name, shape: shape, into: out)
            } catch {
                throw CheckpointError.incompatible(path: path, reason: "\(error)")
            }
        }
    }
}

extension Checkpoint {
    /// A checkpoint taken now and written later, on another thread, while training goes on.
    /// The tensors training changes (trained weights, optimizer moments) are copied when the
    /// snapshot is taken; the ones it never writes (`frozen`) are read in place when the file is
    /// written, and `owner` keeps their memory alive until then.
    public final class Snapshot: @unchecked Sendable {  // immutable once made
        let config: LlamaConfig
        let state: TrainingState
        let tensors: [Tensor]
        private let copies: FloatBuffer
        private let owner: AnyObject
        /// Bytes copied to take the snapshot.
        public var copiedBytes: Int { copies.count * 4 }

        init(config: LlamaConfig, state: TrainingState, tensors: [Tensor], frozen: Set<String>, owner: AnyObject) {
            self.config = config
            self.state = state
            self.owner = owner
            let copies = FloatBuffer(count: tensors.filter { !frozen.contains($0.name) }.reduce(0) { $0 + $1.shape.reduce(1, *) })
            var at = 0
            self.tensors = tensors.map { t in
                guard !frozen.contains(t.name) else { return t }
                let n = t.shape.reduce(1, *)
                let copy = copies.pointer + at
                copy.update(from: t.values, count: n)
                at += n
                return Tensor(name: t.name, shape: t.shape, values: copy)
            }
            self.copies = copies
        }

        /// Writes the checkpoint as it was when the snapshot was taken (`Checkpoint.write`).
        public func write(to path: String) throws {
            try Checkpoint.write(to: path, config: config, state: state, tensors: tensors)
        }
    }
}
