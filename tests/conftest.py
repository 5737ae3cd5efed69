"""Shared fixtures. Tests keep Candor's files (the assembled model) in the repo's .candor/ folder,
set before anything is imported, so subprocesses started by tests use the same cache."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("CANDOR_HOME", str(ROOT / ".candor"))
# Each test session gets its own SQLite store; tests that need PostgreSQL ask for it.
os.environ["CANDOR_DATABASE_URL"] = "sqlite:///" + tempfile.mkdtemp(prefix="candor-test-") + "/candor.db"
os.environ.pop("CANDOR_MODELS_FILE", None)
os.environ.pop("CANDOR_DEFAULT_MODEL", None)

from candor.engine.weights import ensure_weights
from candor.registry import load_registry


@pytest.fixture(scope="session")
def model_path() -> Path:
    """The embedded default GGUF, assembled once into the test cache."""
    return ensure_weights(load_registry().get("candor-instant"))


@pytest.fixture(scope="session")
def engine(model_path):
    """The real embedded model with a small context window (fast to allocate)."""
    from candor.engine.llama import LlamaConfig, LlamaEngine

    eng = LlamaEngine("candor-instant", LlamaConfig(model_path=model_path, context_window=2048))
    yield eng


@pytest.fixture(scope="session")
def candor_bin() -> list[str]:
    """Command prefix that runs the CLI from this interpreter's environment."""
    return [sys.executable, "-m", "candor"]


@pytest.fixture(scope="module")
def client(server):
    """The official anthropic SDK pointed at the module's `server` fixture."""
    import anthropic
    from test_api import KEY

    return anthropic.Anthropic(api_key=KEY, base_url=server, max_retries=0)


@pytest.fixture(scope="module")
def oai(server):
    """The official openai SDK pointed at the module's `server` fixture."""
    import openai
    from test_api import KEY

    return openai.OpenAI(api_key=KEY, base_url=f"{server}/v1", max_retries=0)


@pytest.fixture
def local_app(tmp_path):
    """Make an in-process app on a fresh SQLite store, with bootstrap key "sk-test-key", and a
    TestClient on it (Host 127.0.0.1). No server process; a model loads only if a test generates."""
    from fastapi.testclient import TestClient

    from candor.api.app import create_app
    from candor.store import Store

    opened = []

    def make(**options):
        store = Store(f"sqlite:///{tmp_path / f'app{len(opened)}.db'}")
        store.upgrade()
        client = TestClient(create_app(keys=["sk-test-key"], store=store, **options), base_url="http://127.0.0.1")
        client.__enter__()
        opened.append((client, store))
        return client, store

    yield make
    for client, store in opened:
        client.__exit__(None, None, None)
        store.dispose()


# In CI (CI=true, as .ci/run is run) a service that is missing fails its tests instead of skipping
# them, so a broken install step cannot pass quietly; on a developer's machine they are skipped.
SERVICES = ("PostgreSQL", "redis-server", "chromium", "bubblewrap")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") and report.skipped and any(s in str(report.longrepr) for s in SERVICES):
        report.outcome = "failed"
        report.longrepr = f"in CI a missing service is a failure, not a skip: {report.longrepr}"
