# CodeRL executor harness. Embedded in the Swift executor and started once per slot inside
# bubblewrap as `python3 -I -S -c <this file> SETTINGS`. Three roles, by process:
#
#   evaluator (trusted, one per slot)  reads jobs (with their answers) from fd 0, runs
#                                      each test through the sandbox, compares results, writes
#                                      the job's answer to fd 1. For call and assert tests it
#                                      runs the dataset's test code; the program only ever
#                                      sees arguments. It never forks a program itself.
#   sandbox init (trusted, pid 1)      forked once per slot, before any job is read, into the
#                                      slot's own user, pid, mount and IPC namespaces. For each
#                                      run it forks the program process; after the run it kills
#                                      everything else in the namespaces and, before the next
#                                      run, mounts a fresh /tmp and /dev/shm and removes every
#                                      System V IPC object, so no run leaves anything for the
#                                      next (files, processes, shared memory, semaphores).
#   program process (untrusted)        no capabilities, no new privileges, resource limits, a
#                                      seccomp filter; runs the program (stdin tests) or serves
#                                      calls on two pipes.
#
# Nothing untrusted can reach a trusted process: it cannot see them (pid namespace, fresh
# /proc), signal them (init ignores signals from its own namespace), or read their memory
# (they are not dumpable and the program has no capabilities). Values coming back from the
# program are decoded as plain data (no pickle, no eval) and compared here, never there.
#
# Nor can a program find answers in its own memory, which it inherits from the processes it
# was forked from: programs are forked by the init, and the init was forked from the
# evaluator before the evaluator read any job, so no answer (expected output, assert or check
# code) of this job or an earlier one was ever in its memory.
#
# One set of namespaces serves the slot's runs one after another (creating user, pid, mount
# and IPC namespaces for every run cost about as much CPU as running a trivial program).
#
# Messages on every pipe: 4-byte little-endian length, then UTF-8 JSON.
import os, sys, json, struct, time, select, signal, resource, ctypes, fcntl, builtins, socket
from types import ModuleType

SETTINGS = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
MODE = SETTINGS.get("mode", "namespaces")          # namespaces | relaxed
SCRATCH = SETTINGS.get("scratch", "/tmp")          # relaxed mode: where job directories go
NS = MODE == "namespaces"
PROCESS_CAP = bool(SETTINGS.get("process_cap", False))  # the slot's pids cgroup caps a job's processes
SECCOMP = bool(SETTINGS.get("seccomp", True)) and os.uname().machine == "x86_64"
sys.path.extend(p for p in SETTINGS.get("paths", []) if os.path.isdir(p))
libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID = 0x20000, 0x8000000, 0x10000000, 0x20000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MNT_DETACH = 2, 4, 8, 2
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 1, 4, 36, 38
MAX_REPLY = 64 << 20          # jobs, run reports
MAX_PROGRAM_REPLY = 8 << 20   # one reply of a program serving calls
MAX_VALUE_NODES = 1 << 20     # values in one such reply
if hasattr(sys, "set_int_max_str_digits"):
    sys.set_int_max_str_digits(0)


class InfrastructureError(Exception):
    """The sandbox itself failed: never the program's fault."""


def write_all(fd, data):
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def send(fd, obj, errors="surrogatepass"):
    data = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8", errors)
    write_all(fd, struct.pack("<I", len(data)) + data)


def read_exact(fd, n, deadline=None):
    chunks, got = [], 0
    while got < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def receive(fd, deadline=None, limit=MAX_REPLY):
    (n,) = struct.unpack("<I", read_exact(fd, 4, deadline))
    if n > limit:
        raise ValueError("message of %d bytes exceeds the limit of %d" % (n, limit))
    return json.loads(read_exact(fd, n, deadline).decode("utf-8", "surrogatepass"))


# ---------------------------------------------------------------- plain data across the boundary
# Tagged JSON: null, true/false, strings and lists are themselves; other values are objects
# with one key: i (int, hex), f (float repr), t (tuple), s (set), z (frozenset), d (dict as
# pairs), b (bytes, hex), c (complex), h (handle to an object that stays in the program).
def encode_value(x, handles, depth=0):
    if depth > 100:
        raise ValueError("value nested more than 100 levels")
    t = type(x)
    if x is None or x is True or x is False or t is str:
        return x
    if t is int:
        return {"i": int.__format__(x, "x")}
    if t is float:
        return {"f": float.__repr__(x)}
    if t is list:
        return [encode_value(v, handles, depth + 1) for v in x]
    if t is tuple:
        return {"t": [encode_value(v, handles, depth + 1) for v in x]}
    if t is dict:
        return {"d": [[encode_value(k, handles, depth + 1), encode_value(v, handles, depth + 1)] for k, v in x.items()]}
    if t is set:
        return {"s": [encode_value(v, handles, depth + 1) for v in x]}
    if t is frozenset:
        return {"z": [encode_value(v, handles, depth + 1) for v in x]}
    if t is bytes or t is bytearray:
        return {"b": bytes(x).hex()}
    if t is complex:
        return {"c": [float.__repr__(x.real), float.__repr__(x.imag)]}
    module = getattr(t, "__module__", "")
    if module == "numpy" and hasattr(x, "tolist"):      # numpy scalars and arrays
        return encode_value(x.tolist(), handles, depth + 1)
    # Subclasses of plain types become the plain value: their overridden methods stay here.
    for base, convert in ((bool, bool), (int, int.__index__), (float, float.__float__), (str, str.__str__)):
        if isinstance(x, base):
            return encode_value(convert(x), handles, depth + 1)
    for base in (list, tuple, dict, set, frozenset):
        if isinstance(x, base):
            return encode_value(base(x), handles, depth + 1)
    if handles is None:       # the evaluator sends only plain data, builtins and handles
        if getattr(builtins, getattr(x, "__name__", ""), None) is x:
            return {"builtin": x.__name__}
        raise TypeError("cannot pass a %s to the program" % t.__name__)
    handles.append(x)
    return {"h": len(handles) - 1, "type": t.__name__}


def value_nodes(v):
    """How many JSON values a decoded reply holds (counting stops past the limit)."""
    count, stack = 0, [v]
    while stack and count <= MAX_VALUE_NODES:
        x = stack.pop()
        count += 1
        if isinstance(x, list):
            stack.extend(x)
        elif isinstance(x, dict):
            stack.extend(x.values())
    return count


