"""Deduplication of training data: exact duplicates, then near-duplicates by MinHash.

Repeated data hurts models (it is memorised instead of generalised from), and generated data
repeats itself a lot. Exact duplicates are found on a normalised form of the text (lower case,
punctuation and extra spaces removed). Near-duplicates are found with MinHash over word
shingles and locality-sensitive hashing: pairs whose estimated Jaccard similarity reaches the
threshold are confirmed with the exact Jaccard of their shingle sets, and the later one dropped.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

_PRIME = (1 << 61) - 1
_WORD = re.compile(r"[a-z0-9]+")


@dataclass
class DedupReport:
    kept: int = 0
    exact: int = 0
    near: int = 0
    dropped: list[tuple[int, int, str]] = field(default_factory=list)  # (index, duplicate of, kind)

    def as_dict(self) -> dict[str, Any]:
        return {"kept": self.kept, "exact_duplicates": self.exact, "near_duplicates": self.near}


def normalise(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def shingles(text: str, n: int = 3) -> set[int]:
    words = normalise(text).split()
    if len(words) < n:
        return {zlib.crc32(" ".join(words).encode())} if words else set()
    return {zlib.crc32(" ".join(words[i:i + n]).encode()) for i in range(len(words) - n + 1)}


class MinHasher:
    def __init__(self, num_perm: int = 64, seed: int = 1):
        rng = np.random.default_rng(seed)
        self.a = rng.integers(1, _PRIME, size=num_perm, dtype=np.uint64)
        self.b = rng.integers(0, _PRIME, size=num_perm, dtype=np.uint64)
        self.num_perm = num_perm

    def signature(self, items: set[int]) -> np.ndarray:
        if not items:
            return np.full(self.num_perm, np.iinfo(np.uint64).max, dtype=np.uint64)
        x = np.fromiter(items, dtype=np.uint64)[:, None]
        # (a*x + b) mod p in uint64 arithmetic (x < 2^32, a < 2^61: products wrap, which is still a
        # fine hash family for estimating Jaccard similarity)
        return ((x * self.a + self.b) % np.uint64(_PRIME)).min(axis=0)


def jaccard(a: set[int], b: set[int]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def dedup(rows: Sequence[Any], key: Callable[[Any], str] = str, threshold: float = 0.8,
          num_perm: int = 64, bands: int = 16, shingle_words: int = 3) -> tuple[list[Any], DedupReport]:
    """Rows without exact and near duplicates (the first occurrence is kept), and a report."""
    report = DedupReport()
    hasher = MinHasher(num_perm)
    rows_per_band = num_perm // bands
    buckets: dict[tuple[int, bytes], list[int]] = {}
    exact_seen: dict[str, int] = {}
    kept_sets: dict[int, set[int]] = {}
    kept: list[Any] = []
    for i, row in enumerate(rows):
        text = key(row)
        norm = normalise(text)
        if norm in exact_seen:
            report.exact += 1
            report.dropped.append((i, exact_seen[norm], "exact"))
            continue
        items = shingles(text, shingle_words)
        sig = hasher.signature(items)
        band_keys = [(b, sig[b * rows_per_band:(b + 1) * rows_per_band].tobytes()) for b in range(bands)]
        candidates = {j for bk in band_keys for j in buckets.get(bk, ())}
        match = next((j for j in sorted(candidates) if jaccard(items, kept_sets[j]) >= threshold), None)
        if match is not None:
            report.near += 1
            report.dropped.append((i, match, "near"))
            continue
        exact_seen[norm] = i
        kept_sets[i] = items
        for bk in band_keys:
            buckets.setdefault(bk, []).append(i)
        kept.append(row)
    report.kept = len(kept)
    return kept, report


def row_text(row: Any) -> str:
    """The text a training row is judged by: its conversation, or its prompt and answers."""
    if isinstance(row, str):
        return row
    if "messages" in row:
        return "\n".join(str(m["content"]) for m in row["messages"])
    parts = [str(row.get(k, "")) for k in ("prompt", "text", "chosen", "rejected", "response", "final")]
    return "\n".join(p for p in parts if p)


def dedup_rows(rows: Iterable[dict], threshold: float = 0.8) -> tuple[list[dict], DedupReport]:
    return dedup(list(rows), key=row_text, threshold=threshold)
