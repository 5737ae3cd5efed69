import os

import pytest

from candor.engine.weights import ensure_weights, weights_path
from candor.errors import WeightsError
from candor.registry import ModelEntry, load_registry


def test_packaged_model_is_assembled_once_with_progress_and_verified(tmp_path, monkeypatch):
    monkeypatch.setenv("CANDOR_HOME", str(tmp_path))
    entry = load_registry().get("candor-instant")
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