class Handle:
    """An object that stays in the program process; only its identity crosses."""
    __slots__ = ("_remote", "_index", "_type")

    def __init__(self, remote, index, type_name):
        object.__setattr__(self, "_remote", remote)
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "_type", type_name)

    def __getattr__(self, name):
        return self._remote.request({"op": "getattr", "target": {"h": self._index}, "name": name})

    def __call__(self, *args, **kwargs):
        return self._remote.call({"h": self._index}, args, kwargs)

    def __getitem__(self, key):
        return self._remote.request({"op": "getitem", "target": {"h": self._index}, "key": self._remote.encode(key)})

    def __repr__(self):
        return "<%s object in the program>" % self._type

    __eq__ = object.__eq__
    __hash__ = object.__hash__


def decode_value(v, remote, depth=0):
    if depth > 120:
        raise ValueError("value nested too deeply")
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, list):
        return [decode_value(e, remote, depth + 1) for e in v]
    if not isinstance(v, dict) or len(v) not in (1, 2):
        raise ValueError("malformed value")
    (tag, body), = [(k, w) for k, w in v.items() if k != "type"]
    if tag == "i":
        return int(body, 16)
    if tag == "f":
        return float(body)
    if tag == "t":
        return tuple(decode_value(e, remote, depth + 1) for e in body)
    if tag == "s":
        return set(decode_value(e, remote, depth + 1) for e in body)
    if tag == "z":
        return frozenset(decode_value(e, remote, depth + 1) for e in body)
    if tag == "d":
        return {decode_value(k, remote, depth + 1): decode_value(w, remote, depth + 1) for k, w in body}
    if tag == "b":
        return bytes.fromhex(body)
    if tag == "c":
        return complex(float(body[0]), float(body[1]))
    if tag == "h" and remote is not None:
        return Handle(remote, int(body), str(v.get("type", "object")))
    raise ValueError("unknown value tag %r" % tag)


# ---------------------------------------------------------------- sandbox init and program process
def set_limits(limits):
    memory = limits["memory"]
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file_size"], limits["file_size"]))
    if not PROCESS_CAP:
        # Counts every process of the user, machine-wide: only the fallback.
        resource.setrlimit(resource.RLIMIT_NPROC, (limits["processes"], limits["processes"]))
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    cpu = max(1, int(limits["cpu_seconds"] + 0.999))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))


def drop_privileges():
    if NS:
        header = (ctypes.c_uint32 * 2)(0x20080522, 0)      # _LINUX_CAPABILITY_VERSION_3, this thread
        data = (ctypes.c_uint32 * 6)()
        if libc.capset(header, data) != 0:
            raise OSError(ctypes.get_errno(), "capset")
    elif os.getuid() == 0:
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    if SECCOMP:
        install_seccomp()


# System calls a test program has no use for and that widen the kernel's attack surface,
# or that would leave something for the slot's next run (keys, POSIX message queues)
# (x86-64 numbers): they fail with EPERM. Namespace-creating clone flags are refused too;
# clone3 reports ENOSYS so libc falls back to clone, whose flags the filter can see.
DENIED_SYSCALLS = {
    101: "ptrace", 165: "mount", 166: "umount2", 155: "pivot_root", 161: "chroot", 272: "unshare",
    308: "setns", 248: "add_key", 249: "request_key", 250: "keyctl", 321: "bpf", 298: "perf_event_open",
    323: "userfaultfd", 246: "kexec_load", 320: "kexec_file_load", 175: "init_module", 313: "finit_module",
    176: "delete_module", 169: "reboot", 167: "swapon", 168: "swapoff", 163: "acct", 103: "syslog",
    310: "process_vm_readv", 311: "process_vm_writev", 425: "io_uring_setup", 426: "io_uring_enter",
    427: "io_uring_register", 303: "name_to_handle_at", 304: "open_by_handle_at", 212: "lookup_dcookie",
    179: "quotactl", 164: "settimeofday", 227: "clock_settime", 159: "adjtimex", 312: "kcmp",
    300: "fanotify_init", 279: "move_pages", 240: "mq_open", 241: "mq_unlink", 242: "mq_timedsend",
    243: "mq_timedreceive", 244: "mq_notify", 245: "mq_getsetattr", 428: "open_tree", 429: "move_mount",
    430: "fsopen", 431: "fsconfig", 432: "fsmount", 433: "fspick", 438: "pidfd_getfd", 440: "process_madvise",
    442: "mount_setattr", 447: "memfd_secret",
}
# Socket families refused (socket(2) fails with EPERM): the kernel's netlink interfaces, VM
# sockets and raw packets.
DENIED_SOCKET_FAMILIES = {16: "AF_NETLINK", 40: "AF_VSOCK", 17: "AF_PACKET"}
NAMESPACE_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000


def install_seccomp():
    """A seccomp-BPF deny list (needs no-new-privileges, set just before)."""
    EPERM, ENOSYS = 1, 38
    LD, JEQ, JGE, JSET, RET = 0x20, 0x15, 0x35, 0x45, 0x06
    ALLOW, ERRNO, KILL = 0x7FFF0000, 0x00050000, 0x80000000
    program = [(LD, 0, 0, 4), (JEQ, 1, 0, 0xC000003E), (RET, 0, 0, KILL),   # x86-64 only
               (LD, 0, 0, 0), (JGE, 0, 1, 0x40000000), (RET, 0, 0, ERRNO | EPERM)]   # no x32
    for number in sorted(DENIED_SYSCALLS):
        program += [(JEQ, 0, 1, number), (RET, 0, 0, ERRNO | EPERM)]
    program += [(JEQ, 0, 1, 435), (RET, 0, 0, ERRNO | ENOSYS)]                 # clone3
    families = sorted(DENIED_SOCKET_FAMILIES)
    program += [(JEQ, 0, len(families) + 3, 41), (LD, 0, 0, 16)]               # socket: its family
    program += [(JEQ, len(families) - i, 0, f) for i, f in enumerate(families)]
    program += [(RET, 0, 0, ALLOW), (RET, 0, 0, ERRNO | EPERM)]
    program += [(JEQ, 1, 0, 56), (RET, 0, 0, ALLOW),                           # clone: check flags
                (LD, 0, 0, 16), (JSET, 0, 1, NAMESPACE_FLAGS), (RET, 0, 0, ERRNO | EPERM),
                (RET, 0, 0, ALLOW)]

    class Instruction(ctypes.Structure):
        _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Instruction))]

    instructions = (Instruction * len(program))(*[Instruction(*i) for i in program])
    filter_program = Program(len(program), instructions)
    PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(filter_program), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "seccomp filter refused")


CLEAN_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8", "PYTHONIOENCODING": "utf-8"}


