import Foundation
import Synchronization
import XCTest
import ZeroMQ

final class CurveTests: XCTestCase {
    func testKeyPairsAreValidZ85AndDistinct() throws {
        let a = try CurveKeyPair.generate(), b = try CurveKeyPair.generate()
        XCTAssertEqual(a.publicKey.count, 40)
        XCTAssertNotEqual(a.publicKey, b.publicKey)
        XCTAssertEqual(CurveKeyPair.decode(a.publicKey).flatMap(CurveKeyPair.encode), a.publicKey)
        XCTAssertThrowsError(try CurveKeyPair(publicKey: "short", secretKey: a.secretKey)) { error in
            XCTAssertTrue("\(error)".contains("'short'"), "\(error)")
        }
    }

    /// A CURVE ROUTER on a free loopback port, and its endpoint.
    func curveServer(_ context: Context, _ keys: CurveKeyPair) throws -> (Socket, String) {
        let server = try Socket(context, .router)
        try server.makeCurveServer(keys: keys)
        try server.bind("tcp://127.0.0.1:*")
        return (server, try XCTUnwrap(server.lastEndpoint))
    }

    /// Server with a ZAP allow-list on tcp; returns whether a client with `clientKeys`,
    /// trusting `serverKey`, gets an answer.
    func exchange(context: Context, server: Socket, endpoint: String,
                  clientKeys: CurveKeyPair, serverKey: String) throws -> Bool {
        let client = try Socket(context, .dealer)
        try client.makeCurveClient(keys: clientKeys, serverKey: serverKey)
        try client.connect(endpoint)
        try client.send([Array("hello".utf8)])
        guard try server.waitForMessage(timeout: .milliseconds(700)) else { return false }
        let request = try server.receive()
        try server.send([request[0], Array("welcome".utf8)])
        guard try client.waitForMessage(timeout: .seconds(5)) else { return false }
        return try client.receive() == [Array("welcome".utf8)]
    }

    func testOnlyListedClientsThatTrustTheRightServerGetIn() throws {
        let context = try Context()
        let serverKeys = try CurveKeyPair.generate()
        let allowed = try CurveKeyPair.generate(), stranger = try CurveKeyPair.generate()
        let authenticator = try ZAPAuthenticator(context: context, allowedClientKeys: [allowed.publicKey])
        defer { authenticator.stop() }
        let (server, endpoint) = try curveServer(context, serverKeys)

        XCTAssertTrue(try exchange(context: context, server: server, endpoint: endpoint,
                                   clientKeys: allowed, serverKey: serverKeys.publicKey))
        XCTAssertFalse(try exchange(context: context, server: server, endpoint: endpoint,
                                    clientKeys: stranger, serverKey: serverKeys.publicKey),
                       "a client key not on the list is refused by the ZAP handler")
        let impostor = try CurveKeyPair.generate()
        XCTAssertFalse(try exchange(context: context, server: server, endpoint: endpoint,
                                    clientKeys: allowed, serverKey: impostor.publicKey),
                       "a client expecting another server key never completes the handshake")
        XCTAssertGreaterThanOrEqual(authenticator.decisions.accepted, 1)
        XCTAssertGreaterThanOrEqual(authenticator.decisions.refused, 1)

        try authenticator.allow(stranger.publicKey)
        XCTAssertTrue(try exchange(context: context, server: server, endpoint: endpoint,
                                   clientKeys: stranger, serverKey: serverKeys.publicKey))
    }

