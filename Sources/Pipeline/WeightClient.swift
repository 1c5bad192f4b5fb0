import Foundation
import ModelIO
import Schema
import Wire
import ZeroMQ
import Runtime

/// Fetches weight versions from the param-store into a local cache directory, checking every
/// chunk's XXH64 on arrival and the manifest's identity (SHA-256 of the chunk checksums). Never waits forever:
/// each request is retried a few times and then fails with the reason.
public final class WeightClient {
    public struct Settings: Sendable {
        public var endpoint: String
        public var cacheDirectory: String
        public var name: String
        /// How long one request may go unanswered before it is sent again.
        public var requestTimeout: Duration = .seconds(5)
        /// How long a fetch may make no progress before it fails.
        public var giveUpAfter: Duration = .seconds(60)
        public var window = 4
        /// CURVE toward the param-store.
        public var security = LinkSecurity.plain

        public init(endpoint: String, cacheDirectory: String, name: String) {
            self.endpoint = endpoint
            self.cacheDirectory = cacheDirectory
            self.name = name
        }
    }

    public let settings: Settings
    private let context: Context
    private var socket: Socket
    private var sender: Sender
    private let log: Log

    public init(settings: Settings, log: Log) throws {
        self.settings = settings
        self.log = log
        context = try Context()
        socket = try Self.connect(context, settings)
        sender = Sender(name: settings.name)
        try FileManager.default.createDirectory(atPath: settings.cacheDirectory, withIntermediateDirectories: true)
    }

    deinit { context.shutdown() }

    private static func connect(_ context: Context, _ settings: Settings) throws -> Socket {
        let s = try Socket(context, .dealer)
        try s.setHighWaterMarks(send: 0, receive: 0)
        try s.setLinger(.zero)
        try s.setMaxMessageSize(MessageSizeLimit.replies)
        try settings.security.connect(s)
        try s.connect(settings.endpoint)
        return s
    }

    /// A fresh socket: answers to requests of an abandoned attempt must not be mistaken for
    /// answers to the next one.
    private func reconnect() throws {
        socket = try Self.connect(context, settings)
    }

    /// The manifest of `version` (`ParamStore.latest` for the newest).
    public func manifest(model: String, version: UInt64) throws -> WeightManifest {
        let deadline = ContinuousClock.now + settings.giveUpAfter
        while true {
            try sender.send(socket, .weightRequest(WeightRequest.with { $0.model = model; $0.version = version; $0.manifest = true }))
            let waitUntil = min(deadline, ContinuousClock.now + settings.requestTimeout)
            while ContinuousClock.now < waitUntil {
                guard try Poller.poll([socket], timeout: .milliseconds(100))[0] else { continue }
                while let incoming = try socket.receiveMessage(router: false) {
                    guard case .message(_, let message) = incoming else { continue }
                    switch message.body {
                    case .weightManifest(let m) where m.model == model && (version == ParamStore.latest || m.version == version):
                        return m
                    case .error(let e) where e.code == "unknown-version":
                        throw PipelineError("cannot get \(model) v\(version == ParamStore.latest ? "latest" : String(version)) from the param-store at \(settings.endpoint): \(e.detail)")
                    default:
                        continue
                    }
                }
            }
            if ContinuousClock.now >= deadline {
                throw PipelineError("the param-store at \(settings.endpoint) did not answer for \(settings.giveUpAfter) (asked for the manifest of \(model) v\(version))")
            }
            try reconnect()
        }
    }

    /// Bytes the last `fetch` downloaded, and bytes it took from an older cached version.
    public private(set) var lastFetch = (downloaded: 0, reused: 0)

