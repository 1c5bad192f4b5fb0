import Foundation
import ModelIO
import Schema
import Wire
import ZeroMQ
import Runtime
import Training

/// The param-store: immutable, versioned weight files for each model (`actor`, `critic`,
/// `tokenizer`), served in checksummed chunks, with new versions announced.
///
/// Layout under `directory`: `<model>/v<NNNNNN>.<format>` (the weights; version 0 may be a
/// symbolic link to the starting model) and `<model>/v<NNNNNN>.manifest` (a `WeightManifest`).
/// A version is published by writing its file to `<model>/incoming/v<NNNNNN>.<format>` and
/// sending a `VersionAnnouncement` to the store's ROUTER: the store checks the file (it must
/// parse as its format), computes the manifest, moves the file into place, answers `Ack`
/// and announces the version on its PUB socket. Publishing the same bytes again is
/// acknowledged; different bytes under an existing version are refused (`version-exists`).
///
/// A version's identity (`WeightManifest.identity`) is the SHA-256 of its size and chunk
/// checksums: no whole-file cryptographic hash on the publishing path (XXH64 runs at memory
/// speed; SHA-256 in software took 6.5 s per 513 MiB actor).
///
/// Requests (`WeightRequest`) name a model and a version (`UInt64.max` = the newest) and
/// either ask for the manifest or for one chunk; a chunk is re-checked against its XXH64
/// before it is sent, so a file damaged on disk is reported (`corrupt-version`), never served.
public final class ParamStore {
    public struct Settings: Sendable {
        public var directory: String
        public var endpoint: String
        public var announceEndpoint: String
        public var chunkBytes = 4 << 20
        /// Versions kept per model besides version 0; older files are deleted after a publish.
        public var keepVersions = 3
        public var name = "param-store"
        /// CURVE on both sockets (link `params`); new versions only from the learner's key.
        public var security = LinkSecurity.plain

        public init(directory: String, endpoint: String, announceEndpoint: String) {
            self.directory = directory
            self.endpoint = endpoint
            self.announceEndpoint = announceEndpoint
        }
    }

    public static let latest = UInt64.max
    public static let models = ["actor", "critic", "tokenizer"]

    public let settings: Settings
    private let log: Log
    private var manifests: [String: [UInt64: WeightManifest]] = [:]
    /// Open weight files being served, by path.
    private var handles: [String: FileHandle] = [:]
    private var sender: Sender
    public let stopFlag = StopFlag()

    public init(settings: Settings, log: Log) throws {
        self.settings = settings
        self.log = log
        sender = Sender(name: settings.name)
        try FileManager.default.createDirectory(atPath: settings.directory, withIntermediateDirectories: true)
        try loadExisting()
    }

    // MARK: Storage

    static func fileName(_ version: UInt64, _ format: String) -> String { String(format: "v%06llu.", version) + format }

    func path(_ model: String, _ version: UInt64, _ format: String) -> String {
        settings.directory + "/" + model + "/" + Self.fileName(version, format)
    }

    func manifestPath(_ model: String, _ version: UInt64) -> String { path(model, version, "manifest") }

    /// Reads the manifests on disk; a version whose manifest or file is missing is skipped
    /// with a message (it can be published again).
    private func loadExisting() throws {
        for model in Self.models {
            let dir = settings.directory + "/" + model
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { continue }
            for name in names.sorted() where name.hasSuffix(".manifest") {
                let file = dir + "/" + name
                do {
                    let manifest = try WeightManifest(serializedBytes: [UInt8](try Data(contentsOf: URL(fileURLWithPath: file))))
                    let weights = path(model, manifest.version, manifest.format)
                    let size = (try? FileManager.default.attributesOfItem(atPath: weights)[.size] as? UInt64) ?? nil
                    guard size == manifest.totalBytes else {
                        log("\(file): its weight file \(weights) is missing or has the wrong size; version \(manifest.version) is not served")
                        continue
                    }
                    // Published files are not flushed to disk as they arrive: after a crash of
                    // the machine one may be damaged, and is dropped here (the learner publishes
                    // its version again when it resumes).
                    guard try manifest.matches(file: weights) else {
                        log("\(weights) does not match its manifest's chunk checksums; version \(manifest.version) of \(model) is dropped")
                        try? FileManager.default.removeItem(atPath: file)
                        continue
                    }
                    manifests[model, default: [:]][manifest.version] = manifest
                } catch {
                    log("\(file): unreadable manifest (\(error)); skipped")
                }
            }
        }
        let summary = Self.models.map { "\($0) \(manifests[$0]?.keys.sorted().map(String.init).joined(separator: ",") ?? "-")" }
        log("versions on disk: " + summary.joined(separator: "; "))
    }

