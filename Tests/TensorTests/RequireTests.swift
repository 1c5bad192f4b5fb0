import Foundation
import Tensor
import XCTest

/// The numerics targets are built with -Ounchecked, which removes `precondition`; their
/// API-boundary checks use `require`, which must still stop the process with its message.
final class RequireTests: XCTestCase {
    /// Runs `body` in a forked child with its stderr captured; the child's end and what it wrote.
    private func inChild(_ body: () -> Void) throws -> (signaled: Bool, exitCode: Int32, stderr: String) {
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&fds), 0)
        let pid = fork()
        if pid == 0 {
            dup2(fds[1], 2)
            close(fds[0])
            body()
            _exit(0)
        }
        close(fds[1])
        var output = Data()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(fds[0], &buffer, buffer.count)
            if n <= 0 { break }
            output.append(contentsOf: buffer[0..<n])
        }
        close(fds[0])
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        let signaled = (status & 0x7f) != 0 && (status & 0x7f) != 0x7f
        return (signaled, (status >> 8) & 0xff, String(decoding: output, as: UTF8.self))
    }

    func testAFailedRequirementStopsTheProcessWithItsMessageInAnUncheckedBuild() throws {
        let result = try inChild { _ = FloatBuffer(count: -3) }
        XCTAssertTrue(result.signaled, "the child should have trapped; exit \(result.exitCode), stderr: \(result.stderr)")
        XCTAssertTrue(result.stderr.contains("FloatBuffer count must be non-negative, got -3"), result.stderr)
    }

    func testAHeldRequirementLetsTheCallThrough() throws {
        let result = try inChild { _ = FloatBuffer(count: 3) }
        XCTAssertFalse(result.signaled, result.stderr)
        XCTAssertEqual(result.exitCode, 0)
    }
}
