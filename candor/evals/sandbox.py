"""Running model-written Python: a throwaway container, checked before the code starts.

`run_python(source, limits)` runs the program with bubblewrap (`bwrap`, Debian package
`bubblewrap`), which gives it:

- its own PID namespace: the program is pid 2 under bwrap's init; when the program ends, or the
  time limit kills that init, the kernel kills every process left in the namespace (children that
  called `setsid`, a fork bomb's thousands) before `run_python` returns;
- its own network namespace with no interface but a down loopback (no TCP/UDP anywhere), and its
  own IPC, UTS and mount namespaces;
- a filesystem of its own: read-only /usr and the Python installation, a fresh /proc and /dev,
  and a size-limited tmpfs at /sandbox (its working folder, `disk_mb` in all); nothing else from
  the host (no /tmp, /run, /var, /home or /etc, so no Unix sockets of local services and no
  secrets), and it all disappears with the namespace;
- an unprivileged user, uid 65534, and no capabilities. Started by root, bwrap keeps only
  CAP_SETUID/CAP_SETGID for the launcher, which drops to 65534 (nobody, on the host too) at once,
  so RLIMIT_NPROC, which the kernel never enforces for root, holds (it counts every process of
  uid 65534 on the machine, so concurrent runs share it; the default, 0, forbids fork and
  threads). Started by another user, a user namespace maps 65534 to that user, whose groups stay,
  and bwrap disables further user namespaces;
- a seccomp filter (made with libseccomp, Debian package `libseccomp2`) that denies `socket`,
  `socketpair`, io_uring, new namespaces, mount, ptrace, bpf, keyrings and module loading;
- resource limits: address space, CPU seconds, file size (stdout included), open files and
  processes; the wall-clock `timeout_s` kills the namespace.

Fail closed: before any model code, the launcher inside the sandbox checks each of these took
effect (namespaces differ from the host's, uid 65534 and not root on the host, no capabilities,
no-new-privs, seccomp, host folders invisible, limits set) and refuses to run the program
otherwise; the first call probes the same way. Either failure raises `SandboxUnavailable`, naming what is missing.
Only with `SandboxLimits(unsafe=True)`, `candor eval --unsafe-sandbox` or `CANDOR_UNSAFE_SANDBOX=1`
does a machine without working isolation run the program anyway, in a plain child process with
the limits and the Python guard only; its results say `UNSAFE` in `layers`.

The Python guard (`python_guard`, an audit hook refusing sockets, subprocesses and writes
outside the folder) gives clearer errors for everyday mistakes; it is *not* a security boundary
(code that reaches C gets around it) and the container does not rely on it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field

from candor.config import env_flag
from candor.errors import CandorError

UNSAFE_ENV = "CANDOR_UNSAFE_SANDBOX"
NOBODY = 65534
WORKDIR = "/sandbox"
MARKER = "\x00candor-sandbox "
INSTALL_HINT = "install bubblewrap (Debian: apt-get install bubblewrap)"

LAUNCHER = r'''
import json, os, sys, resource
cfg = json.loads(sys.argv[1])
N = cfg["uid"]
program = b""
while chunk := os.read(cfg["program_fd"], 1 << 16):
    program += chunk
os.closerange(3, 1 << 16)
layers, refused = [], []
if cfg["drop"]:
    try:
        os.setgroups([])
        os.setresgid(N, N, N)
        os.setresuid(N, N, N)
    except OSError as e:
        refused.append(f"dropping to uid {N}: {e}")
for name, value in cfg["rlimits"].items():
    try:
        resource.setrlimit(getattr(resource, name), (value, value + 1 if name == "RLIMIT_CPU" else value))
    except (ValueError, OSError):
        pass
    (layers if resource.getrlimit(getattr(resource, name))[0] == value else refused).append(name)
if cfg["isolated"]:
    def check(ok, layer, problem):
        (layers if ok else refused).append(layer if ok else problem)
    try:
        status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
        for kind, host in cfg["host_ns"].items():
            check(os.readlink(f"/proc/self/ns/{kind}") != host, f"{kind}ns", f"a {kind} namespace of its own")
        nics = [line.split(":")[0].strip() for line in open("/proc/net/dev").read().splitlines()[2:]]
        check(set(nics) <= {"lo"}, "no-network-interfaces", f"no network interfaces (found {nics})")
        # In the host's user namespace the uid is what it says; in one of bwrap's, it is the caller's
        # (an unprivileged caller can map no other), which must not be root.
        host_userns = open("/proc/self/uid_map").read().split() == ["0", "0", "4294967295"]
        outside = os.getuid() if host_userns else cfg["caller_uid"]
        ids = (os.getresuid(), os.getresgid())
        check(ids == ((N, N, N), (N, N, N)) and outside != 0, f"uid{N}-host-uid{outside}",
              f"uid {N}, not root on the host (uids/gids {ids}, host uid {outside})")
        if cfg["drop"]:  # in a user namespace the caller's groups stay (and cannot be dropped)
            check(not os.getgroups(), "no-groups", f"no supplementary groups (found {os.getgroups()})")
        check(all(int(status[k], 16) == 0 for k in ("CapPrm", "CapEff", "CapAmb")), "no-capabilities",
              "no capabilities")
        check(status.get("NoNewPrivs", "").strip() == "1", "no-new-privs", "no_new_privs")
        check(status.get("Seccomp", "").strip() == "2", "seccomp", "a seccomp filter")
        seen = [p for p in cfg["hidden"] if os.path.lexists(p)]
        check(not seen, "host-files-hidden", f"host folders hidden (visible: {seen})")
    except (OSError, ValueError, KeyError) as e:
        refused.append(f"inspecting /proc: {e}")
if refused and cfg["isolated"]:
    sys.stderr.write(MARKER + json.dumps({"layers": layers, "refused": refused}) + "\n")
    sys.stderr.flush()
    os._exit(113)
with open("program.py", "wb") as f:
    f.write(program)
if cfg["python_guard"]:
    def _guard(event, args, _folder=os.getcwd() + os.sep, _real=os.path.realpath, _join=os.path.join):
        def inside(path):
            if isinstance(path, int):
                return True
            path = _real(_join(_folder, os.fsdecode(path)))
            return path.startswith(_folder) or path == "/dev/null"
        if event == "open":
            path, mode, flags = args
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool((flags or 0) & 0o3103)
            if writing and not inside(path):
                raise PermissionError(f"sandbox: writing outside the folder is not allowed: {path}")
        elif event.startswith(("socket.", "subprocess.", "os.exec", "os.spawn", "os.posix_spawn", "os.fork",
                               "os.system", "pty.", "ctypes.", "os.kill", "signal.pthread_kill")):
            raise PermissionError(f"sandbox: {event} is not allowed")
        elif event in ("os.remove", "os.rmdir", "os.rename", "os.mkdir", "os.chmod", "os.chown", "os.symlink",
                       "os.link", "os.truncate", "os.utime", "shutil.rmtree", "shutil.move", "os.replace"):
            for a in args:
                if isinstance(a, (str, bytes, os.PathLike)) and not inside(a):
                    raise PermissionError(f"sandbox: {event} outside the folder is not allowed")
    sys.addaudithook(_guard)
    layers.append("python-guard")
sys.stderr.write(MARKER + json.dumps({"layers": layers, "refused": []}) + "\n")
sys.stderr.flush()
del json, resource, cfg, program, layers, refused
sys.argv = ["program.py"]
with open("program.py", encoding="utf-8") as _f:
    _code = compile(_f.read(), "program.py", "exec")
exec(_code, {"__name__": "__main__", "__file__": "program.py", "__builtins__": __builtins__})
'''.replace("MARKER", repr(MARKER))


class SandboxUnavailable(CandorError):
    """The isolation model code needs is missing: the message names what and how to get it."""


@dataclass(frozen=True)
class SandboxLimits:
    timeout_s: float = 10.0  # wall clock; the whole PID namespace is killed after it
    cpu_s: int = 10  # RLIMIT_CPU, per process
    memory_mb: int = 1024  # RLIMIT_AS, per process
    file_mb: int = 16  # RLIMIT_FSIZE: largest file the program may write (stdout included)
    disk_mb: int = 64  # size of the /sandbox tmpfs: everything the program writes, together
    open_files: int = 64  # RLIMIT_NOFILE
    processes: int = 0  # RLIMIT_NPROC for uid 65534: 0 forbids fork and threads
    python_guard: bool = True  # the audit hook (clearer errors; not a boundary)
    unsafe: bool = False  # without working isolation, run anyway with limits and the guard only


@dataclass
class SandboxResult:
    status: str  # "passed" (exit 0), "failed" (non-zero exit or killed by a limit), "timeout"
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float
    layers: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def unsafe_requested(limits: SandboxLimits | None = None) -> bool:
    """The operator's explicit permission to run model code without isolation."""
    return env_flag(UNSAFE_ENV) or bool(limits and limits.unsafe)


