import Foundation
import Ledger
import Schema
import Wire
import TestSupport
import XCTest
import ZeroMQ

/// The hostile-program catalogue run the three ways programs run: `coderl eval` (local
/// executor, holding a ledger), `coderl exec`, and the `coderl-executor` binary over the wire. Each
/// entry is a probe that passes only when the sandbox held (it prints "safe", or what an
/// honest program prints), or a cheat or hog that must not pass.
final class HostileCatalogueTests: XCTestCase {
    struct Entry {
        let id: String
        let suite: TestSuite
        let program: String
        /// Whether a correct sandbox lets it pass.
        let passes: Bool
        /// For entries that fail: the outcome they must get (nil: any but passed).
        var outcome: Outcome? = nil
    }

    static func stdio(_ expected: String, input: String = "") -> TestSuite {
        TestSuite.with { $0.format = .stdio; $0.cases = [TestCase.with { $0.input = input; $0.expected = expected }] }
    }

    static func asserts(_ entry: String, _ lines: [String], setup: String = "") -> TestSuite {
        TestSuite.with { $0.format = .assert; $0.entryPoint = entry; $0.setupCode = setup; $0.cases = lines.map { l in TestCase.with { $0.code = l } } }
    }

    static let catalogue: [Entry] = {
        let safe = stdio("safe")
        let addSuite = asserts("add", ["assert add(1, 2) == 3", "assert add(2, 2) == 4"])
        return [
            Entry(id: "probe/descriptors", suite: stdio("0 1 2 3"), program: "import os\nfound = []\nfor fd in range(1024):\n    try:\n        os.fstat(fd)\n        found.append(fd)\n    except OSError:\n        pass\nprint(*found)\n", passes: true),
            Entry(id: "probe/network", suite: safe, program: "import socket\nbad = []\nfor family, address in [(socket.AF_INET, ('127.0.0.1', 22)), (socket.AF_INET, ('8.8.8.8', 53))]:\n    s = socket.socket(family, socket.SOCK_STREAM)\n    s.settimeout(0.5)\n    try:\n        s.connect(address)\n        bad.append(str(address))\n    except OSError:\n        pass\ntry:\n    socket.socket(16, socket.SOCK_RAW, 0)\n    bad.append('netlink')\nexcept OSError:\n    pass\nprint('safe' if not bad else 'UNSAFE ' + ' '.join(bad))\n", passes: true),
            Entry(id: "probe/filesystem", suite: safe, program: "import os\nbad = []\nfor path in ['/etc/coderl-x', '/coderl-x', '/usr/coderl-x', '/dev/coderl-x']:\n    try:\n        open(path, 'w').write('x')\n        bad.append(path)\n    except OSError:\n        pass\nfor path in ['/etc/shadow', '/root', '/home']:\n    try:\n        os.listdir(path) if os.path.isdir(path) and os.listdir(path) else open(path).read()\n        if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):\n            bad.append(path)\n    except OSError:\n        pass\nprint('safe' if not bad else 'UNSAFE ' + ' '.join(bad))\n", passes: true),
            Entry(id: "probe/environment", suite: safe, program: "import os\nleft = sorted(k for k in os.environ if k not in ('PATH', 'HOME', 'LANG', 'PYTHONIOENCODING', 'PWD'))\nprint('safe' if not left else 'UNSAFE ' + ' '.join(left))\n", passes: true),
            Entry(id: "probe/kernel", suite: safe, program: "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nbad = [n for n, r in [('ptrace', libc.ptrace(0, 0, None, None)), ('unshare', libc.unshare(0x10000000)), ('bpf', libc.syscall(321, 0, 0, 0)), ('open_tree', libc.syscall(428, -100, b'/', 1))] if r != -1]\nprint('safe' if not bad else 'UNSAFE ' + ' '.join(bad))\n", passes: true),
            Entry(id: "hog/daemon", suite: stdio("ok"), program: "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        while True:\n            open('/tmp/daemon-was-here', 'w').write('x')\n            time.sleep(0.01)\n    os._exit(0)\ntime.sleep(0.1)\nprint('ok')\n", passes: true),
            Entry(id: "probe/signal-everything", suite: safe, program: "import os, signal\nfor target in (-1, 1, os.getppid()):\n    try:\n        os.kill(target, signal.SIGKILL) if target != -1 else None\n    except OSError:\n        pass\nprint('safe')\n", passes: true),
            Entry(id: "probe/init-memory", suite: safe, program: "bad = []\nfor path in ['/proc/1/mem', '/proc/1/environ', '/proc/1/maps']:\n    try:\n        with open(path, 'rb') as f:\n            if f.read(64):\n                bad.append(path)\n    except OSError:\n        pass\nprint('safe' if not bad else 'UNSAFE ' + ' '.join(bad))\n", passes: true),
            Entry(id: "probe/nothing-left-over", suite: safe, program: "import os\npids = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())\nothers = [p for p in pids if p not in (1, os.getpid())]\nfiles = os.listdir('/tmp') + os.listdir('/dev/shm')\nipc = [l for k in ('shm', 'sem', 'msg') for l in open('/proc/sysvipc/' + k).read().splitlines()[1:]]\nprint('safe' if not others and not files and not ipc else 'UNSAFE %r %r %r' % (others, files, ipc))\n", passes: true),
            Entry(id: "fidelity/exit", suite: stdio("42"), program: "print(42)\nexit()\n", passes: true),
            Entry(id: "fidelity/thread", suite: stdio("42", input: "20 22"), program: "import threading, sys, time\ndef main():\n    time.sleep(0.05)\n    print(sum(map(int, sys.stdin.read().split())))\nthreading.Thread(target=main).start()\n", passes: true),
            Entry(id: "fidelity/top-level-return", suite: stdio("zero", input: "0"), program: "n = int(input())\nif n == 0:\n    print('zero')\n    return\nprint(n)\n", passes: true),
            Entry(id: "cheat/isclose", suite: asserts("area", ["assert math.isclose(area(1), 3.14159, rel_tol=1e-3)"], setup: "import math"), program: "import math\nmath.isclose = lambda *a, **k: True\ndef area(r):\n    return 0\n", passes: false),
            Entry(id: "cheat/exit-zero", suite: addSuite, program: "import sys\nsys.exit(0)\ndef add(a, b):\n    return 0\n", passes: false),
            Entry(id: "cheat/always-equal", suite: addSuite, program: "class Yes:\n    def __eq__(self, other):\n        return True\ndef add(a, b):\n    return Yes()\n", passes: false),
            Entry(id: "cheat/patched-builtins", suite: addSuite, program: "import builtins\nbuiltins.AssertionError = type('Nope', (Exception,), {})\ndef add(a, b):\n    return 0\n", passes: false),
            Entry(id: "cheat/exit-in-call", suite: addSuite, program: "import os\ndef add(a, b):\n    os._exit(0)\n", passes: false),
            Entry(id: "cheat/crash-after-answer", suite: stdio("42"), program: "print(42, flush=True)\nraise ValueError('after the answer')\n", passes: false, outcome: .runtimeError),
            Entry(id: "hog/loop", suite: stdio("ok"), program: "while True:\n    pass\n", passes: false, outcome: .runtimeError),
            Entry(id: "hog/memory", suite: stdio("ok"), program: "x = bytearray(8 << 30)\nprint('ok')\n", passes: false, outcome: .runtimeError),
            Entry(id: "hog/memfds", suite: stdio("ok"), program: "import os\nchunk = b'x' * (16 << 20)\nfiles = []\nfor i in range(16):\n    fd = os.memfd_create('m%d' % i)\n    for _ in range(3):\n        os.write(fd, chunk)\n    files.append(fd)\nprint('ok')\n", passes: false, outcome: .runtimeError),
            Entry(id: "hog/fork-bomb", suite: stdio("ok"), program: "import os\nwhile True:\n    os.fork()\n", passes: false, outcome: .runtimeError),
            Entry(id: "hog/output", suite: stdio("ok"), program: "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n", passes: false, outcome: .runtimeError),
            Entry(id: "hog/long-exception", suite: stdio("ok"), program: "raise type('X' * 5_000_000, (Exception,), {})('y' * 5_000_000)\n", passes: false, outcome: .runtimeError),
        ]
    }()