    /// The local path of `version` of `model`, downloading it unless the cache holds it.
    ///
    /// A version is fetched as a delta of the cached version of the model sharing the most
    /// chunks with it: that file is patched where the chunks differ (only those are downloaded)
    /// and renamed. Versions written by the learner keep every tensor at the same offset, so a
    /// step that trained 4 of 30 blocks moves about a ninth of the actor.
    public func fetch(model: String, version: UInt64) throws -> (path: String, manifest: WeightManifest) {
        let manifest = try self.manifest(model: model, version: version)
        let path = settings.cacheDirectory + "/" + model + "-" + String(format: "v%06llu.", manifest.version) + manifest.format
        if let cached = Self.cachedManifest(path), cached.sha256 == manifest.sha256,
           (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? UInt64) == manifest.totalBytes,
           try verifiedHere.contains(path) || manifest.matches(file: path) {
            verifiedHere.insert(path)
            lastFetch = (0, 0)
            return (path, manifest)
        }
        let started = ContinuousClock.now
        let base = deltaBase(for: manifest, model: model, excluding: path)
        lastFetch = try download(manifest, to: path, base: base)
        let seconds = (ContinuousClock.now - started).seconds
        Telemetry.seconds(.weightFetchSeconds, seconds, [("model", model)])
        Telemetry.count(.weightFetchBytes, [("model", model)], by: lastFetch.downloaded)
        Telemetry.count(.weightReusedBytes, [("model", model)], by: lastFetch.reused)
        let from = base.map { String(format: " (%.0f MiB reused from v%llu)", Double(lastFetch.reused) / 1048576, $0.manifest.version) } ?? ""
        log(String(format: "fetched %@ v%llu: %.0f MiB in %.2f s", model, manifest.version, Double(lastFetch.downloaded) / 1048576, seconds) + from)
        // Older cached versions of the model are not needed any more.
        let prefix = model + "-v"
        for name in (try? FileManager.default.contentsOfDirectory(atPath: settings.cacheDirectory)) ?? []
        where name.hasPrefix(prefix) && !(settings.cacheDirectory + "/" + name).hasPrefix(path) {
            try? FileManager.default.removeItem(atPath: settings.cacheDirectory + "/" + name)
        }
        return (path, manifest)
    }

    /// Cached files this process wrote or checked. Files are not flushed to disk (they are a
    /// cache), so one found from before is checked chunk by chunk once before it is used.
    private var verifiedHere = Set<String>()

    /// The manifest saved beside a cached file, if it is there and readable.
    static func cachedManifest(_ path: String) -> WeightManifest? {
        guard let bytes = try? Data(contentsOf: URL(fileURLWithPath: path + ".manifest")) else { return nil }
        return try? WeightManifest(serializedBytes: [UInt8](bytes))
    }

    /// The cached version of `model` sharing the most chunks with `manifest` (same chunk size
    /// and format), if any shares one.
    private func deltaBase(for manifest: WeightManifest, model: String, excluding path: String) -> (path: String, manifest: WeightManifest)? {
        var best: (path: String, manifest: WeightManifest, shared: Int)? = nil
        for name in (try? FileManager.default.contentsOfDirectory(atPath: settings.cacheDirectory)) ?? []
        where name.hasPrefix(model + "-v") && name.hasSuffix("." + manifest.format) {
            let file = settings.cacheDirectory + "/" + name
            guard file != path, let m = Self.cachedManifest(file), m.chunkBytes == manifest.chunkBytes,
                  (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? UInt64) == m.totalBytes else { continue }
            let shared = Self.sharedChunks(m, manifest).count
            if shared > (best?.shared ?? 0) { best = (file, m, shared) }
        }
        return best.map { ($0.path, $0.manifest) }
    }

    /// Indices of the chunks `new` can take from `old`: same checksum and same length.
    static func sharedChunks(_ old: WeightManifest, _ new: WeightManifest) -> [Int] {
        guard old.chunkBytes == new.chunkBytes, old.chunkBytes > 0 else { return [] }
        let size = Int(old.chunkBytes)
        func length(_ m: WeightManifest, _ i: Int) -> Int { min(size, Int(m.totalBytes) - i * size) }
        return (0..<min(old.chunkXxh64.count, new.chunkXxh64.count)).filter {
            old.chunkXxh64[$0] == new.chunkXxh64[$0] && length(old, $0) == length(new, $0)
        }
    }