def program_process(fds, command, limits):
    """Becomes the untrusted process: fds, limits, privileges, then the program."""
    if command["kind"] != "stdio":
        null = os.open("/dev/null", os.O_WRONLY)
        fds = dict(fds, stdout=null, stderr=null)
    # Move every descriptor out of the way first: the ones we were given may be 0-5 themselves.
    moved = {name: fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for name, fd in fds.items()}
    places = {"stdin": 0, "stdout": 1, "stderr": 2, "report": 3, "calls_in": 4, "calls_out": 5}
    for name, fd in moved.items():
        os.dup2(fd, places[name])
    # The program starts from exactly these descriptors: a place it was not given is /dev/null
    # (0-2) or closed (3-5), and everything above is closed, whatever the processes before it
    # held open.
    for name, place in places.items():
        if name in moved:
            continue
        if place <= 2:
            null = os.open("/dev/null", os.O_RDONLY if place == 0 else os.O_WRONLY)
            if null != place:
                os.dup2(null, place)
                os.close(null)
        else:
            try:
                os.close(place)
            except OSError:
                pass
    os.closerange(len(places), 65536)
    for s in (signal.SIGINT, signal.SIGPIPE, signal.SIGTERM, signal.SIGCHLD):
        signal.signal(s, signal.SIG_DFL)
    # A session of its own: kill(0, ...) and killpg then reach only the program's processes,
    # never the harness (signals to a process group cross pid namespaces).
    try:
        os.setsid()
    except OSError:
        pass
    os.environ.clear()
    os.environ.update(CLEAN_ENV)
    if NS and not SECCOMP:
        # Runs share the slot's namespaces one after another. The seccomp filter refuses the
        # two things that outlive every process and the init cannot list: keys in the user
        # keyring and POSIX message queues. Without it, each run gets user and IPC namespaces
        # of its own (about half a millisecond more per run).
        enter_namespaces(os.getuid(), os.getgid(), CLONE_NEWUSER | CLONE_NEWIPC)
    # When the job's memory cap (the slot's cgroup) is hit, the kernel kills the program, not
    # the evaluator or the sandbox init (raising one's own score needs no privilege).
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")
    except OSError:
        pass
    set_limits(limits)
    drop_privileges()
    source = command["program"]
    if source.startswith("\ufeff"):
        source = source[1:]                  # a UTF-8 byte-order mark, as Python accepts in files
    install_exit_builtins()
    try:
        code = compile_program(source, command["kind"] == "stdio")
        prelude = compile(command["prelude"], "prelude.py", "exec", dont_inherit=True) if command.get("prelude") else None
    except BaseException as e:                       # SyntaxError, ValueError (null bytes), MemoryError, RecursionError
        report(3, {"phase": "compile", "type": type(e).__name__, "message": trim(str(e))})
        os._exit(2)
    if command["kind"] == "stdio":
        run_stdio_program(code, prelude)
    else:
        serve_calls(code, prelude, command)


def install_exit_builtins():
    """exit() and quit(), which Python's site module adds (the harness runs with -S): they
    close stdin and raise SystemExit, as site's do."""
    def leave(code=None):
        try:
            sys.stdin.close()
        except BaseException:
            pass
        raise SystemExit(code)
    builtins.exit = builtins.quit = leave


# SyntaxError messages of statements that are valid only inside a function.
FUNCTION_ONLY = ("'return' outside function", "nonlocal declaration not allowed at module level",
                 "no binding for nonlocal", "'yield' outside function", "'await' outside function")


def compile_program(source, stdin_program):
    """Compiles a program as a module. A stdin program that uses a statement valid only in a
    function (a top-level return or nonlocal) is compiled the way APPS's harness runs every
    stdin program: its lines indented by a tab inside a function that is then called (import
    lines stay at top level, as in APPS). Programs valid as modules run as modules."""
    try:
        return compile(source, "program.py", "exec", dont_inherit=True)
    except SyntaxError as e:
        if not stdin_program or not any(m in str(e.msg) for m in FUNCTION_ONLY):
            raise
        first = e
    imports, body, started = [], [], False
    for line in source.splitlines():
        if not started and (line.startswith("import ") or line.startswith("from ")):
            imports.append(line + "\n")
            continue
        started = started or bool(line.strip())
        body.append("\t" + line + "\n")
    lines = imports + ["def __program__():\n"] + body + ["\tpass\n__program__()\n"]
    try:
        return compile("".join(lines), "program.py", "exec", dont_inherit=True)
    except SyntaxError:
        raise first


def report(fd, obj):
    try:
        send(fd, obj)
    except BaseException:
        pass


def run_stdio_program(code, prelude):
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    status = 0
    try:
        if prelude:
            exec(prelude, namespace)
        exec(code, namespace)
    except SystemExit as e:
        status = exit_status(e)
    except BaseException as e:
        report(3, {"phase": "run", "type": trim(type(e).__name__, 100), "message": trim(str(e))})
        status = 1
    flush_and_exit(shut_down(status))


def exit_status(e):
    code = e.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    try:
        sys.stderr.write("%s\n" % (code,))
    except BaseException:
        pass
    return 1


def shut_down(status):
    """What Python does after the main module ends, in its order: wait for the threads that
    are not daemons, then run the atexit handlers. Output is flushed by the caller."""
    threading = sys.modules.get("threading")
    try:
        if threading is not None:
            threading._shutdown()
    except SystemExit as e:
        status = exit_status(e)
    except BaseException:
        pass
    try:
        import atexit
        atexit._run_exitfuncs()       # prints and ignores what a handler raises, SystemExit too
    except BaseException:
        pass
    return status


def flush_and_exit(status):
    try:
        sys.stdout.flush()
    except BaseException:
        status = status or 1
    try:
        sys.stderr.flush()
    except BaseException:
        pass
    os._exit(status & 0xFF)


def trim(text, limit=400):
    text = text.replace("\x00", "")
    return text if len(text) <= limit else text[:limit] + "..."