    /// Registers `file` as `version` of `model`. With `link`, the store refers to the file by a
    /// symbolic link (version 0: the starting model, not copied); otherwise the file is moved.
    @discardableResult
    public func register(model: String, version: UInt64, file given: String, link: Bool = false) throws -> WeightManifest {
        guard Self.models.contains(model) else { throw PipelineError("unknown model '\(model)' (expected \(Self.models.joined(separator: ", ")))") }
        var file = given
        if !link, let parent = Checkpoint.Delta.parent(of: given) {
            file = try materialize(model: model, version: version, delta: given, parent: parent)
        }
        let format = try Self.checkFormat(file)
        var manifest = try Self.manifest(of: file, chunkBytes: settings.chunkBytes)
        manifest.model = model
        manifest.version = version
        manifest.format = format
        if let existing = manifests[model]?[version] {
            guard existing.sha256 == manifest.sha256 else {
                if !link { try? FileManager.default.removeItem(atPath: file) }
                throw VersionExists("version \(version) of \(model) exists with other contents (identity \([UInt8](existing.sha256).hex.prefix(16))…); versions are immutable")
            }
            if !link { try? FileManager.default.removeItem(atPath: file) }
            return existing
        }
        let dir = settings.directory + "/" + model
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let target = path(model, version, format)
        try? FileManager.default.removeItem(atPath: target)
        if link {
            let absolute = file.hasPrefix("/") ? file : FileManager.default.currentDirectoryPath + "/" + file
            try FileManager.default.createSymbolicLink(atPath: target, withDestinationPath: absolute)
        } else {
            guard rename(file, target) == 0 else { throw PipelineError("cannot move \(file) to \(target): \(String(cString: strerror(errno)))") }
        }
        try AtomicFile.write(Data(try manifest.serializedBytes() as [UInt8]), to: manifestPath(model, version))
        manifests[model, default: [:]][version] = manifest
        Telemetry.gauge(.weightNewestVersion, Double(manifests[model]!.keys.max()!), [("model", model)])
        prune(model)
        return manifest
    }

    /// The whole file of `version` made from the delta at `delta` and the version it names:
    /// written over the file of the oldest version kept (which would be deleted after this
    /// publication anyway), so that only the tensors that changed are written. The result is
    /// checked (every tensor against its checksum) before it is registered.
    private func materialize(model: String, version: UInt64, delta: String, parent: UInt64) throws -> String {
        guard let parentManifest = manifests[model]?[parent] else {
            throw PipelineError("\(delta) is a delta of \(model) v\(parent), which the param-store does not hold")
        }
        var recycled: String? = nil
        // The versions kept besides version 0; once `version` is in, the oldest would go.
        let kept = (manifests[model]?.keys.sorted() ?? []).filter { $0 > 0 && $0 != version }
        if kept.count >= settings.keepVersions, let oldest = kept.first, oldest != parent, let m = manifests[model]?[oldest] {
            recycled = path(model, oldest, m.format)
            forget(model, oldest)
        }
        let whole = delta + ".tmp-whole"
        let reused = try Checkpoint.Delta.materialize(delta: delta, parent: path(model, parent, parentManifest.format),
                                                      recycling: recycled, to: whole)
        if !reused, let recycled { try? FileManager.default.removeItem(atPath: recycled) }
        Failpoint.reach(.deltaMaterialized, "\(model) v\(version)", log: log)
        do {
            _ = try Checkpoint.Reader(path: whole)
        } catch {
            try? FileManager.default.removeItem(atPath: whole)
            throw error
        }
        try? FileManager.default.removeItem(atPath: delta)
        return whole
    }

    /// Stops serving `version` of `model` (its manifest is deleted; the file is the caller's).
    private func forget(_ model: String, _ version: UInt64) {
        guard let m = manifests[model]?[version] else { return }
        try? FileManager.default.removeItem(atPath: manifestPath(model, version))
        try? handles.removeValue(forKey: path(model, version, m.format))?.close()
        manifests[model]?[version] = nil
    }

    /// Deletes versions beyond the newest `keepVersions` (version 0 stays).
    private func prune(_ model: String) {
        let versions = (manifests[model]?.keys.sorted() ?? []).filter { $0 > 0 }
        guard versions.count > settings.keepVersions else { return }
        for v in versions.dropLast(settings.keepVersions) {
            guard let m = manifests[model]?[v] else { continue }
            forget(model, v)
            try? FileManager.default.removeItem(atPath: path(model, v, m.format))
        }
    }

