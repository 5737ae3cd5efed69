"""The HumanEval sandbox really confines model-written code."""

from __future__ import annotations

import glob
import os
import tempfile

import pytest

from candor.evals.sandbox import SandboxLimits, run_python

FAST = SandboxLimits(timeout_s=1.5, cpu_s=2)
ESCAPE = os.path.join(tempfile.gettempdir(), "candor-sandbox-escape-test.txt")


def leftovers() -> set[str]:
    return set(glob.glob(os.path.join(tempfile.gettempdir(), "candor-sandbox-*")))


@pytest.fixture(autouse=True)
def clean():
    if os.path.exists(ESCAPE):
        os.remove(ESCAPE)
    before = leftovers()
    yield
    assert leftovers() == before, "the sandbox left its folder behind"
    assert not os.path.exists(ESCAPE)


def test_a_passing_program_and_a_failing_one():
    ok = run_python("import math\nassert math.sqrt(16) == 4\nprint('fine')", FAST)
    assert ok.status == "passed" and ok.stdout == "fine\n" and ok.returncode == 0
    bad = run_python("assert 1 == 2, 'nope'", FAST)
    assert bad.status == "failed" and "AssertionError: nope" in bad.stderr


def test_an_infinite_loop_is_killed():
    result = run_python("while True:\n    pass\n", FAST)
    assert result.status == "timeout" and result.seconds < 5


def test_writing_inside_the_folder_works_and_the_folder_is_deleted():
    result = run_python("import os\nopen('notes.txt', 'w').write('hi')\nprint(os.getcwd())", FAST)
    assert result.status == "passed"
    assert not os.path.exists(result.stdout.strip())


@pytest.mark.parametrize("guard", [True, False], ids=["all-layers", "kernel-only"])
def test_writing_outside_the_folder_fails(guard):
    limits = SandboxLimits(timeout_s=3, python_guard=guard)
    if not guard and not any(layer.startswith("landlock") for layer in run_python("pass", limits).layers):
        pytest.skip("no Landlock here: only the Python guard stops writes")
    result = run_python(f"open({ESCAPE!r}, 'w').write('escaped')", limits)
    assert result.status == "failed" and "PermissionError" in result.stderr
    result = run_python("import os\nos.remove('/etc/hostname')", limits)
    assert result.status == "failed"


@pytest.mark.parametrize("guard", [True, False], ids=["all-layers", "kernel-only"])
def test_opening_a_socket_fails(guard):
    limits = SandboxLimits(timeout_s=3, python_guard=guard)
    layers = run_python("pass", limits).layers
    if not guard and not ({"netns", "userns+netns"} & set(layers) or any(x.startswith("landlock") for x in layers)):
        pytest.skip("no network namespace or Landlock here: only the Python guard stops sockets")
    code = "import socket\ns = socket.create_connection(('127.0.0.1', 8000), timeout=1)\nprint('connected')"
    result = run_python(code, limits)
    assert result.status == "failed" and "connected" not in result.stdout
    assert "Error" in result.stderr


def test_secrets_outside_are_unreadable_and_memory_is_bounded(tmp_path):
    secret = tmp_path / "api-key"
    secret.write_text("sk-secret")
    limits = SandboxLimits(timeout_s=3, memory_mb=256)
    if not any(layer.startswith("landlock") for layer in run_python("pass", limits).layers):
        pytest.skip("no Landlock here: reads are not confined")
    result = run_python(f"print(open({str(secret)!r}).read())", limits)
    assert result.status == "failed" and "sk-secret" not in result.stdout
    assert run_python("x = bytearray(1024 * 1024 * 1024)", limits).status == "failed"


def test_no_new_processes():
    result = run_python("import subprocess\nsubprocess.run(['true'])", FAST)
    assert result.status == "failed" and "not allowed" in result.stderr