def serve_calls(code, prelude, command):
    """Loads the program as a module, then answers calls from the evaluator on fds 4/5."""
    namespace = {"__name__": "solution", "__builtins__": builtins}
    handles = [namespace]
    try:
        if prelude:
            exec(prelude, namespace)
        exec(code, namespace)
        if command.get("setup"):
            exec(compile(command["setup"], "setup.py", "exec", dont_inherit=True), namespace)
        names = sorted(k for k in namespace if isinstance(k, str) and not k.startswith("__"))
        modules = {}
        for k in names:
            if type(namespace[k]) is ModuleType:
                real = getattr(namespace[k], "__name__", "")
                modules[k] = real if isinstance(real, str) else ""
        send(5, {"loaded": names, "modules": modules})
    except BaseException as e:
        send(5, {"failed": {"type": trim(type(e).__name__, 100), "message": trim(str(e))}})
        os._exit(1)
    while True:
        try:
            request = receive(4)
        except EOFError:
            os._exit(0)
        try:
            result = perform(request, namespace, handles)
            reply = {"value": encode_value(result, handles)}
        except BaseException as e:
            if isinstance(e, SystemExit):
                os._exit(1)
            reply = {"error": {"type": trim(type(e).__name__, 100), "message": trim(str(e))}}
        send(5, reply)


def perform(request, namespace, handles):
    def resolve(target):
        if "name" in target:
            if target["name"] not in namespace:
                raise NameError("name %r is not defined" % target["name"])
            return namespace[target["name"]]
        return handles[int(target["h"])]

    def value(v):
        return decode_value(v, None) if not (isinstance(v, dict) and "h" in v) else handles[int(v["h"])]

    def arg(v):
        if isinstance(v, dict) and "h" in v:
            return handles[int(v["h"])]
        if isinstance(v, dict) and "name" in v:
            return resolve(v)
        if isinstance(v, dict) and "builtin" in v:
            return getattr(builtins, v["builtin"])
        if isinstance(v, list):
            return [arg(e) for e in v]
        if isinstance(v, dict) and "t" in v:
            return tuple(arg(e) for e in v["t"])
        return decode_value(v, None)

    op = request["op"]
    if op == "call":
        return resolve(request["target"])(*[arg(a) for a in request["args"]], **{k: arg(a) for k, a in request["kwargs"].items()})
    if op == "getattr":
        return getattr(resolve(request["target"]), request["name"])
    if op == "getitem":
        return resolve(request["target"])[value(request["key"])]
    if op == "get":
        return namespace[request["name"]]
    raise ValueError("unknown operation")


def sandbox_init(control, results):
    """Pid 1 of the slot's namespaces (or, relaxed, a subreaper): runs each command in a fresh
    program process, then kills everything that process left behind. `control` (a socket)
    brings commands with the program's descriptors, and "k" to kill the current run;
    `results` (a pipe) takes one {"done": ...} per command."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    if NS:
        mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
    else:
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    send(results, {"ready": True})
    scratch = Scratch()
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, 1, 8)
            if message == b"k":
                continue                          # a kill that came after its run had ended
            if message != b"c":
                scratch.remove()
                os._exit(0)                       # the evaluator is gone
            command = receive(control.fileno())
            scratch.renew(command["limits"])
        except BaseException as e:
            report(results, {"infrastructure": "sandbox init: %s: %s" % (type(e).__name__, e)})
            os._exit(1)
        child = os.fork()
        if child == 0:
            try:
                control.close()
                os.close(results)
                program_process(dict(zip(command["fds"], fds)), command, command["limits"])
            finally:
                os._exit(120)
        for fd in fds:
            os.close(fd)
        pidfd = os.pidfd_open(child)
        ended = False
        while not ended:
            for ready in select.select([control, pidfd], [], [])[0]:
                if ready == pidfd:
                    ended = True
                elif control.recv(1) in (b"k", b""):
                    os.kill(child, signal.SIGKILL)
                    ended = True
        os.close(pidfd)
        _, status, usage = os.wait4(child, 0)
        kill_leftovers()
        send(results, {"done": True, "status": status, "cpu": usage.ru_utime + usage.ru_stime, "maxrss_kb": usage.ru_maxrss})


class Scratch:
    """What one run may change and the next must not see: with namespaces, /tmp and /dev/shm
    (fresh tmpfs mounts, sized by the run's limits) and System V IPC objects (removed); in
    relaxed mode, a fresh job directory under SCRATCH."""

    def __init__(self):
        self.mounted, self.job_dir = [], None

    def remove(self):
        if self.job_dir:
            import shutil
            shutil.rmtree(self.job_dir, ignore_errors=True)
            self.job_dir = None

    def renew(self, limits):
        if not NS:
            self.remove()
            import tempfile
            self.job_dir = tempfile.mkdtemp(prefix="job-", dir=SCRATCH)
            os.chmod(self.job_dir, 0o777)
            os.chdir(self.job_dir)                # the program process starts here
            return
        for target in self.mounted:
            if libc.umount2(target, MNT_DETACH) != 0:
                raise InfrastructureError("unmounting %s failed: %s" % (target.decode(), os.strerror(ctypes.get_errno())))
        self.mounted = []
        size = ("size=%d,mode=1777" % limits["scratch"]).encode()
        for target in (b"/tmp", b"/dev/shm"):
            if target == b"/tmp" or os.path.isdir(target):
                mount(b"tmpfs", target, b"tmpfs", MS_NOSUID | MS_NODEV, size)
                self.mounted.append(target)
        remove_ipc_objects()
        os.chdir("/tmp")                          # the program process starts here


IPC_RMID, SHM_INFO, SEM_INFO, MSG_INFO = 0, 14, 19, 12
_ipc_info = (ctypes.c_int * 64)()
# Per kind of System V object: how many exist (the *_INFO query and which int of its answer
# counts them: shm_info.used_ids, seminfo.semusz, msginfo.msgpool) and how one is removed.
IPC_KINDS = (
    ("shm", lambda: libc.shmctl(0, SHM_INFO, _ipc_info), 0, lambda i: libc.shmctl(i, IPC_RMID, None)),
    ("sem", lambda: libc.semctl(0, 0, SEM_INFO, _ipc_info), 7, lambda i: libc.semctl(i, 0, IPC_RMID)),
    ("msg", lambda: libc.msgctl(0, MSG_INFO, _ipc_info), 0, lambda i: libc.msgctl(i, IPC_RMID, None)),
)


def remove_ipc_objects():
    """Removes every System V shared memory segment, semaphore set and message queue of the
    namespace (the init owns the namespace, so it may). A cheap count first: runs rarely
    leave any."""
    for kind, count, index, remove in IPC_KINDS:
        ctypes.memset(_ipc_info, 0, ctypes.sizeof(_ipc_info))
        if count() >= 0 and _ipc_info[index] == 0:
            continue
        with open("/proc/sysvipc/" + kind) as f:
            for line in f.read().splitlines()[1:]:
                ident = line.split()[1]
                if remove(int(ident)) != 0:
                    raise InfrastructureError("removing %s %s failed: %s" % (kind, ident, os.strerror(ctypes.get_errno())))


def mount(source, target, fstype, flags, data):
    if libc.mount(source, target, fstype, flags, data) != 0:
        errno = ctypes.get_errno()
        raise InfrastructureError("mount %s on %s failed: %s" % (fstype.decode(), target.decode(), os.strerror(errno)))


def kill_leftovers():
    """Every process the run left behind (daemons included) is killed and reaped."""
    if NS:
        try:
            os.kill(-1, signal.SIGKILL)       # as pid 1: every other process of the namespace
        except ProcessLookupError:
            pass                              # nothing was left behind
    else:
        kill_descendants()
    reap(block=NS)


def kill_descendants():
    """Relaxed mode: this process is a subreaper, so orphans (daemons) are found below it."""
    for _ in range(100):
        victims = descendants(os.getpid())
        if not victims:
            return
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        reap()
        time.sleep(0.001)


def descendants(pid):
    found, stack = [], [pid]
    while stack:
        p = stack.pop()
        try:
            for task in os.listdir("/proc/%d/task" % p):
                with open("/proc/%d/task/%s/children" % (p, task)) as f:
                    for c in f.read().split():
                        found.append(int(c))
                        stack.append(int(c))
        except OSError:
            pass
    return found


def reap(block=False):
    while True:
        try:
            pid, _ = os.waitpid(-1, 0 if block else os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def enter_namespaces(uid, gid, flags=CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC):
    """New namespaces (by default user, pid (for the next child), mount and IPC), this
    process's uid and gid mapped (uid 1000 inside)."""
    if libc.unshare(flags) != 0:
        raise InfrastructureError("unshare failed: %s" % os.strerror(ctypes.get_errno()))
    libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)   # /proc/self belongs to root otherwise
    for path, text in (("setgroups", "deny"), ("uid_map", "1000 %d 1" % uid), ("gid_map", "1000 %d 1" % gid)):
        with open("/proc/self/" + path, "w") as f:
            f.write(text)
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)


