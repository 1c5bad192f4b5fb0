import Foundation

/// How hard the executor insists on isolation.
public enum SandboxMode: String, Sendable, CaseIterable {
    /// Refuse to run programs unless bubblewrap and user namespaces work.
    case strict
    /// Run with what the machine offers; every verdict says what was missing.
    case relaxed
}

/// Where and how programs run. Defaults suit a Debian machine with `bubblewrap` installed.
public struct SandboxConfiguration: Sendable {
    public var mode: SandboxMode = .strict
    /// The interpreter, started with `-I -S` (isolated, no site initialisation: the site
    /// step alone costs ~25 ms on machines with many packages). Debian's, not a pyenv shim.
    public var python: String = "/usr/bin/python3"
    /// Extra directories made visible read-only inside the sandbox (for example a virtual
    /// environment's site-packages).
    public var readOnlyPaths: [String] = []
    /// Module directories put on the program's `sys.path` (Debian's dist-packages by default,
    /// so programs can import numpy when python3-numpy is installed).
    public var modulePaths: [String] = ["/usr/lib/python3/dist-packages"]
    /// Relaxed mode only: where per-job scratch directories are made.
    public var scratchDirectory: String = NSTemporaryDirectory()
    /// A seccomp filter denying system calls test programs have no use for (ptrace, mount,
    /// unshare and namespace-creating clone flags, bpf, keyctl, io_uring, ...). x86-64 only;
    /// elsewhere the verdicts' isolation says it is absent.
    public var seccomp = true
    /// bubblewrap's path; nil finds `bwrap` on PATH.
    public var bubblewrap: String? = nil
    /// One memory cap per job over all its processes and files (a cgroup per slot), where
    /// cgroups can be made; the executor's `memoryCap` says whether they could.
    public var memoryCap = true
    /// The unprivileged account the sandbox runs as when the executor runs as root.
    public var unprivilegedID: UInt32 = 65534

    public init() {}
}

/// The sandbox cannot give the isolation that was asked for.
public struct SandboxUnavailable: Error, CustomStringConvertible, Sendable {
    public let reason: String
    public var description: String { "sandbox unavailable: \(reason)" }
}

/// What the machine offers, found once at start-up.
struct SandboxPlan: Sendable {
    /// argv of the slot process (the harness source is appended by the caller).
    var command: [String]
    /// "namespaces" or "relaxed: ...", reported in every verdict.
    var isolation: String
    var harnessMode: String

    static func make(_ configuration: SandboxConfiguration) throws -> SandboxPlan {
        guard FileManager.default.isExecutableFile(atPath: configuration.python) else {
            throw SandboxUnavailable(reason: "no Python interpreter at \(configuration.python) (install python3, or set the executor's python path)")
        }
        if let bwrap = configuration.bubblewrap.map({ FileManager.default.isExecutableFile(atPath: $0) ? $0 : nil }) ?? findExecutable("bwrap") {
            return namespaces(configuration, bwrap: bwrap)
        }
        let missing = "bubblewrap (bwrap) is not installed; on Debian: apt-get install bubblewrap"
        guard configuration.mode == .relaxed else { throw SandboxUnavailable(reason: missing) }
        return relaxed(configuration, missing: "no bubblewrap")
    }

    static func relaxed(_ configuration: SandboxConfiguration, missing: String) -> SandboxPlan {
        SandboxPlan(
            command: [configuration.python, "-I", "-S", "-c"],
            isolation: "relaxed: \(missing); no namespaces, network and file system not isolated, resource limits and process-tree cleanup only",
            harnessMode: "relaxed")
    }

    static func namespaces(_ configuration: SandboxConfiguration, bwrap: String) -> SandboxPlan {
        var command: [String] = []
        if getuid() == 0, let setpriv = findExecutable("setpriv") {
            // As root, the sandbox's files would be checked against uid 0 (it could read
            // root's 0600 files). Drop to an unprivileged account first.
            let id = configuration.unprivilegedID
            command += [setpriv, "--reuid=\(id)", "--regid=\(id)", "--clear-groups", "--inh-caps=-all"]
        }
        command += [bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--clearenv"]
        command += ["--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin", "--setenv", "LANG", "C.UTF-8", "--setenv", "HOME", "/tmp"]
        // A read-only view of the system: /usr and what a merged-/usr Debian links from /,
        // a few harmless files of /etc, nothing of /home, /root, /var or /etc/shadow.
        command += ["--ro-bind", "/usr", "/usr"]
        for top in ["bin", "sbin", "lib", "lib32", "lib64", "libx32"] {
            let path = "/" + top
            if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: path) {
                command += ["--symlink", target, path]
            } else if FileManager.default.fileExists(atPath: path) {
                command += ["--ro-bind", path, path]
            }
        }
        for file in ["ld.so.cache", "localtime", "alternatives", "passwd", "group", "nsswitch.conf", "python3", "python3.11", "python3.12", "python3.13"] {
            command += ["--ro-bind-try", "/etc/" + file, "/etc/" + file]
        }
        var extra = configuration.readOnlyPaths
        let python = URL(fileURLWithPath: configuration.python).resolvingSymlinksInPath().path
        if !python.hasPrefix("/usr/") {
            extra.append(URL(fileURLWithPath: python).deletingLastPathComponent().deletingLastPathComponent().path)
        }
        for path in extra { command += ["--ro-bind", path, path] }
        command += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--dir", "/dev/shm", "--chdir", "/tmp"]
        // Everything but /tmp and /dev/shm (fresh, sized tmpfs mounts for every run) is
        // read-only: bubblewrap's root and /dev are tmpfs mounts of half the machine's memory
        // otherwise, and what a run left there the next would see.
        command += ["--remount-ro", "/", "--remount-ro", "/dev"]
        command += [configuration.python, "-I", "-S", "-c"]
        return SandboxPlan(command: command, isolation: "namespaces", harnessMode: "namespaces")
    }

    static func findExecutable(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":") + ["/usr/bin", "/usr/sbin", "/bin"] {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}