    public func manifest(model: String, version: UInt64) -> WeightManifest? {
        guard let versions = manifests[model] else { return nil }
        if version == Self.latest { return versions.keys.max().flatMap { versions[$0] } }
        return versions[version]
    }

    /// `gguf` or `safetensors`, after checking that the file parses as one.
    static func checkFormat(_ file: String) throws -> String {
        guard let magic = FileHandle(forReadingAtPath: file)?.readData(ofLength: 4) else {
            throw PipelineError("\(file): cannot open")
        }
        if magic == Data("GGUF".utf8) {
            _ = try GGUFFile(path: file)
            return "gguf"
        }
        _ = try SafetensorsFile(path: file)
        return "safetensors"
    }

    /// Size and chunk checksums of a file, read once, and the identity derived from them.
    static func manifest(of file: String, chunkBytes: Int) throws -> WeightManifest {
        guard let handle = FileHandle(forReadingAtPath: file) else { throw PipelineError("\(file): cannot open") }
        defer { try? handle.close() }
        var manifest = WeightManifest()
        manifest.chunkBytes = UInt64(chunkBytes)
        var total: UInt64 = 0
        while true {
            let data = try handle.read(upToCount: chunkBytes) ?? Data()
            if data.isEmpty { break }
            total += UInt64(data.count)
            data.withUnsafeBytes { manifest.chunkXxh64.append(XXH64.hash($0)) }
            if data.count < chunkBytes { break }
        }
        manifest.totalBytes = total
        manifest.sha256 = manifest.identity
        return manifest
    }

    // MARK: Serving

    public func stop() { stopFlag.set() }

    /// Serves requests and publications until `stop()`.
    public func run() throws {
        let context = try Context()
        defer { context.shutdown() }
        let authenticator = try settings.security.authenticator(context: context) { [log] line in log(line) }
        defer { authenticator?.stop() }
        let router = try Socket(context, .router)
        try router.setHighWaterMarks(send: 0, receive: 0)
        try router.setLinger(.zero)
        try router.setMaxMessageSize(MessageSizeLimit.paramRequests)
        try settings.security.serve(router, .params)
        try router.bind(settings.endpoint)
        let publisher = try Socket(context, .pub)
        try publisher.setLinger(.zero)
        try settings.security.serve(publisher, .params)
        try publisher.bind(settings.announceEndpoint)
        let handshakes = try settings.security.watch(context: context, [(router, .params), (publisher, .params)]) { [log] line in log(line) }
        defer { handshakes?.stop() }
        log("serving weights on \(settings.endpoint), announcing on \(settings.announceEndpoint); \(settings.security.summary)")
        defer { for h in handles.values { try? h.close() }; handles = [:] }
        var lastAnnounce: UInt64 = 0
        while !stopFlag.isSet {
            // Re-announce the newest versions every few seconds, for subscribers that joined late.
            if nowMs() - lastAnnounce > 3000 {
                for model in ["actor", "critic"] {
                    if let m = manifest(model: model, version: Self.latest) {
                        try sender.send(publisher, .announcement(VersionAnnouncement.with { $0.model = model; $0.version = m.version }))
                    }
                }
                lastAnnounce = nowMs()
            }
            guard try Poller.poll([router], timeout: .milliseconds(200))[0] else { continue }
            while let incoming = try router.receiveMessage(router: true) {
                switch incoming {
                case .rejected(let peer, let reason):
                    log("bad message: \(reason)")
                    if let peer { try reply(router, peer, .error(ErrorReply.with { $0.code = "bad-message"; $0.detail = String(reason.prefix(500)) })) }
                case .message(let peer, let message):
                    try handle(message, from: peer!, key: router.lastPeerKey, router, publisher)
                }
            }
        }
        log("stopped")
    }

    private func reply(_ router: Socket, _ peer: [UInt8], _ body: Envelope.OneOf_Body, payload: [UInt8]? = nil) throws {
        try sender.send(router, body, to: peer, payload: payload)
    }

