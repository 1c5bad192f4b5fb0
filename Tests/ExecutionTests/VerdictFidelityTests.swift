import Execution
import Foundation
import Schema
import XCTest

/// Verdicts agree with what `python3 prog.py < input` does outside any sandbox (and, for
/// APPS, with APPS's own harness), and test code cannot be fooled by what a program changes in
/// its own process.
final class VerdictFidelityTests: XCTestCase {
    /// The modules test code names are the evaluator's own: a program that replaces
    /// math.isclose (or any function of a module it imported) changes its copy only.
    func testTestCodeSeesUnchangedModules() throws {
        let suite = assertSuite("area", ["assert math.isclose(area(2), 12.566, rel_tol=0.001)",
                                         "assert math.isclose(area(1), 3.1415, rel_tol=0.001)"], setup: "import math")
        let cheats = [
            "import math\nmath.isclose = lambda *a, **k: True\ndef area(r):\n    return 0\n",
            "import math as m\nm.isclose = lambda *a, **k: True\nmath = m\ndef area(r):\n    return 0\n",
            "import types\nmath = types.ModuleType('fake')\nmath.isclose = lambda *a, **k: True\ndef area(r):\n    return 0\n",
            "import sys, math\nsys.modules['math'].isclose = lambda *a, **k: True\ndef area(r):\n    return 0\n",
        ]
        for program in cheats {
            let v = try verdict(program, suite)
            XCTAssertEqual(v.passedTests, 0, program)
        }
        // An honest program that imports math itself still passes.
        let honest = try verdict("import math\ndef area(r):\n    return math.pi * r * r\n", suite)
        XCTAssertEqual(honest.outcome, .passed, "\(honest.tests)")
        // numpy imported under another name: the test's np is the evaluator's numpy.
        let npSuite = assertSuite("f", ["assert np.allclose(f(), [1.0, 2.0])"], setup: "import numpy as np")
        let npCheat = try verdict("import numpy as np\nnp.allclose = lambda *a, **k: True\ndef f():\n    return [0.0]\n", npSuite)
        XCTAssertEqual(npCheat.passedTests, 0, "\(npCheat.tests)")
    }

    /// exit() and quit() exist (Python's site module adds them; the harness runs without it).
    func testExitAndQuitWork() throws {
        for program in ["print(42)\nexit()", "print(42)\nquit()", "print(42)\nexit(0)\nprint('not reached')"] {
            let v = try verdict(program, stdioSuite([("", "42")]))
            XCTAssertEqual(v.outcome, .passed, "\(program): \(v.errorType) \(v.errorMessage)")
        }
        let failing = try verdict("print(42)\nexit(3)", stdioSuite([("", "42")]))
        XCTAssertEqual(failing.outcome, .runtimeError)
        let message = try verdict("print(42)\nexit('bad input')", stdioSuite([("", "42")]))
        XCTAssertEqual(message.outcome, .runtimeError, "a string status exits with 1, as Python does")
    }

    /// Python waits for threads that are not daemons, then runs atexit handlers, then
    /// flushes: output written by either counts.
    func testThreadsAndAtexitHandlersFinishBeforeTheVerdict() throws {
        let threaded = """
            import threading, time, sys
            def main():
                time.sleep(0.05)
                print(sum(map(int, sys.stdin.read().split())))
            threading.Thread(target=main).start()
            """
        for _ in 0..<5 {
            let v = try verdict(threaded, stdioSuite([("20 22", "42")]))
            XCTAssertEqual(v.outcome, .passed, "\(v.tests)")
        }
        let atexit = "import atexit\natexit.register(lambda: print(42))\n"
        XCTAssertEqual(try verdict(atexit, stdioSuite([("", "42")])).outcome, .passed)
        // As in Python, an atexit handler's SystemExit is printed and ignored (status 0), and
        // a handler's os._exit sets the status.
        let exitInHandler = "import atexit, sys\nprint(42)\natexit.register(lambda: sys.exit(4))\n"
        XCTAssertEqual(try verdict(exitInHandler, stdioSuite([("", "42")])).outcome, .passed)
        let hardExit = "import atexit, os\nprint(42, flush=True)\natexit.register(lambda: os._exit(4))\n"
        XCTAssertEqual(try verdict(hardExit, stdioSuite([("", "42")])).outcome, .runtimeError)
    }

    /// APPS's harness runs stdin programs inside a function, so a top-level return (or a
    /// nonlocal naming a top-level variable) is accepted there; here such programs are run
    /// the same way, and every other program runs as a module.
    func testTopLevelReturnAndNonlocalRunAsInAPPS() throws {
        let early = "import sys\nn = int(input())\nif n == 0:\n    print('zero')\n    return\nprint(n * 2)\n"
        let v = try verdict(early, stdioSuite([("0", "zero"), ("21", "42")]))
        XCTAssertEqual(v.outcome, .passed, "\(v.tests)")
        let nonlocalProgram = "total = 0\ndef add(x):\n    nonlocal total\n    total += x\nfor x in map(int, input().split()):\n    add(x)\nprint(total)\n"
        let n = try verdict(nonlocalProgram, stdioSuite([("20 22", "42")]))
        XCTAssertEqual(n.outcome, .passed, "\(n.tests)")
        // Other syntax errors stay compile errors, with Python's own message.
        let broken = try verdict("print(1\n", stdioSuite([("", "1")]))
        XCTAssertEqual(broken.outcome, .compileError)
        // A call-style program is a module: a top-level return there is a compile error.
        let inCall = try verdict("return 1\ndef f():\n    return 1\n", assertSuite("f", ["assert f() == 1"]))
        XCTAssertEqual(inCall.outcome, .compileError)
    }
}
