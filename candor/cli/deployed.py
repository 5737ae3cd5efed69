"""`candor eval --deployed`: the evaluations run against the deployed system — a local `candor
serve` with moderation on — rather than the raw model, so the report card can show both.

The server gets its own temporary database (its moderation records stay out of the user's store),
a one-off API key and CANDOR_MODERATION=block unless the caller's environment sets moderation; it
is stopped when the runs end.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

from candor.errors import CandorError

SUFFIX = "@deployed"  # added to the model's label: runs land in OUT/MODEL@deployed/TASK


def _die_with_parent() -> None:
    """In the server's process: ask Linux to stop it when the eval process dies, however it dies."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the finally below still stops it on any orderly exit


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def deployed_server(models_file: str | None = None, timeout_s: float = 300.0) -> Iterator[tuple[str, str]]:
    """(base URL, API key) of a moderated local server for the block's duration."""
    import httpx

    from candor.moderation.policy import modes_from_env

    key = "sk-deployed-" + secrets.token_hex(12)
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="candor-deployed-") as folder:
        child_env = {**os.environ, "CANDOR_DATABASE_URL": f"sqlite:///{folder}/deployed.db"}
        if not modes_from_env().any:  # moderation is the point: on, unless the caller chose modes
            child_env["CANDOR_MODERATION"] = "block"
        command = [sys.executable, "-m", "candor", "serve", "--port", str(port), "--api-key", key]
        if models_file:
            command += ["--models-file", models_file]
        log = open(os.path.join(folder, "server.log"), "w+")  # noqa: SIM115 - read back on failure
        proc = subprocess.Popen(command, env=child_env, stdout=log, stderr=subprocess.STDOUT,
                                preexec_fn=_die_with_parent)  # noqa: PLW1509 - no threads yet
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                if proc.poll() is not None:
                    log.seek(0)
                    raise CandorError(f"the deployed server exited at start: {log.read()[-2000:]}")
                try:
                    if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise CandorError(f"the deployed server did not answer /health within {timeout_s:.0f} s")
                time.sleep(0.3)
            yield url, key
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
