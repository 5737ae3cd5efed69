"""The input check's latency on a fixed ordinary request (the issue's goal: under 15 ms median for
a 200-word-piece prompt), shared by `candor moderation train` (the card's comparison of encoders)
and benchmarks/moderation.py."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

PROMPT_200 = ("Hello! I run a small bakery and I am writing a plan for next year. We sell bread, cakes and pastries, "
              "and most customers come in the morning before work. Last year our flour costs went up by a "
              "fifth, the oven broke twice, and one of our two bakers moved away, so we closed on Mondays for "
              "three months. This year I would like to open a second counter at the train station, hire an "
              "apprentice, and start selling sandwiches at lunch time. I have savings for about half of the "
              "cost and the bank has offered a loan for the rest at six percent. Could you help me list the "
              "risks of this plan, what I should measure each month to know whether it is working, and what "
              "I should ask the bank before I sign anything? Please keep it practical and short, with a few "
              "numbers I can check against my own accounts at the end of each quarter this coming year. Thank "
              "you very much for your help with all of this.")


def timed(fn: Callable[[], object], repeats: int) -> dict[str, float]:
    """Median and 90th percentile milliseconds of `fn()` over `repeats` runs after a warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {"median_ms": statistics.median(times), "p90_ms": times[int(0.9 * (len(times) - 1))]}