# ---------------------------------------------------------------- the sandbox, seen from the evaluator
class Sandbox:
    """The slot's namespaces and their init, started before the evaluator reads any job. A
    short-lived holder process enters the namespaces and forks the init (the next child of a
    process that made a pid namespace is that namespace's pid 1), then waits for it."""

    def __init__(self):
        uid, gid = os.getuid(), os.getgid()
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        results_r, results_w = os.pipe()
        holder = os.fork()
        if holder == 0:
            try:
                mine.close()
                os.close(results_r)
                for fd in (0, 1):
                    os.close(fd)                  # jobs and replies are the evaluator's
                if NS:
                    enter_namespaces(uid, gid)
                init = os.fork()
                if init == 0:
                    try:
                        sandbox_init(theirs, results_w)
                    except BaseException as e:
                        report(results_w, {"infrastructure": "sandbox init: %s: %s" % (type(e).__name__, e)})
                    os._exit(1)
                theirs.close()
                os.close(results_w)
                os.waitpid(init, 0)
            except BaseException as e:
                report(results_w, {"infrastructure": "%s: %s" % (type(e).__name__, e)})
            os._exit(0)
        theirs.close()
        os.close(results_w)
        self.holder, self.control, self.results = holder, mine, results_r
        self.gone = False
        try:
            ready = receive(self.results, time.monotonic() + 10)
        except (EOFError, TimeoutError, ValueError) as e:
            raise InfrastructureError("the sandbox did not start: %r" % e)
        if "infrastructure" in ready:
            raise InfrastructureError(ready["infrastructure"])

    def start(self, command, fds):
        """Sends a command with the program's ends of its descriptors (closed here after)."""
        names = sorted(fds)
        try:
            socket.send_fds(self.control, [b"c"], [fds[n] for n in names])
            send(self.control.fileno(), dict(command, fds=names))
        except OSError as e:
            raise InfrastructureError("the sandbox init is gone: %s" % e)
        finally:
            for fd in fds.values():
                os.close(fd)

    def done(self, deadline):
        """The end of the current run, as the init reports it (never the program's say)."""
        try:
            message = receive(self.results, deadline)
        except EOFError:
            self.gone = True
            raise InfrastructureError("the sandbox init ended (killed from outside?) before reporting the end of a run")
        except (TimeoutError, ValueError, UnicodeDecodeError, struct.error) as e:
            raise InfrastructureError("the sandbox init did not report the end of a run: %r" % e)
        if "infrastructure" in message:
            raise InfrastructureError(message["infrastructure"])
        return message

    def close(self):
        """Ends the init (end of its input) and waits a little for it and the holder, so that
        it finishes its own clean-up (relaxed mode: the last job directory)."""
        self.control.close()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if os.waitpid(self.holder, os.WNOHANG)[0] != 0:
                return
            time.sleep(0.005)

    def kill(self):
        """Asks the init to kill the current run; returns how it ended."""
        if self.gone:
            raise InfrastructureError("the sandbox init is gone")
        try:
            self.control.send(b"k")
        except OSError as e:
            raise InfrastructureError("the sandbox init is gone: %s" % e)
        return self.done(time.monotonic() + 10)


SANDBOX = None      # the evaluator's Sandbox, started in main()


