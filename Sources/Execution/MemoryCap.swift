import Foundation

/// A memory cgroup around one slot: everything a job's processes hold counts against one cap,
/// whatever they do (fork children, fill memfds, write /tmp and /dev/shm, whose tmpfs pages are
/// charged to the cgroup of the process that wrote them). `RLIMIT_AS` alone is per process.
/// The slot's harness joins the cgroup before it starts anything, so the evaluator and the
/// sandbox init are inside too; the program process makes itself the kernel's first choice
/// when the cap is hit (oom_score_adj 1000).
///
/// cgroup v1 (`memory` hierarchy) and v2 (the unified hierarchy with the memory controller
/// delegated to our cgroup) are both used; creating cgroups needs root (or a delegated
/// subtree). Where neither works, `MemoryCap.make` says why and jobs run with the
/// per-process limits only.
///
/// Where the `pids` controller is there too (v1 `pids` hierarchy, or delegated on v2), the
/// slot also gets a process cap: a job may start `Limits.processes` tasks (processes and
/// threads) of its own, whatever else runs on the machine. `RLIMIT_NPROC`, the fallback,
/// counts every process of the job's user machine-wide, so in relaxed mode (jobs run as
/// `nobody`) one slot's children, or anything else running as `nobody`, starve another's forks.
final class MemoryCap: @unchecked Sendable {   // the files are written by the one thread that owns the slot
    let directory: String
    let version: Int
    /// The slot's pids cgroup (the memory cgroup's own directory on v2), nil when there is none.
    let pidsDirectory: String?
    private var limit: UInt64 = 0

    /// The memory a slot needs besides its program: the evaluator and the sandbox init
    /// (Python interpreters) and bubblewrap.
    static let harnessBytes: UInt64 = 192 << 20

    private init(directory: String, version: Int, pidsDirectory: String?) {
        self.directory = directory
        self.version = version
        self.pidsDirectory = pidsDirectory
    }

    deinit { remove() }

