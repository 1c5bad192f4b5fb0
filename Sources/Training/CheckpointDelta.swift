import Foundation
import Llama
import ModelIO

extension Checkpoint {
    /// A version of a model written as the tensors that changed since its parent version.
    ///
    /// A delta is a checkpoint file holding only those tensors, with two more metadata keys:
    /// the parent's version and the checksums of every tensor of the whole version (the ones it
    /// holds and the ones the parent must have). `materialize` makes the whole version from the
    /// parent's file and the delta, byte for byte the file `Checkpoint.write` would have written
    /// with every tensor; it refuses a delta whose parent does not hold the tensors it expects.
    public enum Delta {
        public static let parentKey = "coderl.delta_of"
        public static let checksumsKey = "coderl.version_checksums"

        /// The parent version `path` is a delta of, or nil for a whole checkpoint (or another file).
        public static func parent(of path: String) -> UInt64? {
            guard let file = try? SafetensorsFile(path: path) else { return nil }
            return file.metadata[parentKey].flatMap { UInt64($0) }
        }

        /// Writes the whole version of the delta at `delta` over the parent's whole file `parent`
        /// into `output`. With `recycling` (a whole file of another version of the same model,
        /// no longer wanted), that file is renamed to `output` and only the tensors that differ
        /// from it are written into it: a new version costs the bytes that changed, not the size
        /// of the model. Nothing is flushed to disk. Returns whether the file was recycled.
        @discardableResult
        public static func materialize(delta: String, parent: String, recycling: String? = nil, to output: String) throws -> Bool {
            let d = try Checkpoint.Reader(path: delta)
            guard let parentText = d.file.metadata[parentKey], UInt64(parentText) != nil,
                  let all = decodeSums(d.file.metadata[checksumsKey]) else {
                throw CheckpointError.corrupt(path: delta, reason: "not a delta (metadata '\(parentKey)' or '\(checksumsKey)' missing or unreadable)")
            }
            let p = try SafetensorsFile(path: parent)
            guard let parentSums = decodeSums(p.metadata["checksums"]) else {
                throw CheckpointError.notACheckpoint(path: parent, reason: "no tensor checksums in its metadata")
            }
            guard Set(all.keys) == Set(p.entries.keys) else {
                throw CheckpointError.incompatible(path: delta, reason: "its version has other tensors than its parent \(parent)")
            }
            for (name, sum) in all where d.file.entries[name] == nil && parentSums[name] != sum {
                throw CheckpointError.incompatible(path: delta, reason: "tensor '\(name)' is not in the delta and differs in its parent \(parent)")
            }
            var writer = SafetensorsWriter(alignment: dataAlignment)
            for e in p.entries.values.sorted(by: { $0.begin < $1.begin }) {
                let source = d.file.entries[e.name] != nil ? d.file : p
                guard let s = source.entries[e.name], s.dtype == "F32", s.shape == e.shape else {
                    throw CheckpointError.incompatible(path: source.path, reason: "tensor '\(e.name)' is not F32 \(e.shape) as in the parent")
                }
                writer.add(e.name, shape: e.shape, values: try source.rawBytes(e.name).baseAddress!.assumingMemoryBound(to: Float.self))
            }
            var meta = d.file.metadata
            meta[parentKey] = nil
            meta[checksumsKey] = nil
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            meta["checksums"] = String(decoding: try encoder.encode(all), as: UTF8.self)
            meta["metadata_xxh64"] = metadataDigest(meta)
            writer.metadata = meta
            if let recycling, let old = try? SafetensorsFile(path: recycling), writer.layoutMatches(old),
               let oldSums = decodeSums(old.metadata["checksums"]) {
                let differing = Set(all.filter { oldSums[$0.key] != $0.value }.keys)
                guard rename(recycling, output) == 0 else {
                    throw SafetensorsError.cannotWrite(path: output, errno: errno)
                }
                try writer.overwrite(output, tensors: differing)
                return true
            }
            try writer.write(to: output, durable: false)
            return false
        }

        /// Writes a published version: the whole of `tensors`, or with `parent` a delta of that
        /// version holding the `trained` tensors only (the others are recorded by checksum,
        /// computed once into `frozen`: they do not change while one session trains).
        public static func writeVersion(to path: String, config: LlamaConfig, state: TrainingState, tensors: [Tensor],
                                        trained: Set<String>, parent: UInt64?, frozen: inout [String: String], durable: Bool) throws {
            guard let parent else {
                return try Checkpoint.write(to: path, config: config, state: state, tensors: tensors, durable: durable)
            }
            for t in tensors where !trained.contains(t.name) && frozen[t.name] == nil { frozen[t.name] = checksum(t) }
            try Checkpoint.write(to: path, config: config, state: state, tensors: tensors.filter { trained.contains($0.name) },
                                 durable: durable, delta: (parent, frozen.filter { !trained.contains($0.key) }))
        }

        static func decodeSums(_ text: String?) -> [String: String]? {
            text.flatMap { try? JSONDecoder().decode([String: String].self, from: Data($0.utf8)) }
        }
    }
}