# -- the seccomp filter -----------------------------------------------------------------------
DENIED_SYSCALLS = (
    "socket", "socketpair", "io_uring_setup", "io_uring_enter", "io_uring_register", "unshare", "setns",
    "mount", "umount2", "pivot_root", "chroot", "fsopen", "fsmount", "fsconfig", "fspick", "open_tree",
    "move_mount", "mount_setattr", "ptrace", "process_vm_readv", "process_vm_writev", "bpf",
    "perf_event_open",
    "userfaultfd", "keyctl", "add_key", "request_key", "kexec_load", "kexec_file_load", "init_module",
    "finit_module", "delete_module", "open_by_handle_at", "name_to_handle_at", "syslog", "acct", "swapon",
    "swapoff", "reboot", "quotactl",
)


class _ArgCmp(ctypes.Structure):  # struct scmp_arg_cmp
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]


@functools.cache
def seccomp_filter() -> bytes:
    """The BPF program bwrap loads (`--seccomp`), compiled by libseccomp for this machine's
    architecture (other architectures' system calls kill the process): the calls above fail with
    EPERM, clone with CLONE_NEWUSER too, and clone3 with ENOSYS (its flags cannot be inspected;
    the C library then falls back to clone)."""
    name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
    try:
        lib = ctypes.CDLL(name)
    except OSError as exc:
        message = f"libseccomp is missing (Debian: apt-get install libseccomp2): {exc}"
        raise SandboxUnavailable(message) from None
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
                                           ctypes.c_void_p]
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    allow, eperm, enosys = 0x7FFF0000, 0x00050000 | 1, 0x00050000 | 38  # SCMP_ACT_ALLOW, SCMP_ACT_ERRNO(..)
    ctx = lib.seccomp_init(allow)
    if not ctx:
        raise SandboxUnavailable("libseccomp could not start a filter")
    try:
        def deny(syscall: str, action: int, cmp: _ArgCmp | None = None) -> None:
            nr = lib.seccomp_syscall_resolve_name(syscall.encode())
            if nr == -1:  # not a system call on this architecture
                return
            args = (1, ctypes.byref(cmp)) if cmp else (0, None)
            rc = lib.seccomp_rule_add_array(ctx, action, nr, *args)
            if rc != 0:
                raise SandboxUnavailable(f"libseccomp refused the rule for {syscall}: {os.strerror(-rc)}")

        for syscall in DENIED_SYSCALLS:
            deny(syscall, eperm)
        deny("clone", eperm, _ArgCmp(0, 7, 0x10000000, 0x10000000))  # SCMP_CMP_MASKED_EQ, CLONE_NEWUSER
        deny("clone3", enosys)
        with tempfile.TemporaryFile() as f:
            if lib.seccomp_export_bpf(ctx, f.fileno()) != 0:
                raise SandboxUnavailable("libseccomp could not export the filter")
            f.seek(0)
            return f.read()
    finally:
        lib.seccomp_release(ctx)


