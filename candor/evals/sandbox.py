"""Running model-written Python: a separate process, locked down before the code starts.

`run_python(source, limits)` writes the program into a fresh temporary folder, starts a new
interpreter there (`python -I -S -B`: no site-packages, no environment, no bytecode files) in its
own session, and before the program runs a small launcher applies, in order:

1. no network: a new, empty network namespace (`unshare(CLONE_NEWNET)`; as a normal user inside
   a new user namespace), where no address but a down loopback exists;
2. resource limits: address space (`memory_mb`), CPU seconds, file size, open files, processes;
3. Landlock (Linux 5.13+, enforced by the kernel, kept across exec): files may be written,
   created or removed only inside the folder; files may be read only there and in the Python
   installation and /usr, /lib, /dev (so secrets elsewhere, such as API keys, stay unreadable);
   TCP bind/connect are denied (ABI 4+); signals to processes outside are blocked (ABI 6+);
4. a Python audit hook (`python_guard`) that refuses sockets, subprocesses, fork/exec, ctypes
   and writes outside the folder: the only layer where the kernel offers none of the above, and
   it is *not* a security boundary on its own (code that reaches C can get around it).

A wall-clock timeout kills the whole process group; the folder is deleted afterwards, whatever
happened, so nothing is left behind. Which layers took effect is reported with every result
(`layers`), so a run on a machine without Landlock or namespaces says so.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field

LAUNCHER = r'''
import json, os, sys, resource, ctypes
cfg = json.loads(sys.argv[1])
folder = cfg["folder"]
layers = []
libc = ctypes.CDLL(None, use_errno=True)
if not cfg["network"]:
    if libc.unshare(0x40000000) == 0:
        layers.append("netns")
    else:
        uid, gid = os.getuid(), os.getgid()
        if libc.unshare(0x10000000 | 0x40000000) == 0:
            for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
                try:
                    with open(f"/proc/self/{name}", "w") as f:
                        f.write(text)
                except OSError:
                    pass
            layers.append("userns+netns")
for name, value in cfg["rlimits"].items():
    try:
        resource.setrlimit(getattr(resource, name), (value, value if name != "RLIMIT_CPU" else value + 1))
        layers.append(name)
    except (ValueError, OSError):
        pass
syscall = libc.syscall
syscall.restype = ctypes.c_long
abi = syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
if abi >= 1 and cfg["landlock"]:
    class Ruleset(ctypes.Structure):
        _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]
    class Beneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed", ctypes.c_uint64), ("fd", ctypes.c_int32)]
    write = (1 << 1) | (1 << 4) | (1 << 5) | sum(1 << b for b in range(6, 13))
    if abi >= 2: write |= 1 << 13
    if abi >= 3: write |= 1 << 14
    read = (1 << 2) | (1 << 3)
    handled = write | read
    net = 3 if abi >= 4 else 0
    scoped = 3 if abi >= 6 else 0
    size = 24 if abi >= 6 else 16
    ruleset = Ruleset(handled, net, scoped)
    rfd = syscall(444, ctypes.byref(ruleset), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if rfd >= 0:
        rules = [(folder, handled)] + [(p, read) for p in cfg["readable"]] + [("/dev/null", (1 << 1) | (1 << 2))]
        for path, allowed in rules:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            if not os.path.isdir(path):
                allowed &= (1 << 1) | (1 << 2) | (1 << 14)
            rule = Beneath(allowed & handled, fd)
            syscall(445, ctypes.c_int(rfd), ctypes.c_int(1), ctypes.byref(rule), ctypes.c_uint32(0))
            os.close(fd)
        libc.prctl(38, 1, 0, 0, 0)
        if syscall(446, ctypes.c_int(rfd), ctypes.c_uint32(0)) == 0:
            layers.append(f"landlock-abi{abi}")
        os.close(rfd)
if cfg["python_guard"]:
    def _guard(event, args, _folder=folder + os.sep, _real=os.path.realpath, _join=os.path.join):
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
sys.stderr.write("\x00candor-sandbox " + json.dumps(layers) + "\n")
sys.stderr.flush()
del json, resource, ctypes, libc, syscall, cfg, folder
sys.argv = ["program.py"]
with open("program.py", encoding="utf-8") as _f:
    _code = compile(_f.read(), "program.py", "exec")
exec(_code, {"__name__": "__main__", "__file__": "program.py", "__builtins__": __builtins__})
'''


@dataclass(frozen=True)
class SandboxLimits:
    timeout_s: float = 10.0  # wall clock; the process group is killed after it
    cpu_s: int = 10  # RLIMIT_CPU
    memory_mb: int = 1024  # RLIMIT_AS
    file_mb: int = 16  # RLIMIT_FSIZE: largest file the program may write (stdout included)
    open_files: int = 64  # RLIMIT_NOFILE
    processes: int = 0  # RLIMIT_NPROC: it counts all the user's processes, so 0 forbids fork and threads
    network: bool = False
    landlock: bool = True
    python_guard: bool = True


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


def _readable_roots() -> list[str]:
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable)),
             "/usr", "/lib", "/lib64", "/bin", "/dev/urandom", "/dev/random", "/dev/zero"}
    return sorted(r for r in roots if os.path.exists(r))


def _tail(path: str, limit: int = 4000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - limit))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def run_python(source: str, limits: SandboxLimits = SandboxLimits()) -> SandboxResult:
    """Run `source` as a Python program inside the sandbox and report how it ended."""
    folder = os.path.realpath(tempfile.mkdtemp(prefix="candor-sandbox-"))
    outputs = tempfile.mkdtemp(prefix="candor-sandbox-out-")  # outside the folder the program may touch
    started = time.perf_counter()
    try:
        with open(os.path.join(folder, "program.py"), "w", encoding="utf-8") as f:
            f.write(source)
        cfg = {"folder": folder, "network": limits.network, "landlock": limits.landlock,
               "python_guard": limits.python_guard, "readable": _readable_roots(), "rlimits": {
                   "RLIMIT_AS": limits.memory_mb * 2**20, "RLIMIT_CPU": limits.cpu_s,
                   "RLIMIT_FSIZE": limits.file_mb * 2**20, "RLIMIT_NOFILE": limits.open_files,
                   "RLIMIT_NPROC": limits.processes, "RLIMIT_CORE": 0}}
        env = {"PATH": "/usr/bin:/bin", "HOME": folder, "TMPDIR": folder, "LANG": "C.UTF-8"}
        out_path, err_path = os.path.join(outputs, "stdout"), os.path.join(outputs, "stderr")
        timed_out = False
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            proc = subprocess.Popen([sys.executable, "-I", "-S", "-B", "-c", LAUNCHER, json.dumps(cfg)],
                                    cwd=folder, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    start_new_session=True)
            try:
                proc.wait(timeout=limits.timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)  # the program and anything it started
                except (ProcessLookupError, PermissionError):
                    pass
                proc.wait()
        stderr = _tail(err_path, 64000)
        layers: list[str] = []
        marker = "\x00candor-sandbox "
        if marker in stderr:
            head, _, rest = stderr.partition(marker)
            line, _, rest = rest.partition("\n")
            layers = json.loads(line)
            stderr = head + rest
        code = proc.returncode
        cpu_killed = code in (-signal.SIGXCPU, -signal.SIGKILL) and not timed_out
        status = "timeout" if timed_out or (cpu_killed and code == -signal.SIGXCPU) else (
            "passed" if code == 0 else "failed")
        return SandboxResult(status, code, _tail(out_path), stderr[-4000:], round(time.perf_counter() - started, 3),
                             layers)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(outputs, ignore_errors=True)
