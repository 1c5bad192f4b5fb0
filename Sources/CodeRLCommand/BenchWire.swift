import ArgumentParser
import Foundation
import Schema
import Wire
import ZeroMQ

struct BenchWire: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wire",
        abstract: "Message latency and throughput over inproc:// and tcp://127.0.0.1, and a weight set moved between two processes (target: 540 MB in under 1 s).",
        discussion: """
            Examples:
              coderl bench wire
              coderl bench wire --round-trips 5000
            """)

    @Option(help: "Round trips for the latency measurement.") var roundTrips = 20_000
    @Option(help: "Messages for the throughput measurement.") var messages = 200_000
    @Option(help: "Weight-set size in MB for the transfer measurement.") var weightMB = 540
    @Option(help: "Chunk size in MiB for the transfer.") var chunkMiB = 4
    @Option(help: "Chunk requests kept in flight.") var window = 8
    @Option(help: .hidden) var serveWeights: String?

    func validate() throws {
        guard roundTrips > 0, messages > 0, weightMB > 0, chunkMiB > 0, window > 0 else {
            throw ValidationError("all counts and sizes must be positive")
        }
    }

    func run() throws {
        if let serveWeights { return try WeightServer.serve(endpoint: serveWeights, bytes: weightMB * 1_000_000, chunkBytes: chunkMiB << 20) }
        print("libzmq \(Context.version); messages encoded and decoded by WireCodec at both ends")
        let job = ExecutionJob.with {
            $0.jobID = "job-000001"; $0.problemID = "mbpp/601"; $0.leaseMs = 30_000
            $0.program = String(repeating: "def f(x):\n    return x + 1\n", count: 8)
            $0.suiteHash = Data(SHA256.hash("suite"))
        }
        let jobBytes = try WireCodec.encode(.job(job), id: "m", sender: "bench")[0].count
        for transport in ["inproc://bench-wire", "tcp://127.0.0.1:*"] {
            let latency = try measureLatency(transport)
            let rate = try measureThroughput(transport, job: job)
            print(String(format: "%-10@ round trip %6.1f µs (Ack both ways)   one-way %8.0f messages/s (%d-byte ExecutionJob)",
                         transport.hasPrefix("tcp") ? "tcp" : "inproc", latency * 1e6, rate, jobBytes))
        }
        let (seconds, bytes) = try measureWeightTransfer()
        print(String(format: "weights    %.0f MB in %d MiB chunks between two processes over tcp loopback: %.2f s (%.2f GB/s, chunks checked by XXH64)   target < 1 s: %@",
                     Double(bytes) / 1e6, chunkMiB, seconds, Double(bytes) / seconds / 1e9, seconds < 1 ? "met" : "MISSED"))
    }

    /// An echo thread answers Acks on a ROUTER; the caller times DEALER round trips.
    func measureLatency(_ transport: String) throws -> Double {
        let context = try Context()
        let server = try Socket(context, .router)
        try server.bind(transport)
        let endpoint = server.lastEndpoint ?? transport
        let transfer = SocketHandoff(server)
        let done = DispatchSemaphore(value: 0)
        let count = roundTrips
        Thread.detachNewThread {
            guard let socket = transfer.take() else { return }
            for _ in 0..<count {
                guard let frames = try? socket.receive(), frames.count == 2,
                      let message = try? WireCodec.decode([frames[1]]),
                      let reply = try? WireCodec.encode(.ack(Ack.with { $0.messageID = message.envelope.messageID }), id: "r", sender: "echo")
                else { break }
                try? socket.send([frames[0]] + reply)
            }
            done.signal()
        }
        let client = try Socket(context, .dealer)
        try client.connect(endpoint)
        try client.setReceiveTimeout(.seconds(10))
        let t0 = DispatchTime.now().uptimeNanoseconds
        for i in 0..<count {
            try client.send(try WireCodec.encode(.ack(Ack.with { $0.messageID = "q\(i)" }), id: "q\(i)", sender: "bench"))
            let reply = try WireCodec.decode(try client.receive())
            guard case .ack(let ack) = reply.body, ack.messageID == "q\(i)" else { throw CLIError("echo answered the wrong message") }
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        done.wait()
        return seconds / Double(count)
    }

    /// PUSH to PULL on two threads; the receiver decodes every message.
    func measureThroughput(_ transport: String, job: ExecutionJob) throws -> Double {
        let context = try Context()
        let pull = try Socket(context, .pull)
        try pull.bind(transport.replacingOccurrences(of: "bench-wire", with: "bench-push"))
        let endpoint = pull.lastEndpoint ?? transport
        let count = messages
        let frames = try WireCodec.encode(.job(job), id: "m", sender: "bench")
        let push = try Socket(context, .push)
        try push.connect(endpoint)
        let handoff = SocketHandoff(push)
        Thread.detachNewThread {
            guard let socket = handoff.take() else { return }
            for _ in 0..<count { try? socket.send(frames) }
        }
        try pull.setReceiveTimeout(.seconds(10))
        let t0 = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<count {
            let message = try WireCodec.decode(try pull.receive())
            guard case .job = message.body else { throw CLIError("received something other than a job") }
        }
        return Double(count) / (Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
    }

    /// Starts `coderl bench wire --serve-weights` as a second process, fetches every chunk
    /// with `window` requests in flight, checks each chunk's XXH64 and assembles the set.
    func measureWeightTransfer() throws -> (Double, Int) {
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/proc/self/exe")
        server.arguments = ["bench", "wire", "--serve-weights", "tcp://127.0.0.1:*", "--weight-mb", "\(weightMB)", "--chunk-mi-b", "\(chunkMiB)"]
        let pipe = Pipe()
        server.standardOutput = pipe
        try server.run()
        defer { if server.isRunning { server.terminate() }; server.waitUntilExit() }
        var line = ""
        while !line.hasSuffix("\n") {
            let byte = pipe.fileHandleForReading.readData(ofLength: 1)
            guard !byte.isEmpty else { throw CLIError("the weight server exited before it was ready") }
            line += String(decoding: byte, as: UTF8.self)
        }
        guard line.hasPrefix("ready ") else { throw CLIError("unexpected line from the weight server: \(line)") }
        let endpoint = String(line.dropFirst(6).dropLast())

        let context = try Context()
        let client = try Socket(context, .dealer)
        try client.setHighWaterMarks(send: 0, receive: 0)
        try client.connect(endpoint)
        try client.setReceiveTimeout(.seconds(10))
        let t0 = DispatchTime.now().uptimeNanoseconds
        try client.send(try WireCodec.encode(.weightRequest(WeightRequest.with { $0.model = "actor"; $0.version = 1; $0.manifest = true }), id: "manifest", sender: "bench"))
        guard case .weightManifest(let manifest) = try WireCodec.decode(try client.receive()).body else {
            throw CLIError("the server did not answer with a manifest")
        }
        let total = Int(manifest.totalBytes), chunk = Int(manifest.chunkBytes), chunks = manifest.chunkXxh64.count
        let weights = UnsafeMutableRawBufferPointer.allocate(byteCount: total, alignment: 64)
        defer { weights.deallocate() }
        var next = 0, received = 0
        func request(_ index: Int) throws {
            try client.send(try WireCodec.encode(.weightRequest(WeightRequest.with { $0.model = "actor"; $0.version = manifest.version; $0.chunkIndex = UInt32(index) }),
                                                 id: "c\(index)", sender: "bench"))
        }
        while next < min(window, chunks) { try request(next); next += 1 }
        var limits = WireCodec.Limits()
        limits.payloadBytes = chunk
        while received < chunks {
            // Frames are checked and copied straight out of libzmq's buffers: one copy per chunk.
            try client.receive { frames in
                let message = try WireCodec.decode(inPlace: frames, limits: limits)
                guard case .weightChunk(let header) = message.body else { throw CLIError("expected a weight chunk") }
                let payload = frames[1]
                let index = Int(header.index)
                guard index < chunks, payload.count == min(chunk, total - index * chunk) else { throw CLIError("chunk \(index) has the wrong size") }
                guard XXH64.hash(payload) == header.xxh64, header.xxh64 == manifest.chunkXxh64[index] else {
                    throw CLIError("chunk \(index) failed its checksum")
                }
                weights.baseAddress!.advanced(by: index * chunk).copyMemory(from: payload.baseAddress!, byteCount: payload.count)
            }
            received += 1
            if next < chunks { try request(next); next += 1 }
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        // The whole set's identity, checked once outside the timed transfer.
        guard SHA256.hash(UnsafeRawBufferPointer(weights)) == Array(manifest.sha256) else { throw CLIError("the assembled weights differ from the server's") }
        return (seconds, total)
    }
}

/// Serves one weight set: a manifest and chunks, each chunk followed by its raw bytes.
enum WeightServer {
    static func serve(endpoint: String, bytes: Int, chunkBytes: Int) throws {
        var data = [UInt8](repeating: 0, count: bytes)
        var state: UInt64 = 0x2545_F491_4F6C_DD1D
        data.withUnsafeMutableBytes { raw in
            let words = raw.bindMemory(to: UInt64.self)
            for i in 0..<words.count { state ^= state << 13; state ^= state >> 7; state ^= state << 17; words[i] = state }
        }
        let chunks = (bytes + chunkBytes - 1) / chunkBytes
        var manifest = WeightManifest()
        manifest.model = "actor"
        manifest.version = 1
        manifest.format = "raw"
        manifest.totalBytes = UInt64(bytes)
        manifest.chunkBytes = UInt64(chunkBytes)
        manifest.chunkXxh64 = data.withUnsafeBytes { raw in
            (0..<chunks).map { XXH64.hash(UnsafeRawBufferPointer(rebasing: raw[$0 * chunkBytes..<min(bytes, ($0 + 1) * chunkBytes)])) }
        }
        manifest.sha256 = Data(SHA256.hash(data))
        let context = try Context()
        let socket = try Socket(context, .router)
        try socket.setHighWaterMarks(send: 0, receive: 0)
        try socket.bind(endpoint)
        FileHandle.standardOutput.write(Data("ready \(socket.lastEndpoint ?? endpoint)\n".utf8))
        try socket.setReceiveTimeout(.seconds(30))
        var served = 0
        while served < chunks {
            let frames = try socket.receive()
            guard frames.count == 2, case .weightRequest(let request) = try WireCodec.decode([frames[1]]).body else { continue }
            if request.manifest {
                try socket.send([frames[0]] + WireCodec.encode(.weightManifest(manifest), id: "manifest", sender: "param-store"))
                continue
            }
            let index = Int(request.chunkIndex)
            guard index < chunks else { continue }
            let range = index * chunkBytes..<min(bytes, (index + 1) * chunkBytes)
            let header = WeightChunk.with { $0.model = "actor"; $0.version = 1; $0.index = UInt32(index); $0.xxh64 = manifest.chunkXxh64[index] }
            let head = try WireCodec.encode(.weightChunk(header), id: "w\(index)", sender: "param-store")[0]
            try socket.send(frame: frames[0], more: true)
            try socket.send(frame: head, more: true)
            try data.withUnsafeBytes { raw in try socket.send(frame: UnsafeRawBufferPointer(rebasing: raw[range]), more: false) }
            served += 1
        }
        usleep(200_000)  // let the last chunk leave before the socket closes (linger 0)
    }
}
