import Foundation
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
        let server = try Socket(context, .router)
        try server.makeCurveServer(keys: serverKeys)
        try server.bind("tcp://127.0.0.1:*")
        let endpoint = try XCTUnwrap(server.lastEndpoint)

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

    func testPlainClientsAreRefusedByACurveServer() throws {
        let context = try Context()
        let serverKeys = try CurveKeyPair.generate()
        let authenticator = try ZAPAuthenticator(context: context, allowedClientKeys: [])
        defer { authenticator.stop() }
        let server = try Socket(context, .router)
        try server.makeCurveServer(keys: serverKeys)
        try server.bind("tcp://127.0.0.1:*")
        let plain = try Socket(context, .dealer)
        try plain.connect(try XCTUnwrap(server.lastEndpoint))
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
