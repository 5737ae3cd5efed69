"""The HumanEval sandbox really confines model-written code, and refuses to run it when it cannot.

The isolation tests use real listeners (TCP on 127.0.0.1, a Unix socket in a folder outside the
sandbox) and look for real processes left behind; the controls run the same programs without the
container and show that the tests would notice an escape.
"""

from __future__ import annotations

import glob
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import uuid

import pytest

from candor.evals import sandbox
from candor.evals.sandbox import SandboxLimits, SandboxUnavailable, run_python

FAST = SandboxLimits(timeout_s=5, cpu_s=3)
ESCAPE = os.path.join(tempfile.gettempdir(), "candor-sandbox-escape-test.txt")

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None,
                                 reason="Debian's bubblewrap is not installed (scripts/test-services installs it)")


def leftovers() -> set[str]:
    return set(glob.glob(os.path.join(tempfile.gettempdir(), "candor-sandbox-*")))


@pytest.fixture(autouse=True)
def clean(monkeypatch):
    monkeypatch.delenv(sandbox.UNSAFE_ENV, raising=False)
    if os.path.exists(ESCAPE):
        os.remove(ESCAPE)
    before = leftovers()
    yield
    assert leftovers() == before, "the sandbox left its folder behind"
    assert not os.path.exists(ESCAPE)


@pytest.fixture
def unsafe_only(monkeypatch):
    """As on a machine where the isolation does not work: only the explicit unsafe flag runs code."""
    monkeypatch.setattr(sandbox, "isolation_problems", lambda refresh=False: ["(test) no isolation"])


def processes_with(token: str) -> list[int]:
    found = []
    for path in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            with open(path, "rb") as f:
                if token.encode() in f.read():
                    found.append(int(path.split("/")[2]))
        except OSError:
            pass
    return found


def processes_in_pid_namespace(ns: str) -> list[int]:
    found = []
    for path in glob.glob("/proc/[0-9]*/ns/pid"):
        try:
            if os.readlink(path) == ns:
                found.append(int(path.split("/")[2]))
        except OSError:
            pass
    return found


# -- listeners ----------------------------------------------------------------------------------
CLIENT = r'''
import socket, sys
port, path = int(sys.argv[1]), sys.argv[2]
for family, address in ((socket.AF_INET, ("127.0.0.1", port)), (socket.AF_UNIX, path)):
    try:
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(3)
        s.connect(address)
        s.sendall(b"escaped")
        print("connected", family.name, flush=True)
    except OSError as exc:
        print("blocked", family.name, type(exc).__name__, flush=True)
'''

# A fresh interpreter started through _posixsubprocess.fork_exec: no audit event, so the Python
# guard never sees it; only the kernel-level isolation stops what it does.
FORK_EXEC = r'''
import _posixsubprocess, os, sys
args = [os.fsencode(a) for a in (sys.executable, "-c", CLIENT, PORT, PATH)]
r, w = os.pipe()
common = (args, [args[0]], True, (), None, None, -1, -1, -1, -1, -1, -1, r, w, True, False, -1, None, None, None, -1,
          None)
try:
    pid = _posixsubprocess.fork_exec(*common, True)
except TypeError:  # Python versions without the allow_vfork argument
    pid = _posixsubprocess.fork_exec(*common)
os.close(w)
assert not os.read(r, 1000), "exec failed"
print("spawned", flush=True)
os.waitpid(pid, 0)
'''


@pytest.fixture
def listeners():
    """A TCP listener on 127.0.0.1 and a Unix listener outside any sandbox folder; `arrived()`
    accepts what reached them."""
    folder = tempfile.mkdtemp(prefix="candor-listener-")
    os.chmod(folder, 0o777)  # an unprivileged program could connect if it could see the socket
    tcp = socket.create_server(("127.0.0.1", 0))
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    path = os.path.join(folder, "service.sock")
    unix.bind(path)
    os.chmod(path, 0o777)
    unix.listen()

    def arrived(wait: float = 0.5) -> list[str]:
        got = []
        ready, _, _ = select.select([tcp, unix], [], [], wait)
        for server in ready:
            conn, _ = server.accept()
            conn.close()
            got.append("tcp" if server is tcp else "unix")
        return sorted(got)

    try:
        yield tcp.getsockname()[1], path, arrived
    finally:
        tcp.close()
        unix.close()
        shutil.rmtree(folder, ignore_errors=True)


def client_program(port: int, path: str, fresh_interpreter: bool) -> str:
    if fresh_interpreter:
        return f"CLIENT = {CLIENT!r}\nPORT, PATH = {str(port)!r}, {path!r}\n{FORK_EXEC}"
    return f"import sys\nsys.argv = ['client', {str(port)!r}, {path!r}]\n{CLIENT}"


