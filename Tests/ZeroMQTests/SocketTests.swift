import Foundation
import XCTest
import ZeroMQ

final class SocketTests: XCTestCase {
    func testMultipartRoundTripOverInproc() throws {
        let context = try Context()
        let server = try Socket(context, .pair)
        try server.bind("inproc://roundtrip")
        let client = try Socket(context, .pair)
        try client.connect("inproc://roundtrip")
        let big = [UInt8]((0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        try client.send([Array("head".utf8), [], big])
        let frames = try server.receive()
        XCTAssertEqual(frames.count, 3)
        XCTAssertEqual(frames[0], Array("head".utf8))
        XCTAssertEqual(frames[1], [])
        XCTAssertEqual(frames[2], big, "a 3 MiB frame arrives whole through zmq_msg_t")
    }

    func testFramesCanBeReadInPlace() throws {
        let context = try Context()
        let a = try Socket(context, .pair), b = try Socket(context, .pair)
        try a.bind("inproc://in-place")
        try b.connect("inproc://in-place")
        let big = [UInt8]((0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 13) })
        try b.send([[1, 2, 3], [], big])  // a small frame is kept inside zmq_msg_t itself
        let seen = try a.receive { frames in frames.map { Array($0) } }
        XCTAssertEqual(seen, [[1, 2, 3], [], big])
        try b.send((0..<5).map { [UInt8($0)] })
        try b.send([[9]])
        XCTAssertThrowsError(try a.receive(maxFrames: 2) { $0.count }) { XCTAssertTrue($0 is FrameLimitExceeded, "\($0)") }
        XCTAssertEqual(try a.receive { $0.map { Array($0) } }, [[9]])
    }

    func testRouterDealerOverTCPWithAResolvedPort() throws {
        let context = try Context()
        let router = try Socket(context, .router)
        try router.bind("tcp://127.0.0.1:*")
        let endpoint = try XCTUnwrap(router.lastEndpoint)
        XCTAssertTrue(endpoint.hasPrefix("tcp://127.0.0.1:") && !endpoint.hasSuffix(":*"), endpoint)
        let dealer = try Socket(context, .dealer)
        try dealer.setRoutingID(Array("worker-1".utf8))
        try dealer.connect(endpoint)
        try dealer.send([Array("ping".utf8)])
        try router.setReceiveTimeout(.seconds(5))
        let request = try router.receive()
        XCTAssertEqual(request, [Array("worker-1".utf8), Array("ping".utf8)])
        try router.send([request[0], Array("pong".utf8)])
        try dealer.setReceiveTimeout(.seconds(5))
        XCTAssertEqual(try dealer.receive(), [Array("pong".utf8)])
    }

    func testTimeoutIsWouldBlockNotAFailure() throws {
        let context = try Context()
        let socket = try Socket(context, .pull)
        try socket.bind("inproc://quiet")
        try socket.setReceiveTimeout(.milliseconds(20))
        XCTAssertThrowsError(try socket.receive()) { error in
            XCTAssertEqual((error as? ZMQError)?.kind, .wouldBlock)
        }
        XCTAssertThrowsError(try socket.receive(dontWait: true)) { error in
            XCTAssertEqual((error as? ZMQError)?.kind, .wouldBlock)
        }
        XCTAssertFalse(try socket.waitForMessage(timeout: .milliseconds(10)))
    }

    func testShutdownWakesABlockedReceiverWithTerminated() throws {
        let context = try Context()
        let outcome = DispatchSemaphore(value: 0)
        final class Box: @unchecked Sendable { var kind: ZMQError.Kind? }  // written before `outcome` is signalled
        let box = Box()
        Thread.detachNewThread {
            do {
                let socket = try Socket(context, .pull)
                try socket.bind("inproc://blocked")
                _ = try socket.receive()
            } catch let error as ZMQError {
                box.kind = error.kind
            } catch {}
            outcome.signal()
        }
        usleep(50_000)
        context.shutdown()
        XCTAssertEqual(outcome.wait(timeout: .now() + 5), .success, "the blocked receive must return")
        XCTAssertEqual(box.kind, .terminated)
    }

    func testClosingWithUnsentMessagesDoesNotHang() throws {
        // A PUSH socket connected to nobody queues messages; with linger 0 the context still
        // terminates at once when everything is released.
        let start = ContinuousClock.now
        do {
            let context = try Context()
            let push = try Socket(context, .push)
            try push.connect("tcp://127.0.0.1:1")
            for _ in 0..<10 { try push.send([[1, 2, 3]], dontWait: true) }
        }
        XCTAssertLessThan(ContinuousClock.now - start, .seconds(5))
    }

    func testOversizedFramesAndTooManyFramesAreRefused() throws {
        let context = try Context()
        let server = try Socket(context, .pull)
        try server.setMaxMessageSize(1024)
        try server.bind("tcp://127.0.0.1:*")
        let endpoint = try XCTUnwrap(server.lastEndpoint)
        let client = try Socket(context, .push)
        try client.connect(endpoint)
        try client.send([[UInt8](repeating: 7, count: 4096)])  // libzmq drops this peer
        try server.setReceiveTimeout(.milliseconds(300))
        XCTAssertThrowsError(try server.receive()) { XCTAssertEqual(($0 as? ZMQError)?.kind, .wouldBlock) }

        let pairA = try Socket(context, .pair), pairB = try Socket(context, .pair)
        try pairA.bind("inproc://frames")
        try pairB.connect("inproc://frames")
        try pairB.send((0..<10).map { [UInt8($0)] })
        try pairB.send([[42]])
        XCTAssertThrowsError(try pairA.receive(maxFrames: 4)) { error in
            XCTAssertTrue(error is FrameLimitExceeded, "\(error)")
        }
        XCTAssertEqual(try pairA.receive(), [[42]], "the refused message was drained, the next one is intact")
    }

    func testBadEndpointNamesTheEndpoint() throws {
        let context = try Context()
        let socket = try Socket(context, .pull)
        XCTAssertThrowsError(try socket.bind("carrier-pigeon://nowhere")) { error in
            XCTAssertTrue("\(error)".contains("carrier-pigeon://nowhere"), "\(error)")
        }
    }
}
