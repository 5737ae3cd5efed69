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
