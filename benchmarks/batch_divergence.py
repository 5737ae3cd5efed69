"""How often batching changes a greedy answer, and why: each prompt is answered alone and then
inside a batch of `--batch` concurrent requests (temperature 0), token by token.

llama.cpp's logits move in the last bits with how a step was batched. A greedy text can therefore
part from its single-sequence text only where the two best logits were nearly tied; this prints
how many answers were identical, where the others diverged and the gap between the two best
logits at that step in the single-sequence run, and how rare such near ties are among all steps.

    .venv/bin/python benchmarks/batch_divergence.py [--prompts 32] [--batch 8] [--max-tokens 64]
"""

from __future__ import annotations

import argparse
import asyncio

from candor.chat import Message
from candor.chat.render import render
from candor.engine.base import GenerateRequest, SamplingParams, collect
from candor.engine.llama import LlamaConfig, LlamaEngine
from candor.engine.weights import ensure_weights
from candor.registry import load_registry

NEAR_TIE = 0.05  # the margin tests/test_batching.py allows (logit units)
SUBJECTS = ["the moon", "bread", "rivers", "chess", "volcanoes", "bees", "the printing press", "glass",
            "penguins", "electricity", "the Roman empire", "coffee", "clouds", "maps", "violins", "salt"]
ASKS = ["Explain {} to a child.", "Write two sentences about {}.", "Give three facts about {}.",
        "Why is {} interesting?"]


async def traced(engine: LlamaEngine, request: GenerateRequest) -> list[tuple[int, float]]:
    trace: list[tuple[int, float]] = []
    await collect(engine.generate(request, trace=trace))
    return trace


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()
    entry = load_registry().get("candor-instant")
    engine = LlamaEngine(entry.name, LlamaConfig(model_path=ensure_weights(entry), context_window=2048,
                                                 slots=args.batch, parse_special=True))
    questions = [ASKS[i % len(ASKS)].format(SUBJECTS[(i // len(ASKS) + i) % len(SUBJECTS)])
                 for i in range(args.prompts)]
    requests = []
    for q in questions:
        rendered = render([Message("user", q)])
        requests.append(GenerateRequest(prompt=rendered.text, max_tokens=args.max_tokens,
                                        sampling=SamplingParams(temperature=0.0), end_sequences=rendered.end_sequences))
    alone = [await traced(engine, r) for r in requests]
    together: list[list[tuple[int, float]]] = []
    for start in range(0, len(requests), args.batch):
        together += await asyncio.gather(*(traced(engine, r) for r in requests[start:start + args.batch]))
    identical, diverged, unexplained = 0, [], 0
    for i, (a, b) in enumerate(zip(alone, together)):
        step = next((k for k, ((x, _), (y, _)) in enumerate(zip(a, b)) if x != y), None)
        if step is None and len(a) == len(b):
            identical += 1
            continue
        gap = a[step][1] if step is not None else float("nan")
        diverged.append((i, step, gap))
        unexplained += not (gap < NEAR_TIE)
    steps = [gap for trace in alone for _, gap in trace]
    near = sum(gap < NEAR_TIE for gap in steps)
    print(f"{args.prompts} prompts, greedy, up to {args.max_tokens} tokens, alone vs in batches of {args.batch}")
    print(f"identical answers: {identical}/{len(requests)}")
    for i, step, gap in diverged:
        print(f"  prompt {i}: diverged at step {step}; best logit led by {gap:.4f} there")
    print(f"divergences not at a near tie (< {NEAR_TIE}): {unexplained}")
    print(f"near-tie steps among all {len(steps)} single-sequence steps: {near} ({100 * near / max(1, len(steps)):.2f}%)")
    await engine.close()


if __name__ == "__main__":
    asyncio.run(main())
