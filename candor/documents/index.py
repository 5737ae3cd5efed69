"""Retrieval over one document's passages: BM25 (bm25s) and MiniLM embeddings, fused by rank.

Indexes are cached by the document's content hash: in memory (the last few documents) and, for
the embeddings, on disk under CANDOR_HOME/documents/embeddings, written atomically. A second
question about the same text (same upload, same pasted document, even after a restart) reuses
the passage vectors instead of embedding again. When the embeddings package is not installed,
retrieval is BM25 alone and says so (`PassageIndex.dense` is False).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from candor.config import settings
from candor.documents.extract import Document
from candor.documents.passages import TARGET_CHARS, Passage, split

log = logging.getLogger(__name__)
RRF_K = 60  # reciprocal rank fusion's usual constant
VERSION = f"v2-{TARGET_CHARS}"  # part of the cache key: a different passage split is a different index


def dense_encoder():
    """The shared MiniLM encoder, or None when it cannot be loaded (retrieval is then BM25 alone)."""
    try:
        from candor.embeddings import encoder

        return encoder()
    except Exception as exc:  # noqa: BLE001 - the package or torch missing: say so, keep BM25
        log.warning("dense retrieval unavailable, using BM25 only: %s", exc)
        return None


@dataclass
class Stats:
    built: int = 0  # indexes built (passages split, BM25 indexed)
    embedded: int = 0  # passages embedded (not counting vectors read back from disk)
    hits: int = 0  # questions answered from a cached index


class PassageIndex:
    def __init__(self, doc: Document, cache_dir: Path | None = None, memo: VectorMemo | None = None):
        import bm25s

        self.doc = doc
        self.key = f"{doc.sha256}-{VERSION}"
        self.passages: list[Passage] = split(doc)
        self.texts = [doc.text[p.start:p.end] for p in self.passages]
        self._bm25 = bm25s.BM25()
        self._bm25.index(bm25s.tokenize(self.texts, stopwords="en", show_progress=False), show_progress=False)
        self._vectors: np.ndarray | None = None
        self._cache_dir = cache_dir
        self._memo = memo
        self._lock = threading.Lock()
        self.dense = True

    def text(self, passage: Passage) -> str:
        return self.texts[passage.index]

    def vectors(self, stats: Stats | None = None) -> np.ndarray | None:
        """Unit vectors of every passage: from memory, from disk, or embedded now (once)."""
        with self._lock:
            if self._vectors is not None or not self.dense:
                return self._vectors
            path = self._cache_dir / f"{self.key}.npy" if self._cache_dir else None
            if path is not None and path.is_file():
                try:
                    vectors = np.load(path)
                    if vectors.shape[0] == len(self.passages):
                        self._vectors = vectors
                        return vectors
                except (OSError, ValueError):
                    log.warning("unreadable embeddings cache %s: embedding again", path)
            enc = dense_encoder()
            if enc is None:
                self.dense = False
                return None
            if self._memo is None:
                self._vectors = enc.encode(self.texts)
                embedded = len(self.texts)
            else:
                self._vectors, embedded = self._memo.encode(enc, self.texts)
            if stats is not None:
                stats.embedded += embedded
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
                np.save(tmp, self._vectors)
                os.replace(tmp, path)
            return self._vectors

    def bm25_scores(self, query: str) -> np.ndarray:
        import bm25s

        tokens = bm25s.tokenize([query], stopwords="en", return_ids=False, show_progress=False)[0]
        if not tokens:
            return np.zeros(len(self.passages), dtype=np.float32)
        return np.asarray(self._bm25.get_scores(tokens), dtype=np.float32)

    def search(self, query: str, stats: Stats | None = None) -> list[tuple[int, float]]:
        """Every passage as (index, fused score), best first: reciprocal rank fusion of BM25 (only
        passages sharing a word with the query) and cosine similarity (all passages)."""
        fused = np.zeros(len(self.passages), dtype=np.float64)
        lexical = self.bm25_scores(query)
        order = np.argsort(-lexical, kind="stable")
        for rank, i in enumerate(order):
            if lexical[i] <= 0:
                break
            fused[i] += 1.0 / (RRF_K + rank + 1)
        vectors = self.vectors(stats)
        if vectors is not None and query.strip():
            enc = dense_encoder()
            if enc is not None:
                similarity = vectors @ enc.encode([query])[0]
                for rank, i in enumerate(np.argsort(-similarity, kind="stable")):
                    fused[i] += 1.0 / (RRF_K + rank + 1)
        ranked = np.argsort(-fused, kind="stable")
        return [(int(i), float(fused[i])) for i in ranked]


class VectorMemo:
    """Vectors of recently embedded passages by the hash of their text, so documents that share
    passages (versions of one file, a haystack with its needle moved) embed only what is new."""

    def __init__(self, size: int = 50_000):  # 384 float32s each: about 77 MB when full
        self.size = size
        self._items: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def encode(self, enc, texts: list[str]) -> tuple[np.ndarray, int]:
        """Vectors for `texts` and how many had to be embedded."""
        keys = [hashlib.sha1(t.encode("utf-8", "surrogatepass")).digest() for t in texts]
        with self._lock:
            missing = [i for i, k in enumerate(keys) if k not in self._items]
        fresh = enc.encode([texts[i] for i in missing]) if missing else np.zeros((0, 384), dtype=np.float32)
        with self._lock:
            for row, i in enumerate(missing):
                self._items[keys[i]] = fresh[row]
            out = np.stack([self._items[k] for k in keys]) if keys else np.zeros((0, 384), dtype=np.float32)
            for k in keys:
                self._items.move_to_end(k)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return out.astype(np.float32, copy=False), len(missing)


class IndexCache:
    """The last `size` indexes by content hash; `stats` counts builds, embeddings and hits."""

    def __init__(self, size: int = 16, cache_dir: Path | None = None):
        self.size = size
        self.cache_dir = cache_dir
        self.stats = Stats()
        self.memo = VectorMemo()
        self._items: OrderedDict[str, PassageIndex] = OrderedDict()
        self._building: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, doc: Document) -> tuple[PassageIndex, bool]:
        """The document's index and whether it was already cached. Callers asking for the same
        text at once share one build (and then one embedding, under the index's own lock)."""
        key = f"{doc.sha256}-{VERSION}"
        with self._lock:
            building = self._building.setdefault(key, threading.Lock())
        with building:
            with self._lock:
                found = self._items.get(key)
                if found is not None:
                    self._items.move_to_end(key)
                    self._building.pop(key, None)
                    self.stats.hits += 1
                    return found, True
            index = PassageIndex(doc, self.cache_dir, self.memo)
            with self._lock:
                self._items[key] = index
                self._building.pop(key, None)
                self.stats.built += 1
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
        return index, False

    def ingest(self, doc: Document) -> None:
        """Build and embed now (after an upload), so the first question finds the index ready."""
        index, _ = self.get(doc)
        index.vectors(self.stats)


_default: IndexCache | None = None


def default_cache() -> IndexCache:
    """The process-wide cache, with embeddings kept under CANDOR_HOME/documents/embeddings."""
    global _default
    if _default is None:
        _default = IndexCache(cache_dir=settings().home / "documents" / "embeddings")
    return _default