# -- the container ----------------------------------------------------------------------------
def _python() -> tuple[str, list[str]]:
    """The interpreter to run inside (the real file behind a virtualenv's link) and the folders
    it needs, read-only; site-packages are not used (`-I -S`)."""
    exe = os.path.realpath(sys.executable)
    roots = {os.path.realpath(p) for p in (sys.base_prefix, sys.base_exec_prefix, os.path.dirname(
        os.path.dirname(exe)))}
    roots = {r for r in roots if not any(r != o and r.startswith(o + os.sep) for o in roots)}
    return exe, sorted(r for r in roots if r != "/usr" and not r.startswith("/usr/"))


def _bwrap_args(bwrap: str, python: str, binds: list[str], disk_mb: int, seccomp_fd: int,
                info_fd: int) -> list[str]:
    args = [bwrap, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--die-with-parent", "--new-session", "--hostname", "sandbox", "--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    parents = {os.path.dirname(p) for b in binds for p in _ancestors(b)} - {"/"}
    for parent in sorted(parents, key=lambda p: p.count("/")):  # else bwrap copies the host's modes (/root 0700)
        args += ["--perms", "0755", "--dir", parent]
    for path in binds:
        args += ["--ro-bind", path, path]
    args += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size", str(disk_mb * 2**20),
             "--tmpfs", WORKDIR, "--chdir", WORKDIR, "--clearenv", "--setenv", "PATH", "/usr/bin:/bin",
             "--setenv", "HOME", WORKDIR, "--setenv", "TMPDIR", WORKDIR, "--setenv", "LANG", "C.UTF-8",
             "--seccomp", str(seccomp_fd), "--info-fd", str(info_fd)]
    if os.geteuid() == 0:  # the launcher drops to 65534 itself (a user namespace would map it to root)
        args += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        args += ["--unshare-user", "--uid", str(NOBODY), "--gid", str(NOBODY), "--disable-userns"]
    return args + ["--", python, "-I", "-S", "-B"]