@needs_bwrap
@pytest.mark.parametrize("fresh_interpreter", [False, True], ids=["same-process", "fork_exec"])
@pytest.mark.parametrize("guard", [True, False], ids=["with-guard", "no-guard"])
def test_nothing_reaches_a_real_tcp_or_unix_listener(listeners, fresh_interpreter, guard):
    port, path, arrived = listeners
    limits = SandboxLimits(timeout_s=10, cpu_s=5, processes=8, python_guard=guard)
    result = run_python(client_program(port, path, fresh_interpreter), limits)
    assert arrived() == []
    if fresh_interpreter:
        assert "spawned" in result.stdout, result.stderr  # the fresh interpreter really ran
    assert result.stdout.count("blocked") == 2 and "connected" not in result.stdout, result.stdout + result.stderr


def test_control_the_listeners_see_an_unconfined_program(listeners, unsafe_only):
    """The same programs without the container do connect (so the test above would notice),
    the fresh interpreter even past the Python guard."""
    port, path, arrived = listeners
    subprocess.run([sys.executable, "-c", CLIENT, str(port), path], check=True, capture_output=True, timeout=30)
    assert arrived() == ["tcp", "unix"]
    limits = SandboxLimits(timeout_s=10, cpu_s=5, processes=8, python_guard=True, unsafe=True)
    result = run_python(client_program(port, path, fresh_interpreter=True), limits)
    assert "UNSAFE" in result.layers[0]
    assert arrived() == ["tcp", "unix"], result.stdout + result.stderr


# -- processes ----------------------------------------------------------------------------------
def survivor_program(token: str) -> str:
    return f'''
import os, sys, time
pid = os.fork()
if pid == 0:
    os.setsid()
    os.execv(sys.executable, [sys.executable, "-c", "import time; open('ready', 'w').close(); time.sleep(120)",
                              {token!r}])
while not os.path.exists("ready"):
    time.sleep(0.01)
print("survivor started", flush=True)
'''


@needs_bwrap
def test_a_setsid_child_does_not_outlive_the_call():
    token = f"candor-survivor-{uuid.uuid4().hex}"
    result = run_python(survivor_program(token), SandboxLimits(timeout_s=10, processes=4, python_guard=False))
    assert result.status == "passed" and "survivor started" in result.stdout, result.stderr
    assert processes_with(token) == []


def test_control_a_setsid_child_outlives_an_unconfined_run(unsafe_only):
    token = f"candor-survivor-{uuid.uuid4().hex}"
    limits = SandboxLimits(timeout_s=10, processes=4, python_guard=False, unsafe=True)
    try:
        result = run_python(survivor_program(token), limits)
        assert "survivor started" in result.stdout, result.stderr
        assert processes_with(token)  # what the test above checks for
    finally:
        for pid in processes_with(token):
            os.kill(pid, signal.SIGKILL)


FORK_BOMB = '''
import os, time
me = os.getpid()
print(os.readlink("/proc/self/ns/pid"), flush=True)
forked = limited = False
while True:
    try:
        child = os.fork()
    except OSError:
        if os.getpid() == me and not limited:
            print("process limit reached", flush=True)
            limited = True
        time.sleep(0.01)
        continue
    if child and os.getpid() == me and not forked:
        print("forked", flush=True)
        forked = True
'''


@needs_bwrap
def test_a_fork_bomb_is_contained_and_leaves_nothing_behind():
    result = run_python(FORK_BOMB, SandboxLimits(timeout_s=4, cpu_s=10, processes=32, python_guard=False))
    assert result.status == "timeout"
    assert "forked" in result.stdout, result.stdout + result.stderr
    assert "process limit reached" in result.stdout  # RLIMIT_NPROC held for the sandbox's user
    namespace = result.stdout.splitlines()[0]
    assert namespace.startswith("pid:[") and namespace != os.readlink("/proc/self/ns/pid")
    assert processes_in_pid_namespace(namespace) == []


# -- files --------------------------------------------------------------------------------------
@needs_bwrap
def test_a_passing_program_and_a_failing_one():
    ok = run_python("import math\nassert math.sqrt(16) == 4\nprint('fine')", FAST)
    assert ok.status == "passed" and ok.stdout == "fine\n" and ok.returncode == 0
    assert {"pidns", "netns", "seccomp", "no-capabilities", "RLIMIT_NPROC"} <= set(ok.layers)
    bad = run_python("assert 1 == 2, 'nope'", FAST)
    assert bad.status == "failed" and "AssertionError: nope" in bad.stderr
    noisy = run_python("import sys\nsys.stderr.write('x' * 200000 + 'end')\nsys.exit(2)", FAST)
    assert noisy.status == "failed" and noisy.returncode == 2 and noisy.stderr.endswith("xend")


@needs_bwrap
def test_an_infinite_loop_is_killed():
    assert run_python("while True:\n    pass\n", SandboxLimits(timeout_s=2, cpu_s=30)).status == "timeout"
    assert run_python("while True:\n    pass\n", SandboxLimits(timeout_s=30, cpu_s=1)).status == "timeout"


@needs_bwrap
def test_the_program_runs_as_nobody_without_capabilities():
    code = ("import os\nprint(os.getresuid(), os.getresgid(), os.getgroups())\n"
            "print([l for l in open('/proc/self/status') if l.startswith('CapEff')][0].split()[1])")
    ids, caps = run_python(code, FAST).stdout.splitlines()
    assert ids.startswith("(65534, 65534, 65534) (65534, 65534, 65534)") and caps == "0000000000000000"
    if os.geteuid() == 0:  # dropped to nobody with no groups (as another user, a user namespace keeps the caller's)
        assert ids.endswith(" []")