    private func handle(_ message: WireCodec.Message, from peer: [UInt8], key: String?, _ router: Socket, _ publisher: Socket) throws {
        let id = message.envelope.messageID
        func error(_ code: String, _ detail: String) throws {
            try reply(router, peer, .error(ErrorReply.with { $0.messageID = id; $0.code = code; $0.detail = detail }))
        }
        switch message.body {
        case .weightRequest(let request):
            guard let manifest = manifest(model: request.model, version: request.version) else {
                let have = manifests[request.model]?.keys.sorted().map(String.init).joined(separator: ", ") ?? "none"
                let which = request.version == Self.latest ? "any version" : "version \(request.version)"
                try error("unknown-version", "the param-store has no \(which) of '\(request.model)' (it has: \(have))")
                return
            }
            if request.manifest {
                try reply(router, peer, .weightManifest(manifest))
                return
            }
            let index = Int(request.chunkIndex)
            guard index < manifest.chunkXxh64.count else {
                try error("bad-chunk", "chunk \(index) of \(request.model) v\(manifest.version) does not exist (it has \(manifest.chunkXxh64.count))")
                return
            }
            let file = path(request.model, manifest.version, manifest.format)
            let handle: FileHandle
            if let open = handles[file] {
                handle = open
            } else {
                guard let opened = FileHandle(forReadingAtPath: file) else {
                    try error("unknown-version", "\(request.model) v\(manifest.version): its file is gone (\(file))")
                    return
                }
                if handles.count > 16 { for h in handles.values { try? h.close() }; handles = [:] }
                handles[file] = opened
                handle = opened
            }
            try handle.seek(toOffset: UInt64(index) * manifest.chunkBytes)
            let bytes = [UInt8](try handle.read(upToCount: Int(manifest.chunkBytes)) ?? Data())
            let sum = XXH64.hash(bytes)
            guard sum == manifest.chunkXxh64[index] else {
                log("CORRUPT: \(file) chunk \(index) has XXH64 \(String(sum, radix: 16)), manifest says \(String(manifest.chunkXxh64[index], radix: 16))")
                try error("corrupt-version", "\(request.model) v\(manifest.version) is damaged on the param-store's disk (chunk \(index))")
                return
            }
            try reply(router, peer, .weightChunk(WeightChunk.with {
                $0.model = request.model
                $0.version = manifest.version
                $0.index = UInt32(index)
                $0.xxh64 = sum
            }), payload: bytes)
            Telemetry.count(.weightChunksServed, [("model", request.model)])
            Telemetry.count(.weightBytesServed, [("model", request.model)], by: bytes.count)
        case .announcement(let announcement):
            if let learner = settings.security.learnerKey, key != learner {
                log("refused a publication of \(announcement.model) v\(announcement.version) from \(key ?? "a client without a key"): only the learner publishes")
                try error("not-allowed", "only the learner publishes versions")
                return
            }
            // A publication: the file waits in <model>/incoming/.
            let dir = settings.directory + "/" + announcement.model + "/incoming"
            let base = String(format: "v%06llu.", announcement.version)
            guard let name = (try? FileManager.default.contentsOfDirectory(atPath: dir))?.first(where: { $0.hasPrefix(base) && !$0.contains(".tmp") }) else {
                if announcement.version != Self.latest, manifests[announcement.model]?[announcement.version] != nil {
                    // Already registered (a retried publication whose Ack was lost).
                    try reply(router, peer, .ack(Ack.with { $0.messageID = id }))
                } else {
                    try error("missing-file", "no file \(dir)/\(base)* to publish")
                }
                return
            }
            do {
                let started = nowMs()
                let manifest = try register(model: announcement.model, version: announcement.version, file: dir + "/" + name)
                Telemetry.seconds(.weightRegisterSeconds, Double(nowMs() - started) / 1000, [("model", announcement.model)])
                log("published \(announcement.model) v\(manifest.version) (step \(announcement.step), \(manifest.totalBytes >> 20) MiB)")
                try reply(router, peer, .ack(Ack.with { $0.messageID = id }))
                try sender.send(publisher, .announcement(announcement))
            } catch let failure {
                log("refused publication of \(announcement.model) v\(announcement.version): \(failure)")
                if !(failure is VersionExists) { try? FileManager.default.removeItem(atPath: dir + "/" + name) }
                try error(failure is VersionExists ? "version-exists" : "bad-file", "\(failure)")
            }
        case .heartbeat, .ack:
            break
        default:
            try error("bad-message", "the param-store takes WeightRequest and VersionAnnouncement, not \(WireCodec.bodyName(message.body))")
        }
    }
}

extension WeightManifest {
    /// Whether every chunk of the file at `path` has its checksum here.
    func matches(file path: String) throws -> Bool {
        guard let input = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? input.close() }
        for sum in chunkXxh64 {
            guard let data = try input.read(upToCount: Int(chunkBytes)), data.withUnsafeBytes({ XXH64.hash($0) }) == sum else { return false }
        }
        return true
    }

    /// SHA-256 of the size, the chunk size and every chunk's XXH64: names the contents (two
    /// files with the same identity have the same checksum in every chunk).
    public var identity: Data {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(16 + 8 * chunkXxh64.count)
        for v in [totalBytes, chunkBytes] + chunkXxh64 { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
        return Data(SHA256.hash(bytes))
    }
}

/// A publication under a version that exists with other contents (versions are immutable).
struct VersionExists: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