def _ancestors(path: str) -> list[str]:
    """'/a/b/c' -> ['/a/b/c', '/a/b', '/a']"""
    out = []
    while path not in ("/", ""):
        out.append(path)
        path = os.path.dirname(path)
    return out


def _hidden(binds: list[str]) -> list[str]:
    """Host folders that must not exist inside (where sockets, secrets and other users' files live)."""
    candidates = {"/tmp", "/run", "/var", "/home", "/etc", "/root", "/srv", "/mnt", "/media", "/opt",
                  os.path.realpath(tempfile.gettempdir()), os.path.expanduser("~")}
    return sorted(p for p in candidates if p != "/" and not any(b == p or b.startswith(p.rstrip("/") + "/")
                                                                    for b in binds))


def _memfd(name: str, data: bytes) -> int:
    fd = os.memfd_create(name)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _read_info(fd: int, deadline: float) -> dict:
    """bwrap's --info-fd JSON ({"child-pid": …}); {} when it never comes."""
    data = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
        try:
            return json.loads(data)
        except ValueError:
            continue
    return {}


def _pidfd_of_init(info: dict, bwrap_pid: int) -> int | None:
    """A pidfd of the namespace's init, checked to be bwrap's child (not a recycled pid)."""
    pid = info.get("child-pid")
    if not isinstance(pid, int):
        return None
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return None
    try:
        with open(f"/proc/{pid}/stat") as f:
            ppid = int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        ppid = -1
    if ppid != bwrap_pid:
        os.close(pidfd)
        return None
    return pidfd


def _tail(f, limit: int = 4000) -> str:
    f.seek(0, os.SEEK_END)
    f.seek(max(0, f.tell() - limit))
    return f.read().decode("utf-8", "replace")


def _report(err) -> tuple[dict | None, str]:
    """The launcher's report (written before the program starts, so near the top of stderr) and
    the tail of stderr without it."""
    err.seek(0)
    head = err.read(65536).decode("utf-8", "replace")
    report = None
    if MARKER in head:
        line = head.partition(MARKER)[2].partition("\n")[0]
        try:
            report = json.loads(line)
        except ValueError:
            pass
    tail = _tail(err, 8000)
    if MARKER in tail:
        before, _, after = tail.partition(MARKER)
        tail = before + after.partition("\n")[2]
    return report, tail[-4000:]