    /// A new cgroup for one slot, or the reason there is none.
    static func make(label: String) -> Result<MemoryCap, Unavailable> {
        guard let own = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8) else {
            return .failure(Unavailable("/proc/self/cgroup cannot be read"))
        }
        let name = "coderl-\(getpid())-\(label)-\(UInt32.random(in: 0...UInt32.max))"
        var reasons: [String] = []
        // v1: a line "N:memory:/path" (or with other controllers joined to memory).
        for line in own.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3, fields[1].split(separator: ",").contains("memory") else { continue }
            let base = "/sys/fs/cgroup/memory" + (fields[2] == "/" ? "" : String(fields[2]))
            guard FileManager.default.fileExists(atPath: base + "/memory.limit_in_bytes") else {
                reasons.append("cgroup v1: \(base) has no memory.limit_in_bytes")
                continue
            }
            removeStale(in: base)
            let directory = base + "/" + name
            if mkdir(directory, 0o755) == 0 {
                return .success(MemoryCap(directory: directory, version: 1, pidsDirectory: v1Pids(own: own, name: name)))
            }
            reasons.append("cgroup v1: cannot make \(directory): \(String(cString: strerror(errno)))")
        }
        // v2: "0::/path" on a unified hierarchy whose controllers include memory.
        if let line = own.split(separator: "\n").first(where: { $0.hasPrefix("0::") }) {
            let root = FileManager.default.fileExists(atPath: "/sys/fs/cgroup/cgroup.controllers") ? "/sys/fs/cgroup" : "/sys/fs/cgroup/unified"
            let base = root + (line.dropFirst(3) == "/" ? "" : String(line.dropFirst(3)))
            let controllers = (try? String(contentsOfFile: base + "/cgroup.controllers", encoding: .utf8)) ?? ""
            if controllers.split(separator: " ").contains(where: { $0.trimmingCharacters(in: .whitespacesAndNewlines) == "memory" }) {
                let subtree = (try? String(contentsOfFile: base + "/cgroup.subtree_control", encoding: .utf8)) ?? ""
                if !subtree.contains("memory") && !write("+memory", to: base + "/cgroup.subtree_control") {
                    reasons.append("cgroup v2: cannot delegate the memory controller below \(base) (\(String(cString: strerror(errno))))")
                } else {
                    removeStale(in: base)
                    let directory = base + "/" + name
                    if controllers.contains("pids") && !subtree.contains("pids") { _ = write("+pids", to: base + "/cgroup.subtree_control") }
                    if mkdir(directory, 0o755) == 0 {
                        let pids = FileManager.default.fileExists(atPath: directory + "/pids.max") ? directory : nil
                        return .success(MemoryCap(directory: directory, version: 2, pidsDirectory: pids))
                    }
                    reasons.append("cgroup v2: cannot make \(directory): \(String(cString: strerror(errno)))")
                }
            } else {
                reasons.append("cgroup v2: no memory controller at \(base)")
            }
        }
        return .failure(Unavailable(reasons.isEmpty ? "no memory cgroup hierarchy is mounted" : reasons.joined(separator: "; ")))
    }

    /// A pids cgroup named `name` in the v1 `pids` hierarchy, or nil where there is none.
    private static func v1Pids(own: String, name: String) -> String? {
        for line in own.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3, fields[1].split(separator: ",").contains("pids") else { continue }
            let base = "/sys/fs/cgroup/pids" + (fields[2] == "/" ? "" : String(fields[2]))
            removeStale(in: base)
            let directory = base + "/" + name
            guard mkdir(directory, 0o755) == 0 else { return nil }
            guard FileManager.default.fileExists(atPath: directory + "/pids.max") else { rmdir(directory); return nil }
            return directory
        }
        return nil
    }

    /// Removes the empty cgroups of executors that are gone (a process killed with SIGKILL
    /// leaves its cgroups behind).
    static func removeStale(in base: String) {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: base) else { return }
        for entry in entries where entry.hasPrefix("coderl-") {
            guard let pid = Int32(entry.dropFirst(7).prefix { $0.isNumber }), pid != getpid(),
                  kill(pid, 0) != 0 && errno == ESRCH else { continue }
            rmdir(base + "/" + entry)
        }
    }

    struct Unavailable: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    /// The files a process writes its pid to, to join (the memory cgroup, then the pids one).
    var processesFiles: [String] {
        [directory + "/cgroup.procs"] + (pidsDirectory.map { $0 == directory ? [] : [$0 + "/cgroup.procs"] } ?? [])
    }

    /// Lets the job about to start make `processes` tasks of its own: the cap is what the
    /// slot holds now (the idle harness) plus `processes`. Returns false when there is no
    /// pids cgroup or the kernel refused.
    func setProcessLimit(_ processes: UInt32) -> Bool {
        guard let pids = pidsDirectory,
              let text = try? String(contentsOfFile: pids + "/pids.current", encoding: .utf8),
              let current = UInt64(text.trimmingCharacters(in: .whitespacesAndNewlines)) else { return false }
        return Self.write("\(current + UInt64(processes))", to: pids + "/pids.max")
    }

    /// Caps the slot at `bytes` (memory and, where the kernel counts it, swap). Returns false
    /// when the kernel refused (usage above the new cap that could not be reclaimed).
    @discardableResult
    func setLimit(_ bytes: UInt64) -> Bool {
        guard bytes != limit else { return true }
        let ok: Bool
        if version == 1 {
            // memsw (memory + swap) must stay >= the memory limit: when growing, memsw first;
            // when shrinking, the memory limit first.
            let memsw = directory + "/memory.memsw.limit_in_bytes"
            let hasSwap = FileManager.default.fileExists(atPath: memsw)
            let memory = directory + "/memory.limit_in_bytes"
            let current = (try? String(contentsOfFile: memory, encoding: .utf8)).flatMap { UInt64($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? .max
            if bytes > current {
                ok = (!hasSwap || Self.write("\(bytes)", to: memsw)) && Self.write("\(bytes)", to: memory)
            } else {
                ok = Self.write("\(bytes)", to: memory) && (!hasSwap || Self.write("\(bytes)", to: memsw))
            }
        } else {
            ok = Self.write("\(bytes)", to: directory + "/memory.max")
            _ = Self.write("0", to: directory + "/memory.swap.max")
        }
        if ok { limit = bytes }
        return ok
    }

    /// How many times the kernel has killed a process of the slot for its cap.
    func oomKills() -> Int {
        let file = directory + (version == 1 ? "/memory.oom_control" : "/memory.events")
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix("oom_kill ") {
            return Int(line.dropFirst(9).trimmingCharacters(in: .whitespaces)) ?? 0
        }
        return 0
    }

    /// Removes the cgroup once its processes are gone (waits up to a second for them).
    func remove() {
        for path in [directory] + (pidsDirectory.map { $0 == directory ? [] : [$0] } ?? []) {
            for _ in 0..<100 {
                if rmdir(path) == 0 || errno == ENOENT { break }
                usleep(10_000)
            }
        }
    }

    /// The cap for a job's limits: its program's memory, its two scratch mounts, the harness.
    static func bytes(for limits: Limits) -> UInt64 {
        limits.memoryBytes + 2 * limits.fileSizeBytes + harnessBytes
    }

    static func write(_ text: String, to path: String) -> Bool {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return text.withCString { Glibc.write(fd, $0, strlen($0)) } == text.utf8.count
    }
}