class Run:
    """One program process in the slot's sandbox: stdio (stdin, stdout, stderr, report) or
    calls (report and the two call pipes; its stdout and stderr go to /dev/null)."""

    def __init__(self, job, kind, command, stdin=""):
        self.limits, self.kind, self.ended = job["limits"], kind, None
        report_r, report_w = os.pipe()
        theirs, self.streams = {"report": report_w}, {report_r: Stream(65536, keep="head")}
        self.report = report_r
        if kind == "stdio":
            stdin_file = os.memfd_create("stdin")
            write_all(stdin_file, stdin.encode("utf-8", "surrogateescape"))
            os.lseek(stdin_file, 0, 0)
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            theirs.update(stdin=stdin_file, stdout=out_w, stderr=err_w)
            self.out, self.err = out_r, err_r
            self.streams[out_r] = Stream(self.limits["output"] + 1, keep="head")
            self.streams[err_r] = Stream(4096, keep="tail")
        else:
            calls_in_r, calls_in_w = os.pipe()
            calls_out_r, calls_out_w = os.pipe()
            theirs.update(calls_in=calls_in_r, calls_out=calls_out_w)
            self.calls_in, self.calls_out = calls_in_w, calls_out_r
        self.mine = list(self.streams) + ([self.calls_in, self.calls_out] if kind == "calls" else [])
        try:
            SANDBOX.start(dict(command, limits=self.limits), theirs)
        except BaseException:
            self.close()
            raise

    def collect(self, deadline):
        """Reads the program's streams until the run ends or the deadline passes. Returns
        (done message or None, stdout, stderr tail, report, limit hit)."""
        waiting = list(self.streams) + [SANDBOX.results]
        over = None
        while self.ended is None and over is None:
            left = deadline - time.monotonic()
            if left <= 0:
                over = "timeout"
                break
            for fd in select.select(waiting, [], [], left)[0]:
                if fd == SANDBOX.results:
                    self.ended = SANDBOX.done(time.monotonic() + 10)
                elif not self.streams[fd].read(fd):
                    waiting.remove(fd)
            if self.output_exceeded():
                over = "output"
        if self.ended is not None:
            # Everything the run wrote is in the pipes now: the init reports only after the
            # program and every process it left behind are dead.
            for fd, stream in self.streams.items():
                while fd in waiting and select.select([fd], [], [], 0)[0] and stream.read(fd):
                    pass
            if self.output_exceeded():
                over = "output"
        else:
            self.kill()
        stdout = self.streams[self.out].bytes() if self.kind == "stdio" else b""
        stderr = self.streams[self.err].bytes() if self.kind == "stdio" else b""
        return self.ended, stdout, stderr, self.streams[self.report].bytes(), over

    def output_exceeded(self):
        return self.kind == "stdio" and self.streams[self.out].size > self.limits["output"]

    def kill(self):
        """Ends the run now if it has not ended, and closes our descriptors."""
        try:
            if self.ended is None and not SANDBOX.gone:
                self.ended = SANDBOX.kill()
        finally:
            self.close()

    def close(self):
        for fd in self.mine:
            try:
                os.close(fd)
            except OSError:
                pass
        self.mine = []

    def finish(self):
        """Ends a call-serving program normally (its input closes), for its memory use."""
        try:
            os.close(self.calls_in)
            self.mine.remove(self.calls_in)
            if self.ended is None and select.select([SANDBOX.results], [], [], 1)[0]:
                self.ended = SANDBOX.done(time.monotonic() + 10)
            return self.ended["maxrss_kb"] if self.ended else 0
        finally:
            self.kill()


class Stream:
    """Bytes read from a pipe, at most `cap` kept (the first ones or the last ones); size
    counts everything read."""

    def __init__(self, cap, keep):
        self.cap, self.keep, self.size, self.data = cap, keep, 0, bytearray()

    def read(self, fd):
        chunk = os.read(fd, 1 << 16)
        self.size += len(chunk)
        if self.keep == "head":
            room = self.cap - len(self.data)
            if room > 0:
                self.data += chunk[:room]
        else:
            self.data += chunk
            if len(self.data) > self.cap:
                del self.data[: len(self.data) - self.cap]
        return bool(chunk)

    def bytes(self):
        return bytes(self.data)


def program_report(raw):
    if len(raw) < 4:
        return None
    try:
        (n,) = struct.unpack("<I", raw[:4])
        value = json.loads(raw[4:4 + n].decode("utf-8", "replace"))
        return value if isinstance(value, dict) else None
    except ValueError:
        return None


def status_of_exit(done, stderr, rep, limits):
    """Turns how a run ended into (status, error type, message) for one test."""
    rep = program_report(rep) or {}
    status = done["status"]
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig == signal.SIGXCPU or (sig == signal.SIGKILL and done["cpu"] >= limits["cpu_seconds"]):
            return "timeout", "TimeLimitExceeded", "CPU time limit of %gs exceeded" % limits["cpu_seconds"]
        if sig == signal.SIGXFSZ:
            return "output", "FileSizeLimitExceeded", "file size limit of %d bytes exceeded" % limits["file_size"]
        name = signal.Signals(sig).name if sig in signal.valid_signals() else str(sig)
        return "error", "Signal", "killed by %s" % name
    code = os.WEXITSTATUS(status)
    # The report comes from the program's process, which the program controls: bounded here.
    kind, message = trim(str(rep.get("type") or ""), 100), trim(str(rep.get("message") or ""))
    if rep.get("phase") == "compile" and code == 2:
        return "compile", kind or "SyntaxError", message
    if kind == "MemoryError":
        return "memory", "MemoryError", "memory limit of %d bytes exceeded" % limits["memory"]
    if code != 0:
        if kind:
            return "error", kind, message
        tail = stderr.decode("utf-8", "replace").strip().splitlines()
        return "error", "ExitStatus", "exit status %d%s" % (code, (": " + trim(tail[-1])) if tail else "")
    return None


def tokens_match(a, b):
    """Two output tokens match if equal, or if both are numbers within APPS's tolerance
    (numpy.allclose defaults: |a - b| <= 1e-8 + 1e-5 * |b|)."""
    if a == b:
        return True
    try:
        x, y = float(a), float(b)
    except ValueError:
        return False
    if x != x or y != y or x in (float("inf"), float("-inf")) or y in (float("inf"), float("-inf")):
        return False
    return abs(x - y) <= 1e-8 + 1e-5 * abs(y)


def output_lines(text):
    """Lines with surrounding whitespace removed, blank lines dropped."""
    return [line.split() for line in text.splitlines() if line.strip()]


def outputs_match(output, expected):
    """Standard-output comparison, after APPS's harness (testing_util.py), in this order:
    1. The output is decoded as UTF-8; undecodable bytes become U+FFFD and never match.
    2. Both texts are split into lines (\\n, \\r\\n, \\r); whitespace around each line is
       ignored and blank lines are dropped.
    3. The same number of lines, and in each line the same number of whitespace-separated
       tokens, each equal or (both numbers) within tokens_match's tolerance.
    APPS also accepts a line whose tokens are a permutation of the expected ones; we do not."""
    got, want = output_lines(output.decode("utf-8", "replace")), output_lines(expected)
    if len(got) != len(want):
        return False
    for g, w in zip(got, want):
        if len(g) != len(w) or not all(tokens_match(x, y) for x, y in zip(g, w)):
            return False
    return True