def _run(source: str, limits: SandboxLimits, isolated: bool) -> tuple[SandboxResult, list[str]]:
    """One run; also returns what the launcher refused (isolated runs only)."""
    started = time.perf_counter()
    rlimits = {"RLIMIT_AS": limits.memory_mb * 2**20, "RLIMIT_CPU": limits.cpu_s,
               "RLIMIT_FSIZE": limits.file_mb * 2**20, "RLIMIT_NOFILE": limits.open_files,
               "RLIMIT_NPROC": limits.processes, "RLIMIT_CORE": 0}
    program_fd = _memfd("candor-program", source.encode("utf-8"))
    fds = [program_fd]
    folder = None
    info_r = pidfd = None
    try:
        if isolated:
            bwrap = shutil.which("bwrap")
            if not bwrap:
                raise SandboxUnavailable(f"bubblewrap (bwrap) is not on PATH: {INSTALL_HINT}")
            seccomp_fd = _memfd("candor-seccomp", seccomp_filter())
            info_r, info_w = os.pipe()
            fds += [seccomp_fd, info_w]
            python, binds = _python()
            command = _bwrap_args(bwrap, python, binds, limits.disk_mb, seccomp_fd, info_w)
            cwd, env = "/", {"LANG": "C.UTF-8"}
            host_ns = {k: os.readlink(f"/proc/self/ns/{k}") for k in ("pid", "net", "mnt", "ipc", "uts")}
            hidden = _hidden(binds)
        else:
            folder = os.path.realpath(tempfile.mkdtemp(prefix="candor-sandbox-"))
            command, cwd, host_ns, hidden = [sys.executable, "-I", "-S", "-B"], folder, {}, []
            env = {"PATH": "/usr/bin:/bin", "HOME": folder, "TMPDIR": folder, "LANG": "C.UTF-8"}
        cfg = {"uid": NOBODY, "drop": isolated and os.geteuid() == 0, "isolated": isolated, "rlimits": rlimits,
               "program_fd": program_fd, "caller_uid": os.geteuid(), "host_ns": host_ns, "hidden": hidden,
               "python_guard": limits.python_guard}
        timed_out = False
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(command + ["-c", LAUNCHER, json.dumps(cfg)], cwd=cwd, env=env,
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=err, pass_fds=fds,
                                    start_new_session=True)
            for fd in fds[1:]:
                os.close(fd)
            fds = fds[:1]
            try:
                if info_r is not None:
                    info = _read_info(info_r, time.monotonic() + min(limits.timeout_s, 10.0))
                    pidfd = _pidfd_of_init(info, proc.pid)
                proc.wait(timeout=max(0.0, limits.timeout_s - (time.perf_counter() - started)))
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                if pidfd is not None:  # killing the namespace's init kills everything in it
                    try:
                        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                    except OSError:
                        pass
                    select.select([pidfd], [], [], 10.0)  # readable once init, and so all of it, is gone
                    try:
                        proc.wait(timeout=5.0)  # bwrap reaps init and exits
                    except subprocess.TimeoutExpired:
                        pass
                try:
                    os.killpg(proc.pid, signal.SIGKILL)  # bwrap itself; without a namespace, the session
                except (ProcessLookupError, PermissionError):
                    pass
                proc.wait()
            (report, stderr), stdout = _report(err), _tail(out)
        if report is None:
            if isolated and not timed_out:
                raise SandboxUnavailable(f"the sandbox did not start (bwrap exit {proc.returncode}): "
                                         f"{stderr.strip()[-500:] or 'no message'}")
            report = {}
        code = proc.returncode
        if isolated and code is not None and code > 128:  # bwrap reports a signal as 128 + its number
            code = -(code - 128)
        status = "timeout" if timed_out or code == -signal.SIGXCPU else ("passed" if code == 0 else "failed")
        layers = (["bubblewrap"] if isolated else ["UNSAFE: no isolation"]) + report.get("layers", [])
        return (SandboxResult(status, code, stdout, stderr, round(time.perf_counter() - started, 3), layers),
                report.get("refused", []))
    finally:
        for fd in fds + [x for x in (info_r, pidfd) if x is not None]:
            os.close(fd)
        if folder:
            shutil.rmtree(folder, ignore_errors=True)


def _refusal(problems: list[str]) -> SandboxUnavailable:
    return SandboxUnavailable(
        "refusing to run model-written code: the sandbox's isolation did not take effect (missing: "
        f"{'; '.join(problems)}). Fix it ({INSTALL_HINT}; bwrap must be able to create namespaces) or, on a "
        f"machine where running untrusted code is acceptable, pass --unsafe-sandbox or set {UNSAFE_ENV}=1.")


_probed: dict[tuple, list[str]] = {}


def isolation_problems(refresh: bool = False) -> list[str]:
    """What keeps the container from working here ([] when it works), found by running a probe
    in it once per bwrap binary and user."""
    key = (shutil.which("bwrap"), os.geteuid())
    if refresh or key not in _probed:
        try:
            result, refused = _run("pass", SandboxLimits(timeout_s=30, cpu_s=10), isolated=True)
            failed = f"the probe {result.status}: {result.stderr.strip()[-300:]}"
            problems = refused or ([] if result.status == "passed" else [failed])
        except SandboxUnavailable as exc:
            problems = [exc.message]
        _probed[key] = problems
    return list(_probed[key])


def require_isolation(unsafe: bool = False) -> str:
    """'isolated', or 'UNSAFE' when isolation is missing and the operator allowed that;
    otherwise raises SandboxUnavailable."""
    problems = isolation_problems()
    if not problems:
        return "isolated"
    if unsafe or unsafe_requested():
        return "UNSAFE"
    raise _refusal(problems)


def run_python(source: str, limits: SandboxLimits = SandboxLimits()) -> SandboxResult:
    """Run `source` as a Python program inside the sandbox and report how it ended. Raises
    SandboxUnavailable when the isolation is missing, unless unsafe running was requested."""
    if require_isolation(unsafe_requested(limits)) == "UNSAFE":
        return _run(source, limits, isolated=False)[0]
    result, refused = _run(source, limits, isolated=True)
    if refused:
        raise _refusal(refused)
    return result
