import Foundation
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

    /// The local path of `version` of `model`, downloading it unless the cache holds it.
    public func fetch(model: String, version: UInt64) throws -> (path: String, manifest: WeightManifest) {
        let manifest = try self.manifest(model: model, version: version)
        let path = settings.cacheDirectory + "/" + model + "-" + String(format: "v%06llu.", manifest.version) + manifest.format
        if let cached = try? Data(contentsOf: URL(fileURLWithPath: path + ".sha256")), cached == manifest.sha256,
           (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? UInt64) == manifest.totalBytes {
            return (path, manifest)
        }
        let started = ContinuousClock.now
        try download(manifest, to: path)
        let seconds = (ContinuousClock.now - started).seconds
        Telemetry.seconds("coderl_weight_fetch_seconds", seconds, [("model", model)])
        Telemetry.count("coderl_weight_fetch_bytes_total", [("model", model)], by: Int(manifest.totalBytes))
        log(String(format: "fetched %@ v%llu: %.0f MiB in %.2f s", model, manifest.version, Double(manifest.totalBytes) / 1048576, seconds))
        // Older cached versions of the model are not needed any more.
        let prefix = model + "-v"
        for name in (try? FileManager.default.contentsOfDirectory(atPath: settings.cacheDirectory)) ?? []
        where name.hasPrefix(prefix) && !path.hasSuffix(name) && !path.hasSuffix(String(name.dropLast(7))) {
            try? FileManager.default.removeItem(atPath: settings.cacheDirectory + "/" + name)
        }
        return (path, manifest)
    }

    private func download(_ manifest: WeightManifest, to path: String) throws {
        let chunks = manifest.chunkXxh64.count, chunkBytes = Int(manifest.chunkBytes)
        let temp = path + ".part"
        FileManager.default.createFile(atPath: temp, contents: nil)
        guard let out = FileHandle(forWritingAtPath: temp) else { throw PipelineError("cannot write \(temp)") }
        defer { try? out.close() }
        var limits = WireCodec.Limits()
        limits.payloadBytes = chunkBytes
        var received = [Bool](repeating: false, count: chunks)
        var done = 0
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
        try out.synchronize()
        try out.close()
        // Every chunk matched its checksum on arrival; the manifest must name those checksums.
        guard manifest.identity == manifest.sha256 else {
            try? FileManager.default.removeItem(atPath: temp)
            throw PipelineError("\(manifest.model) v\(manifest.version): the manifest's identity does not match its chunk checksums")
        }
        guard rename(temp, path) == 0 else { throw PipelineError("cannot move \(temp) to \(path)") }
        try manifest.sha256.write(to: URL(fileURLWithPath: path + ".sha256"))
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