def run_stdio(job):
    tests, limits = job["tests"], job["limits"]
    results = []
    for index, test in enumerate(tests):
        command = {"kind": "stdio", "program": job["program"], "prelude": job.get("prelude", "")}
        started = time.monotonic()
        run = Run(job, "stdio", command, stdin=test["input"])
        try:
            done, out, err, rep, over = run.collect(started + limits["seconds"])
        finally:
            run.kill()
        result = {"index": index, "seconds": time.monotonic() - started}
        if over == "timeout":
            result.update(status="timeout", type="TimeLimitExceeded", message="wall-clock limit of %gs exceeded" % limits["seconds"])
        elif over == "output":
            result.update(status="output", type="OutputLimitExceeded", message="output exceeded %d bytes" % limits["output"])
        else:
            result["maxrss_kb"] = done.get("maxrss_kb", 0)
            result["cpu"] = done.get("cpu", 0)
            failure = status_of_exit(done, err, rep, limits)
            if failure:
                result.update(status=failure[0], type=failure[1], message=failure[2])
            elif outputs_match(out, test["expected"]):
                result["status"] = "passed"
            else:
                result.update(status="wrong", type="WrongAnswer", message=wrong_answer(out, test["expected"]))
        results.append(result)
        if result["status"] == "compile" or (job["stop_at_first_failure"] and result["status"] != "passed"):
            break
    return results


def wrong_answer(output, expected):
    got = output.decode("utf-8", "replace").strip()
    return trim("expected %r, got %r" % (trim(expected.strip(), 80), trim(got, 80)), 200)


# ---------------------------------------------------------------- evaluator for call-style tests
class RemoteError(Exception):
    def __init__(self, kind, type_name, message):
        Exception.__init__(self, message)
        self.kind, self.type_name, self.message = kind, type_name, message


class Remote:
    """The program process, seen from the evaluator."""

    def __init__(self, job):
        self.job, self.limits = job, job["limits"]
        self.box, self.names, self.modules, self.deadline = None, [], {}, None
        self.load_failure = None

    def ensure(self):
        if self.box is not None:
            return
        command = {"kind": "calls", "program": self.job["program"], "prelude": self.job.get("prelude", ""), "setup": self.job.get("setup", "")}
        self.box = Run(self.job, "calls", command)
        reply = self.receive()
        if "failed" in reply:
            self.load_failure = failure = reply["failed"]
            raise RemoteError("error", trim(str(failure.get("type", "Exception")), 100), trim(str(failure.get("message", ""))))
        names, modules = reply.get("loaded", []), reply.get("modules", {})
        self.names = [n for n in names if isinstance(n, str)] if isinstance(names, list) else []
        self.modules = modules if isinstance(modules, dict) else {}

    def receive(self):
        try:
            left = self.deadline - time.monotonic()
            ready = select.select([self.box.calls_out, SANDBOX.results], [], [], max(0, left))[0]
            if self.box.calls_out not in ready and SANDBOX.results in ready:
                raise EOFError            # the program process ended without replying
            reply = receive(self.box.calls_out, self.deadline, MAX_PROGRAM_REPLY)
            if not isinstance(reply, dict):
                raise ValueError("a reply must be an object")
            if value_nodes(reply) > MAX_VALUE_NODES:
                raise ValueError("a reply of more than %d values" % MAX_VALUE_NODES)
            return reply
        except MemoryError:
            raise self.died(ValueError("a reply too large to decode"))
        except TimeoutError:
            self.reset()
            raise RemoteError("timeout", "TimeLimitExceeded", "wall-clock limit of %gs exceeded" % self.limits["seconds"])
        except (EOFError, ValueError, UnicodeDecodeError, struct.error) as e:
            raise self.died(e)

    def died(self, cause):
        """The program process ended (or broke the protocol) in the middle of a call."""
        done, _, err, rep, _ = self.box.collect(time.monotonic() + 2)
        self.reset()
        if isinstance(cause, ValueError):
            return RemoteError("error", "ProtocolViolation", "the program wrote something that is not a reply: %s" % trim(str(cause)))
        if done is None:
            return RemoteError("error", "ProcessDied", "the program process ended during a call")
        failure = status_of_exit(done, err, rep, self.limits)
        if failure:
            return RemoteError(failure[0], failure[1], failure[2])
        return RemoteError("error", "ProcessExited", "the program exited during a call (exit status 0)")

    def reset(self):
        if self.box:
            self.box.kill()
        self.box = None

    def encode(self, x):
        if isinstance(x, Handle):
            return {"h": x._index}
        if isinstance(x, RemoteName):
            return {"name": x.name}
        if isinstance(x, list):
            return [self.encode(e) for e in x]
        if isinstance(x, tuple):
            return {"t": [self.encode(e) for e in x]}
        return encode_value(x, None)

    def request(self, message):
        self.ensure()
        send(self.box.calls_in, message)
        reply = self.receive()
        if "error" in reply:
            e = reply["error"]
            if e.get("type") == "MemoryError":
                raise RemoteError("memory", "MemoryError", "memory limit of %d bytes exceeded" % self.limits["memory"])
            raise RemoteError("error", trim(str(e.get("type", "Exception")), 100), trim(str(e.get("message", ""))))
        try:
            return decode_value(reply["value"], self)
        except (ValueError, KeyError, TypeError, RecursionError) as e:
            raise RemoteError("error", "ProtocolViolation", "undecodable value: %s" % trim(str(e)))

    def call(self, target, args, kwargs):
        return self.request({"op": "call", "target": target, "args": [self.encode(a) for a in args],
                             "kwargs": {k: self.encode(v) for k, v in kwargs.items()}})


class RemoteName:
    """A name the program defines, called or read from the test code."""

    def __init__(self, remote, name):
        self.remote, self.name = remote, name

    def __call__(self, *args, **kwargs):
        return self.remote.call({"name": self.name}, args, kwargs)

    def __getattr__(self, attribute):
        return self.remote.request({"op": "getattr", "target": {"name": self.name}, "name": attribute})


def referenced_names(code):
    names, stack = set(), [code]
    while stack:
        c = stack.pop()
        names.update(c.co_names)
        names.update(getattr(c, "co_varnames", ()))
        stack.extend(k for k in c.co_consts if hasattr(k, "co_names"))
    return names


def trusted_namespace(job, remote, test_sources):
    """Names for the test code: the suite's helpers (trusted), standard modules imported here,
    and for everything else the program defines, a remote proxy."""
    namespace = {"__name__": "tests", "__builtins__": builtins}
    if job.get("helpers"):
        exec(compile(job["helpers"], "helpers.py", "exec", dont_inherit=True), namespace)
    wanted = set()
    for source in test_sources:
        wanted |= referenced_names(compile(source, "tests.py", "exec", dont_inherit=True))
    remote.ensure()
    defined, modules = set(remote.names), remote.modules if isinstance(remote.modules, dict) else {}
    entry = job.get("entry")
    if entry:
        namespace[entry] = RemoteName(remote, entry)
    for name in wanted:
        if name in namespace or name == entry:
            continue
        if hasattr(builtins, name):
            continue
        # A module the test code names is always the evaluator's own, never the program's
        # (which the program may have changed: math.isclose = lambda *a: True).
        if name not in defined:
            module = trusted_module(name)
        elif name in modules:
            module = trusted_module(modules[name]) or trusted_module(name)
        else:
            module = None
        if module is not None:
            namespace[name] = module
        elif name in defined:
            namespace[name] = RemoteName(remote, name)
    return namespace


