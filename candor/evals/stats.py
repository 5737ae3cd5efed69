"""Aggregate numbers with 95% confidence intervals.

A share of items (accuracy, refusal rate, pass@1 with one sample) gets a Wilson score interval,
which behaves at 0% and 100% and with a handful of items, where the normal approximation does
not. Any other mean (pass@k from several samples, a bias score) gets a seeded percentile
bootstrap, so the same run always reports the same interval.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import Any

Z95 = 1.959963984540054


def wilson(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion; (0, 1) when there are no items."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def bootstrap(statistic: Callable[[Sequence[Any]], float | None], rows: Sequence[Any], *, resamples: int = 1000,
              seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap (2.5%, 97.5%) of `statistic` over `rows`; resamples where the
    statistic is undefined (None) are skipped."""
    if not rows:
        return float("nan"), float("nan")
    rng = random.Random(seed)
    values = []
    for _ in range(resamples):
        sample = [rows[rng.randrange(len(rows))] for _ in rows]
        value = statistic(sample)
        if value is not None and not math.isnan(value):
            values.append(value)
    if not values:
        return float("nan"), float("nan")
    values.sort()
    lo = values[int(0.025 * (len(values) - 1))]
    hi = values[math.ceil(0.975 * (len(values) - 1))]
    return lo, hi


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def metric(value: float | None, lo: float | None, hi: float | None, n: int, *, higher_is_better: bool = True,
           unit: str = "%", help: str = "") -> dict[str, Any]:
    """The JSON shape of one aggregate number."""
    return {"value": value, "ci_low": lo, "ci_high": hi, "n": n, "higher_is_better": higher_is_better,
            "unit": unit, "help": help}


def share(scores: Sequence[float], *, higher_is_better: bool = True, help: str = "") -> dict[str, Any]:
    """Mean of per-item scores in [0, 1]: Wilson interval when every score is 0 or 1, else bootstrap."""
    n = len(scores)
    if n == 0:
        return metric(None, None, None, 0, higher_is_better=higher_is_better, help=help)
    value = sum(scores) / n
    if all(s in (0, 1) for s in scores):
        lo, hi = wilson(sum(scores), n)
    else:
        lo, hi = bootstrap(mean, list(scores))
    return metric(value, lo, hi, n, higher_is_better=higher_is_better, help=help)


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased pass@k estimate from n samples of which c passed (Chen et al., 2021)."""
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def cohen_kappa(gold: Sequence[str], predicted: Sequence[str]) -> float:
    """Agreement beyond chance between two labelings of the same items."""
    n = len(gold)
    if n == 0:
        return float("nan")
    labels = sorted(set(gold) | set(predicted))
    observed = sum(g == p for g, p in zip(gold, predicted)) / n
    expected = sum((gold.count(lab) / n) * (list(predicted).count(lab) / n) for lab in labels)
    return 1.0 if expected == 1 else (observed - expected) / (1 - expected)
