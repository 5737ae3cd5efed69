"""Does the weights' quantisation decide how well the engine batches? The default GGUF (Q4_1) against
the same weights requantised to Q8_0 by llama.cpp's own quantiser, in the embedded engine.

llama.cpp's CPU backend has repacked and tiled matrix kernels for Q4_0, Q8_0 and the K-quants but
not for Q4_1, so a forward pass over several sequences costs Q4_1 nearly a full dot product per
weight per sequence. This prints, per file, the aggregate output tokens/s of 1 and of 8 concurrent
streams (96-token answers, temperature 0.8, no seed: a seeded request decodes alone), their ratio,
and the milliseconds per batched forward pass. Each file runs in its own process (two contexts in one
process slow each other), the files alternate for several rounds, and medians are printed, so drift
in the machine's speed hits both alike. Nothing else should run on the machine.

    CANDOR_HOME=.candor .venv/bin/python benchmarks/quantization.py [--rounds 2]

The Q8_0 file is written once to $CANDOR_HOME/cache (about 145 MB); it is a measurement, not what
Candor serves.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from concurrency import TOPICS  # the story topics benchmarks/concurrency.py asks for


def requantized(source: Path, home: Path) -> Path:
    """`source` as Q8_0, made once with llama.cpp's quantiser (llama-cpp-python's low-level API)."""
    import llama_cpp

    target = home / "cache" / f"{source.stem}.requantized-Q8_0.gguf"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0
        params.allow_requantize = True
        partial = target.with_suffix(".partial")
        if llama_cpp.llama_model_quantize(str(source).encode(), str(partial).encode(), params) != 0:
            raise SystemExit(f"llama.cpp could not requantise {source}")
        partial.rename(target)
    return target


async def _measure(path: Path, streams: int) -> dict:
    """One process's run: a warm-up, then one round of 1 and of `streams` concurrent answers."""
    from candor.engine.base import Finish, GenerateRequest, SamplingParams
    from candor.engine.llama import LlamaConfig, LlamaEngine

    engine = LlamaEngine(path.name, LlamaConfig(model_path=path, context_window=2048, slots=streams,
                                                parse_special=True))

    def prompt(i: int) -> str:  # SmolLM2's ChatML turn, as its template renders it
        return (f"<|im_start|>user\nWrite a short story about {TOPICS[i % len(TOPICS)]}.<|im_end|>\n"
                "<|im_start|>assistant\n")

    async def one(i: int) -> int:
        async for event in engine.generate(GenerateRequest(prompt(i), 96, SamplingParams(temperature=0.8))):
            if isinstance(event, Finish):
                return event.usage.output_tokens
        return 0

    async def level(k: int) -> tuple[float, float]:
        stats = engine.decode_stats
        calls, seconds = stats.calls, stats.seconds
        start = time.perf_counter()
        tokens = sum(await asyncio.gather(*(one(i) for i in range(k))))
        elapsed = time.perf_counter() - start
        return tokens / elapsed, 1000 * (stats.seconds - seconds) / max(1, stats.calls - calls)

    await level(1)
    single, single_ms = await level(1)
    many, many_ms = await level(streams)
    await engine.close()
    return {"single": single, "many": many, "single_ms": single_ms, "many_ms": many_ms}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(_measure(Path(args.child), args.streams))))
        return

    from candor.config import settings
    from candor.engine.weights import ensure_weights
    from candor.registry import load_registry

    source = ensure_weights(load_registry().get("candor-instant"))
    files = {"Q4_1 (shipped)": source, "Q8_0 (requantised)": requantized(source, settings().home)}
    runs: dict[str, list[dict]] = {name: [] for name in files}
    for _ in range(args.rounds):
        for name, path in files.items():
            out = subprocess.run([sys.executable, __file__, "--child", str(path), "--streams", str(args.streams)],
                                 capture_output=True, text=True, check=True)
            runs[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    print(f"{args.streams} streams against 1, {args.rounds} rounds, load average {' '.join(load)}")
    print(f"{'weights':22s} {'1 stream tok/s':>15s} {f'{args.streams} streams tok/s':>17s} {'ratio':>6s} "
          f"{'ms/pass (1)':>12s} {f'ms/pass ({args.streams})':>12s}")
    base = None
    for name, rows in runs.items():
        med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        base = base or med
        print(f"{name:22s} {med['single']:15.1f} {med['many']:17.1f} {med['many'] / med['single']:6.2f} "
              f"{med['single_ms']:12.1f} {med['many_ms']:12.1f}   ({med['many'] / base['many']:.2f}x Q4_1 at "
              f"{args.streams} streams)")


if __name__ == "__main__":
    main()