    /// What each way of running gave an entry, checked against the catalogue.
    func check(_ entry: Entry, _ verdict: Verdict?, way: String, file: StaticString = #filePath, line: UInt = #line) {
        guard let verdict else { return XCTFail("\(way) \(entry.id): no verdict", file: file, line: line) }
        if entry.passes {
            XCTAssertEqual(verdict.outcome, .passed, "\(way) \(entry.id): \(verdict.errorType) \(verdict.errorMessage)", file: file, line: line)
        } else {
            XCTAssertNotEqual(verdict.outcome, .passed, "\(way) \(entry.id) passed", file: file, line: line)
            if let outcome = entry.outcome { XCTAssertEqual(verdict.outcome, outcome, "\(way) \(entry.id)", file: file, line: line) }
        }
        XCTAssertLessThanOrEqual(verdict.errorType.utf8.count, 120, "\(way) \(entry.id)", file: file, line: line)
        XCTAssertLessThanOrEqual(verdict.errorMessage.utf8.count, 1000, "\(way) \(entry.id)", file: file, line: line)
    }

    let limitFlags = ["--seconds", "2", "--memory-mb", "256"]

    func testTheCatalogueUnderCoderlEval() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var lines: [String] = []
        for entry in Self.catalogue {
            var tests: [String: Any] = ["format": entry.suite.format == .stdio ? "stdio" : "assert", "setup_code": entry.suite.setupCode]
            tests["cases"] = entry.suite.format == .stdio
                ? entry.suite.cases.map { ["input": $0.input, "output": $0.expected] }
                : entry.suite.cases.map { ["code": $0.code] }
            var row: [String: Any] = ["id": entry.id, "prompt": "p", "solutions": [entry.program], "tests": tests]
            if !entry.suite.entryPoint.isEmpty { row["entry_point"] = entry.suite.entryPoint }
            lines.append(String(decoding: try JSONSerialization.data(withJSONObject: row, options: [.sortedKeys]), as: UTF8.self))
        }
        try lines.joined(separator: "\n").write(toFile: dir + "/catalogue.jsonl", atomically: true, encoding: .utf8)
        let result = try runCLI("coderl", ["eval", "--dataset", dir + "/catalogue.jsonl", "--references", "--samples", "1",
                                           "--ledger", dir + "/ledger", "--id", "catalogue"] + limitFlags)
        XCTAssertEqual(result.status, 0, result.output)
        let ledger = try Ledger.openForReading(path: dir + "/ledger")
        let results = Dictionary(uniqueKeysWithValues: try ledger.evalResults(eval: "catalogue").map { ($0.problemID, $0) })
        for entry in Self.catalogue {
            check(entry, results[entry.id]?.samples.first?.verdict, way: "coderl eval")
        }
    }

    func testTheCatalogueUnderCoderlExec() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (index, entry) in Self.catalogue.enumerated() {
            let program = dir + "/p\(index).py"
            try entry.program.write(toFile: program, atomically: true, encoding: .utf8)
            var arguments = ["exec", "--program", program, "--json"] + limitFlags
            if entry.suite.format == .stdio {
                let problem = dir + "/apps-\(index)"
                try FileManager.default.createDirectory(atPath: problem, withIntermediateDirectories: true)
                let io: [String: Any] = ["inputs": entry.suite.cases.map(\.input), "outputs": entry.suite.cases.map(\.expected)]
                try JSONSerialization.data(withJSONObject: io).write(to: URL(fileURLWithPath: problem + "/input_output.json"))
                arguments += ["--problem", problem]
            } else {
                let mbpp = dir + "/mbpp-\(index).jsonl"
                let row: [String: Any] = ["task_id": 1, "text": "t", "code": "def \(entry.suite.entryPoint)(*a):\n    pass\n",
                                          "test_setup_code": entry.suite.setupCode, "test_list": entry.suite.cases.map(\.code)]
                try JSONSerialization.data(withJSONObject: row).write(to: URL(fileURLWithPath: mbpp))
                arguments += ["--tests", mbpp, "--task", "1"]
            }
            let result = try runCLI("coderl", arguments)
            let json = result.output.split(separator: "\n").last { $0.hasPrefix("{") }.map(String.init) ?? ""
            check(entry, try? Verdict(jsonString: json), way: "coderl exec")
        }
    }

    func testTheCatalogueUnderThePipelinesExecutor() throws {
        let context = try Context()
        defer { context.shutdown() }
        let router = try Socket(context, .router)
        try router.bind("tcp://127.0.0.1:*")
        let executor = try startCLI("coderl-executor", ["--connect", router.lastEndpoint!, "--slots", "2", "--name", "catalogue"] + limitFlags)
        defer { executor.terminate(); executor.waitUntilExit() }
        var identity: [UInt8] = []
        var results: [String: ExecutionResult] = [:]
        func pump(until done: () -> Bool) throws {
            let deadline = Date().addingTimeInterval(120)
            while !done() && Date() < deadline {
                guard try router.waitForMessage(timeout: .milliseconds(200)) else { continue }
                let frames = try router.receive()
                identity = frames[0]
                let message = try WireCodec.decode(Array(frames.dropFirst()))
                if case .result(let r) = message.body { results[r.jobID] = r }
            }
        }
        try pump { !identity.isEmpty }
        for entry in Self.catalogue {
            let job = ExecutionJob.with {
                $0.jobID = entry.id
                $0.problemID = entry.id
                $0.program = entry.program
                $0.suite = entry.suite
                $0.suiteHash = Data(try! Ledger.hash(of: entry.suite))
                $0.leaseMs = 120_000
            }
            try router.send([identity] + WireCodec.encode(.job(job), id: entry.id, sender: "test-dispatcher"))
            try pump { results[entry.id] != nil }   // one at a time: the executor's credits
        }
        for entry in Self.catalogue {
            XCTAssertEqual(results[entry.id]?.infrastructureError ?? "", "", entry.id)
            check(entry, results[entry.id]?.verdict, way: "executor")
        }
    }

    func temporaryFolder() throws -> String {
        let dir = NSTemporaryDirectory() + "coderl-catalogue-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }
}