    /// Machines join (and leave) a running server by editing its allow-list file; a bad edit
    /// keeps the previous list and says why.
    func testTheAllowListFileIsReReadWhenItChanges() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("allow-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/allowed"
        let context = try Context()
        let serverKeys = try CurveKeyPair.generate()
        let first = try CurveKeyPair.generate(), second = try CurveKeyPair.generate(), pinned = try CurveKeyPair.generate()
        try "# head's list\n\(first.publicKey)  # machine a\n".write(toFile: file, atomically: true, encoding: .utf8)
        let lines = Mutex<[String]>([])
        let authenticator = try ZAPAuthenticator(context: context, allowedClientKeys: [pinned.publicKey], allowListFile: file) { line in
            lines.withLock { $0.append(line) }
        }
        defer { authenticator.stop() }
        let (server, endpoint) = try curveServer(context, serverKeys)
        func admitted(_ keys: CurveKeyPair) throws -> Bool {
            try exchange(context: context, server: server, endpoint: endpoint, clientKeys: keys, serverKey: serverKeys.publicKey)
        }
        XCTAssertTrue(try admitted(first))
        XCTAssertTrue(try admitted(pinned))
        XCTAssertFalse(try admitted(second))

        // Added while the server runs (written whole and renamed, as `coderl keys --allow` does).
        try "\(first.publicKey)\n\(second.publicKey)  # machine b\n".write(toFile: file, atomically: true, encoding: .utf8)
        XCTAssertTrue(try admitted(second), "a key added to the file is accepted without a restart")
        XCTAssertTrue(lines.withLock { $0 }.contains { $0.contains("re-read: 2 key(s), 1 added, 0 removed") }, "\(lines.withLock { $0 })")

        // A bad line: the previous list stays in force, and the log names the line.
        try "\(first.publicKey)\nnot a key\n".write(toFile: file, atomically: true, encoding: .utf8)
        XCTAssertTrue(try admitted(second), "a broken file must not lock out the machines already listed")
        XCTAssertTrue(lines.withLock { $0 }.contains { $0.contains("not re-read") && $0.contains("line 2") }, "\(lines.withLock { $0 })")

        // Removed: the next handshake is refused; keys given in code stay allowed.
        try "\(first.publicKey)\n".write(toFile: file, atomically: true, encoding: .utf8)
        XCTAssertFalse(try admitted(second), "a key removed from the file is refused")
        XCTAssertTrue(try admitted(first))
        XCTAssertTrue(try admitted(pinned))

        // The file gone: the last list stays in force.
        try FileManager.default.removeItem(atPath: file)
        XCTAssertTrue(try admitted(first))
        XCTAssertTrue(lines.withLock { $0 }.contains { $0.contains("is gone") }, "\(lines.withLock { $0 })")

        // At start-up a bad file is an error naming the file and the line.
        try "oops\n".write(toFile: file, atomically: true, encoding: .utf8)
        authenticator.stop()
        XCTAssertThrowsError(try ZAPAuthenticator(context: context, allowedClientKeys: [], allowListFile: file)) { error in
            XCTAssertTrue("\(error)".contains(file) && "\(error)".contains("line 1"), "\(error)")
        }
    }

    /// The client side sees its handshake refused (libzmq then drops that connection for good)
    /// or accepted, through the socket monitor.
    func testAClientSeesItsHandshakeRefusedOrAccepted() throws {
        let context = try Context()
        let serverKeys = try CurveKeyPair.generate(), allowed = try CurveKeyPair.generate(), stranger = try CurveKeyPair.generate()
        let authenticator = try ZAPAuthenticator(context: context, allowedClientKeys: [allowed.publicKey])
        defer { authenticator.stop() }
        let (server, endpoint) = try curveServer(context, serverKeys)
        func firstEvent(_ keys: CurveKeyPair) throws -> HandshakeMonitor.Event? {
            let client = try Socket(context, .dealer)
            try client.makeCurveClient(keys: keys, serverKey: serverKeys.publicKey)
            let monitor = try HandshakeMonitor(watching: client)
            try client.connect(endpoint)
            for _ in 0..<50 {
                if try Poller.poll([monitor.pollable], timeout: .milliseconds(100))[0], let event = monitor.events().first { return event }
            }
            return nil
        }
        try withExtendedLifetime(server) {
            XCTAssertEqual(try firstEvent(stranger), .refused(status: 400))
            XCTAssertEqual(try firstEvent(allowed), .succeeded)
        }
    }

    func testPlainClientsAreRefusedByACurveServer() throws {
        let context = try Context()
        let serverKeys = try CurveKeyPair.generate()
        let authenticator = try ZAPAuthenticator(context: context, allowedClientKeys: [])
        defer { authenticator.stop() }
        let (server, endpoint) = try curveServer(context, serverKeys)
        let plain = try Socket(context, .dealer)
        try plain.connect(endpoint)
        try plain.send([Array("let me in".utf8)])
        XCTAssertFalse(try server.waitForMessage(timeout: .milliseconds(500)))
    }

    func testAuthenticatorStopsPromptly() throws {
        let context = try Context()
        let start = ContinuousClock.now
        let authenticator = try ZAPAuthenticator(context: context, allowedClientKeys: [])
        authenticator.stop()
        authenticator.stop()
        XCTAssertLessThan(ContinuousClock.now - start, .seconds(2))
        // The inproc endpoint is free again for a new handler.
        let again = try ZAPAuthenticator(context: context, allowedClientKeys: [])
        again.stop()
    }
}