# Modules whose import prints or opens something (the evaluator's stdout is its channel).
NOISY_MODULES = {"this", "antigravity", "__hello__", "__phello__", "idlelib", "turtledemo", "tkinter"}


def trusted_module(name):
    """The evaluator's copy of a standard module (or numpy), or None."""
    if not isinstance(name, str) or not name:
        return None
    top = name.split(".")[0]
    if top in NOISY_MODULES or (top not in sys.stdlib_module_names and top != "numpy"):
        return None
    try:
        import importlib
        return importlib.import_module(name)
    except BaseException:
        return None


def apps_equal(output, expected):
    """APPS's call-based comparison (testing_util.py): tuples compare as lists, and an
    expected value wrapped in a one-element list also matches."""
    if isinstance(output, tuple):
        output = list(output)
    if output == expected:
        return True
    if isinstance(expected, list) and expected and output == expected[0]:
        return True
    try:
        if isinstance(output[0], tuple) and [list(x) for x in output] == expected[0]:
            return True
    except Exception:
        pass
    return False


def run_calls(job):
    tests, limits, fmt = job["tests"], job["limits"], job["format"]
    remote = Remote(job)
    results, namespace, maxrss = [], None, 0
    try:
        for index, test in enumerate(tests):
            started = time.monotonic()
            remote.deadline = started + limits["seconds"]
            result = {"index": index}
            try:
                remote.ensure()
                if fmt == "call":
                    passed = run_apps_call(remote, job, test)
                else:
                    if namespace is None or remote.box is None:
                        namespace = trusted_namespace(job, remote, [t["code"] for t in tests])
                    passed = run_test_code(namespace, job, test, fmt)
                result["status"] = "passed" if passed else "wrong"
                if not passed:
                    result.update(type="WrongAnswer", message="the result differs from the expected value")
            except RemoteError as e:
                result.update(status=e.kind, type=e.type_name, message=e.message)
            except AssertionError as e:
                result.update(status="wrong", type="AssertionError", message=trim(str(e)) or "assertion failed")
            except InfrastructureError:
                raise
            except Exception as e:
                # The trusted test code could not work with what the program returned (a
                # handle, None, a wrong type): the program's answer is wrong.
                result.update(status="wrong", type=trim(type(e).__name__, 100), message="the test could not use the program's result: %s" % trim(str(e)))
            result["seconds"] = time.monotonic() - started
            results.append(result)
            if result["status"] == "compile" or remote.load_failure is not None:
                # Nothing can run: every remaining test gets the same result.
                results += [dict(result, index=rest, seconds=0.0) for rest in range(index + 1, len(tests))]
                break
            if job["stop_at_first_failure"] and result["status"] != "passed":
                break
    finally:
        if remote.box:
            maxrss = remote.box.finish()
            remote.box = None
    if results and maxrss:
        results[-1]["maxrss_kb"] = maxrss
    return results


def run_apps_call(remote, job, test):
    args = json.loads(test["input"])
    expected = json.loads(test["expected"])
    remote.ensure()
    entry = job["entry"]
    if "Solution" in remote.names:
        target = RemoteName(remote, "Solution")()
        method = getattr(target, entry)
        output = method(*args)
    else:
        output = RemoteName(remote, entry)(*args)
    return apps_equal(output, expected)


def run_test_code(namespace, job, test, fmt):
    code = compile(test["code"], "tests.py", "exec", dont_inherit=True)
    scope = dict(namespace)
    exec(code, scope)
    if fmt == "check":
        check = scope.get("check")
        if check is None:
            raise InfrastructureError("the HumanEval test defines no check()")
        check(scope[job["entry"]])
    return True


# ---------------------------------------------------------------- the evaluator's loop
def run_job(job):
    try:
        tests = run_stdio(job) if job["format"] == "stdio" else run_calls(job)
        answer = {"id": job["id"], "tests": tests}
    except InfrastructureError as e:
        answer = {"id": job["id"], "infrastructure": str(e)}
    except BaseException as e:
        import traceback
        answer = {"id": job["id"], "infrastructure": "harness failure: " + "".join(traceback.format_exception(e))[-2000:]}
    return answer


PROBE = {"id": "probe", "format": "stdio", "program": "print(6*7)", "tests": [{"input": "", "expected": "42"}],
         "stop_at_first_failure": False,
         "limits": {"seconds": 10, "cpu_seconds": 10, "memory": 1 << 30, "output": 1 << 20,
                    "file_size": 1 << 20, "processes": 16, "scratch": 1 << 20}}


def probe():
    """Runs one trivial program the way jobs run, so a broken sandbox is found at start-up."""
    tests = run_stdio(PROBE)
    if [t["status"] for t in tests] != ["passed"]:
        raise InfrastructureError("a trivial program did not run in the sandbox: %r" % (tests,))


def main():
    global SANDBOX
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    # Warm the compiler and load the modules most programs (and APPS's prelude) import, then
    # move every object out of the collector's sight: all before the sandbox init is forked,
    # so programs (forked from it) start warm and copy fewer pages (reference counts and GC
    # headers stay untouched).
    exec(compile("def _warm(x):\n    return [str(i) for i in x]\n_warm(range(3))", "warm", "exec"), {})
    for name in ("math", "itertools", "collections", "functools", "heapq", "bisect", "re", "string", "copy", "operator"):
        try:
            __import__(name)
        except ImportError:
            pass
    import gc
    gc.freeze()
    try:
        SANDBOX = Sandbox()
        probe()
    except BaseException as e:
        send(1, {"ready": False, "reason": "%s" % e})
        return
    send(1, {"ready": True, "mode": MODE, "seccomp": SECCOMP, "python": sys.version.split()[0]})
    while True:
        try:
            job = receive(0)
        except EOFError:
            SANDBOX.close()               # the executor is done with this slot
            return
        answer = run_job(job)
        send(1, answer, errors="replace")  # the executor reads strict UTF-8
        if "infrastructure" in answer:
            return                        # the executor restarts the slot from scratch


main()