@needs_bwrap
def test_the_size_of_each_file_is_limited():
    code = "open('big', 'wb').write(b'x' * (2 * 1024 * 1024))"
    result = run_python(code, SandboxLimits(timeout_s=5, file_mb=1, python_guard=False))
    assert result.status == "failed" and "File too large" in result.stderr
    assert run_python(code, SandboxLimits(timeout_s=5, file_mb=4, python_guard=False)).status == "passed"


@needs_bwrap
def test_everything_written_together_is_limited():
    code = "for i in range(12):\n    open(f'part{i}', 'wb').write(b'x' * (1024 * 1024))"
    result = run_python(code, SandboxLimits(timeout_s=5, file_mb=16, disk_mb=4, python_guard=False))
    assert result.status == "failed" and "No space left on device" in result.stderr
    assert run_python(code, SandboxLimits(timeout_s=5, disk_mb=32, python_guard=False)).status == "passed"


@needs_bwrap
@pytest.mark.parametrize("guard", [True, False], ids=["with-guard", "no-guard"])
def test_writing_outside_the_folder_fails(guard):
    limits = SandboxLimits(timeout_s=5, python_guard=guard)
    result = run_python(f"open({ESCAPE!r}, 'w').write('escaped')", limits)
    assert result.status == "failed" and ("PermissionError" if guard else "FileNotFoundError") in result.stderr
    result = run_python("open('/usr/candor-escape', 'w').write('escaped')", limits)
    assert result.status == "failed" and ("PermissionError" if guard else "Read-only file system") in result.stderr
    assert not os.path.exists("/usr/candor-escape")
    result = run_python("open('notes.txt', 'w').write('hi')\nprint(open('notes.txt').read())", limits)
    assert result.status == "passed" and result.stdout == "hi\n"


@needs_bwrap
def test_host_files_are_invisible_and_memory_is_bounded(tmp_path):
    secret = tmp_path / "api-key"
    secret.write_text("sk-secret")
    secret.chmod(0o644)
    limits = SandboxLimits(timeout_s=5, memory_mb=256, python_guard=False)
    result = run_python(f"print(open({str(secret)!r}).read())", limits)
    assert result.status == "failed" and "FileNotFoundError" in result.stderr and "sk-secret" not in result.stdout
    assert run_python("import os\nprint(os.path.exists('/etc/passwd'), os.path.exists('/run'))",
                      limits).stdout == "False False\n"
    assert run_python("x = bytearray(1024 * 1024 * 1024)", limits).status == "failed"


# -- failing closed -----------------------------------------------------------------------------
def test_without_bubblewrap_it_refuses_unless_told_otherwise(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap here
    ran = tmp_path / "ran"
    code = f"open({str(ran)!r}, 'w').write('ran')"
    with pytest.raises(SandboxUnavailable) as refused:
        run_python(code, SandboxLimits(timeout_s=5, python_guard=False))
    assert "bubblewrap" in refused.value.message and sandbox.UNSAFE_ENV in refused.value.message
    assert not ran.exists()
    with pytest.raises(SandboxUnavailable):
        sandbox.require_isolation()

    result = run_python(code, SandboxLimits(timeout_s=5, python_guard=False, unsafe=True))
    assert result.status == "passed" and result.layers[0].startswith("UNSAFE") and ran.read_text() == "ran"
    ran.unlink()
    monkeypatch.setenv(sandbox.UNSAFE_ENV, "1")
    assert sandbox.require_isolation() == "UNSAFE"
    assert run_python(code, SandboxLimits(timeout_s=5, python_guard=False)).status == "passed" and ran.exists()


def test_a_bwrap_that_does_not_isolate_is_caught_before_the_program_runs(tmp_path, monkeypatch):
    fake = tmp_path / "bwrap"  # takes the arguments, ignores them and runs the command as it is
    fake.write_text('#!/bin/sh\nwhile [ "$1" != "--" ]; do shift; done\nshift\nexec "$@"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(sandbox, "seccomp_filter", lambda: b"")  # not needed: the fake ignores it
    ran = tmp_path / "ran"
    with pytest.raises(SandboxUnavailable) as refused:
        run_python(f"open({str(ran)!r}, 'w').write('ran')", SandboxLimits(timeout_s=10, python_guard=False))
    message = refused.value.message
    assert "a pid namespace of its own" in message and "a net namespace of its own" in message
    assert "a seccomp filter" in message and "host folders hidden" in message
    assert not ran.exists()
    assert sandbox.isolation_problems()  # the probe found the same


def test_the_unsafe_flag_of_candor_eval(monkeypatch):
    from click.testing import CliRunner

    from candor.cli.eval import eval_command

    monkeypatch.setenv(sandbox.UNSAFE_ENV, "0")
    assert not sandbox.unsafe_requested()
    assert CliRunner().invoke(eval_command, ["--unsafe-sandbox", "--list"]).exit_code == 0
    assert sandbox.unsafe_requested()