    /// Writes `manifest`'s file to `path`: the chunks `base` shares are kept from there, the
    /// rest come from the param-store. The base file becomes the new one (patched where they
    /// differ, then renamed): an older version is not kept in the cache anyway, and a fetch cut
    /// short leaves only a `.part` file that no manifest names. Returns the bytes downloaded and
    /// kept.
    private func download(_ manifest: WeightManifest, to path: String,
                          base: (path: String, manifest: WeightManifest)?) throws -> (downloaded: Int, reused: Int) {
        let chunks = manifest.chunkXxh64.count, chunkBytes = Int(manifest.chunkBytes)
        let temp = path + ".part"
        var received = [Bool](repeating: false, count: chunks)
        var done = 0, downloaded = 0, reused = 0
        var shared: [Int] = []
        if let base {
            shared = Self.sharedChunks(base.manifest, manifest)
            // A file from before this process is checked first: the cache is not flushed to disk.
            if !shared.isEmpty && !verifiedHere.contains(base.path) && !((try? base.manifest.matches(file: base.path)) ?? false) {
                log("cached \(base.path) does not match its manifest; fetching \(manifest.model) v\(manifest.version) whole")
                shared = []
            }
        }
        if shared.isEmpty {
            FileManager.default.createFile(atPath: temp, contents: nil)
        } else {
            try? FileManager.default.removeItem(atPath: base!.path + ".manifest")
            verifiedHere.remove(base!.path)
            guard rename(base!.path, temp) == 0 else { throw PipelineError("cannot move \(base!.path) to \(temp): \(String(cString: strerror(errno)))") }
        }
        guard let out = FileHandle(forWritingAtPath: temp) else { throw PipelineError("cannot write \(temp)") }
        defer { try? out.close() }
        try out.truncate(atOffset: manifest.totalBytes)
        for i in shared {
            received[i] = true
            done += 1
            reused += min(chunkBytes, Int(manifest.totalBytes) - i * chunkBytes)
        }
        var limits = WireCodec.Limits()
        limits.payloadBytes = chunkBytes
        var sentAt: [Int: ContinuousClock.Instant] = [:]
        var next = 0
        var lastProgress = ContinuousClock.now
        func request(_ i: Int) throws {
            try sender.send(socket, .weightRequest(WeightRequest.with {
                $0.model = manifest.model; $0.version = manifest.version; $0.chunkIndex = UInt32(i)
            }))
            sentAt[i] = .now
        }
        while done < chunks {
            while sentAt.count < settings.window && next < chunks {
                if !received[next] { try request(next) }
                next += 1
            }
            if try Poller.poll([socket], timeout: .milliseconds(100))[0] {
                while let incoming = try socket.receiveMessage(router: false, limits: limits) {
                    guard case .message(_, let message) = incoming else { continue }
                    switch message.body {
                    case .weightChunk(let chunk) where chunk.model == manifest.model && chunk.version == manifest.version:
                        let i = Int(chunk.index)
                        guard i < chunks, !received[i], let payload = message.payload else { continue }
                        let expectedSize = i == chunks - 1 ? Int(manifest.totalBytes) - i * chunkBytes : chunkBytes
                        guard payload.count == expectedSize, XXH64.hash(payload) == manifest.chunkXxh64[i] else {
                            log("chunk \(i) of \(manifest.model) v\(manifest.version) arrived damaged; asking again")
                            try request(i)
                            continue
                        }
                        try out.seek(toOffset: UInt64(i) * UInt64(chunkBytes))
                        out.write(Data(payload))
                        received[i] = true
                        sentAt[i] = nil
                        done += 1
                        downloaded += payload.count
                        lastProgress = .now
                    case .error(let e):
                        throw PipelineError("the param-store refused \(manifest.model) v\(manifest.version): \(e.code): \(e.detail)")
                    default:
                        continue
                    }
                }
            }
            let now = ContinuousClock.now
            if now - lastProgress > settings.giveUpAfter {
                throw PipelineError("the param-store at \(settings.endpoint) stopped sending \(manifest.model) v\(manifest.version) (\(done) of \(chunks) chunks after \(settings.giveUpAfter) without progress)")
            }
            for (i, at) in sentAt where now - at > settings.requestTimeout { try request(i) }
        }
        try out.close()
        // Every chunk matched its checksum on arrival; the manifest must name those checksums.
        guard manifest.identity == manifest.sha256 else {
            try? FileManager.default.removeItem(atPath: temp)
            throw PipelineError("\(manifest.model) v\(manifest.version): the manifest's identity does not match its chunk checksums")
        }
        guard rename(temp, path) == 0 else { throw PipelineError("cannot move \(temp) to \(path)") }
        try AtomicFile.write(Data(try manifest.serializedBytes() as [UInt8]), to: path + ".manifest", durable: false)
        verifiedHere.insert(path)
        return (downloaded, reused)
    }

    static func sha256(of file: String) throws -> [UInt8] {
        guard let handle = FileHandle(forReadingAtPath: file) else { throw PipelineError("cannot read \(file)") }
        defer { try? handle.close() }
        var sha = SHA256()
        while let data = try handle.read(upToCount: 4 << 20), !data.isEmpty {
            data.withUnsafeBytes { sha.update($0) }
        }
        return sha.finalize()
    }
}
