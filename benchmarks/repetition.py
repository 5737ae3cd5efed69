"""Loops: how often the default model's answers to everyday requests repeat themselves, with the
registry's loop guard (candor.engine.base.RepetitionGuard) and without it, in the same run.

    CANDOR_HOME=.candor .venv/bin/python benchmarks/repetition.py [--model candor-instant] [--max-tokens 400]
        [--out answers.json]

Each of the 40 everyday requests below (written for Candor: advice, explanations, stories, lists,
code, letters) is asked once per configuration at the model's default temperature (greedy for
candor-instant), all in flight together, through the same chat path as the API. An answer *loops*
when more than a quarter of its 8-word sequences already occurred earlier in it; the table gives
that share, the share cut by max_tokens, the mean repeated share, the mean answer length and the
aggregate output tokens/s. `--alternatives` adds the guard's two samplers each on its own. Last,
the guard's own cost: milliseconds to sample one token with and without it on one context's logits.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import time

PROMPTS = [
    "Write a short story about a dragon who learns to bake bread.",
    "Explain how a refrigerator works.",
    "Give me a packing list for a weekend camping trip.",
    "What are the pros and cons of working from home?",
    "Write a Python function that checks whether a string is a palindrome, and explain it.",
    "Summarise the causes of the First World War.",
    "Write a cover letter for a junior accountant position.",
    "How do I make a good cup of coffee?",
    "Explain the difference between a list and a tuple in Python.",
    "Write a poem about the sea.",
    "What should I consider when buying a used car?",
    "Describe the water cycle for a ten-year-old.",
    "Plan a three-day trip to Rome.",
    "What is machine learning? Explain it simply.",
    "Give me five ideas for a birthday party for a seven-year-old.",
    "How can I improve my public speaking?",
    "Write an email to my landlord asking to fix the heating.",
    "What are the health benefits of walking every day?",
    "Explain what inflation is and why it happens.",
    "Tell me about the history of the bicycle.",
    "How do I start learning to play the guitar?",
    "Write a product description for a reusable water bottle.",
    "What are some tips for saving money on groceries?",
    "Explain how vaccines work.",
    "Write a SQL query that finds the ten customers who spent the most, and explain it.",
    "How should I prepare for a job interview?",
    "Describe a typical day in the life of a nurse.",
    "What is the difference between weather and climate?",
    "Give me a weekly workout plan for a beginner.",
    "Write a thank-you note to a colleague who helped me with a project.",
    "How do plants make their food?",
    "What are good habits for studying for exams?",
    "Explain recursion with an example in Python.",
    "Write a short speech for my sister's wedding.",
    "What should I pack in a first-aid kit?",
    "How does the stock market work?",
    "Suggest a vegetarian dinner menu for four people.",
    "Explain the rules of chess briefly.",
    "How can I sleep better at night?",
    "Write a bedtime story about a sleepy owl.",
]


def repeated_share(text: str, n: int = 8) -> float:
    """The share of the answer's n-word sequences that already occurred earlier in it."""
    words = text.split()
    grams = [" ".join(words[i:i + n]) for i in range(len(words) - n + 1)]
    return (len(grams) - len(set(grams))) / max(1, len(grams))


async def answers(model, max_tokens: int) -> list[dict]:
    from candor.chat.service import ChatParams, stream_chat
    from candor.engine.base import Finish, TextDelta

    gate = asyncio.Semaphore(16)  # within the engine's queue (slots plus waiting)

    async def one(prompt: str) -> dict:
        async with gate:
            return await ask(prompt)

    async def ask(prompt: str) -> dict:
        text, finish = [], None
        async for event in stream_chat(model, [{"role": "user", "content": prompt}], None,
                                       ChatParams(max_tokens=max_tokens)):
            if isinstance(event, TextDelta):
                text.append(event.text)
            elif isinstance(event, Finish):
                finish = event
        assert finish is not None
        answer = "".join(text)
        return {"prompt": prompt, "answer": answer, "stop_reason": finish.stop_reason,
                "output_tokens": finish.usage.output_tokens, "repeated": repeated_share(answer)}

    return list(await asyncio.gather(*(one(p) for p in PROMPTS)))


def summary(rows: list[dict]) -> dict[str, float]:
    n = len(rows)
    return {"loops": sum(r["repeated"] > 0.25 for r in rows) / n,
            "cut_by_max_tokens": sum(r["stop_reason"] == "max_tokens" for r in rows) / n,
            "mean_repeated": sum(r["repeated"] for r in rows) / n,
            "mean_tokens": sum(r["output_tokens"] for r in rows) / n}


def sampler_cost(entry, tokens: int = 500, history: int = 300) -> dict[str, float]:
    """Milliseconds to sample one token with greedy alone and with the entry's guard in front, on
    one context's logits, after `history` accepted tokens: the guard's own cost, without decoding."""
    import ctypes

    import llama_cpp as lib

    from candor.engine.batching import add_repetition_guard, dry_breakers
    from candor.engine.hub import repetition_guard
    from candor.engine.weights import ensure_weights

    guard = repetition_guard(entry)
    model = lib.llama_model_load_from_file(str(ensure_weights(entry)).encode(), lib.llama_model_default_params())
    vocab = lib.llama_model_get_vocab(model)
    n_vocab = lib.llama_vocab_n_tokens(vocab)
    params = lib.llama_context_default_params()
    params.n_ctx = 512
    ctx = lib.llama_init_from_model(model, params)
    lib.llama_decode(ctx, lib.llama_batch_get_one((ctypes.c_int32 * 3)(1, 2, 3), 3))
    breakers = dry_breakers()
    out = {}
    for label, guarded in (("greedy", False), ("guard + greedy", True), ("greedy again", False)):
        chain = lib.llama_sampler_chain_init(lib.llama_sampler_chain_default_params())
        if guarded:  # the serving engine's own code for it
            add_repetition_guard(lib, chain, vocab, n_vocab, guard, breakers)
        lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_greedy())
        for i in range(history):
            lib.llama_sampler_accept(chain, (i * 7919) % n_vocab)
        start = time.perf_counter()
        for _ in range(tokens):
            lib.llama_sampler_sample(chain, ctx, -1)
        out[label] = (time.perf_counter() - start) / tokens * 1000
        lib.llama_sampler_free(chain)
    lib.llama_free(ctx)
    lib.llama_model_free(model)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="candor-instant")
    parser.add_argument("--max-tokens", type=int, default=400)
    parser.add_argument("--rounds", type=int, choices=(1, 2), default=2,
                        help="2: run each configuration twice, in the order A B B A (speed figures)")
    parser.add_argument("--alternatives", action="store_true",
                        help="also the guard's two samplers each on its own (DRY only, penalty only)")
    parser.add_argument("--out", default="")
    args = parser.parse_args()

    from candor.engine.hub import build_engine
    from candor.registry import load_registry

    entry = load_registry().get(args.model)
    configs = {"without guard": dataclasses.replace(entry, dry_multiplier=0.0, repeat_penalty=1.0),
               "registry's guard": entry}
    if args.alternatives:
        configs |= {"DRY only": dataclasses.replace(entry, repeat_penalty=1.0),
                    "penalty only": dataclasses.replace(entry, dry_multiplier=0.0)}
    results: dict[str, dict] = {}
    order = list(configs) + list(reversed(configs)) if args.rounds == 2 else list(configs)

    async def run_all() -> None:
        for label in order:  # with --rounds 2: A B B A, so a drift in the machine's speed reaches both alike
            model = build_engine(configs[label])
            start = time.perf_counter()
            rows = await answers(model, args.max_tokens)
            seconds = time.perf_counter() - start
            if label in results:
                results[label]["seconds"] += seconds  # the figures above are the first round's
                results[label]["second_round_same"] = sum(a["answer"] == b["answer"] for a, b in
                                                          zip(rows, results[label]["answers"]))
            else:
                results[label] = {"summary": summary(rows), "seconds": seconds, "answers": rows}
            await model.engine.close()

    asyncio.run(run_all())
    print(f"{args.model}: {len(PROMPTS)} everyday requests, max_tokens {args.max_tokens}, temperature "
          f"{entry.default_temperature}; guard: dry_multiplier {entry.dry_multiplier}, dry_base {entry.dry_base}, "
          f"dry_allowed_length {entry.dry_allowed_length}, repeat_penalty {entry.repeat_penalty} "
          f"over {entry.repeat_last_n}\n")
    print(f"{'':18s} {'loops':>6s} {'cut':>6s} {'repeated':>9s} {'tokens':>7s} {'seconds':>8s} {'tokens/s':>9s}")
    for label, result in results.items():
        s = result["summary"]
        rate = s["mean_tokens"] * len(PROMPTS) * args.rounds / result["seconds"]
        print(f"{label:18s} {s['loops']:6.2f} {s['cut_by_max_tokens']:6.2f} {s['mean_repeated']:9.3f} "
              f"{s['mean_tokens']:7.0f} {result['seconds']:8.1f} {rate:9.1f}"
              + (f"  (round 2: {result['second_round_same']} answers the same)" if args.rounds == 2 else ""))
    cost = sampler_cost(entry)
    print("\nsampling one token, ms: " + ", ".join(f"{k} {v:.3f}" for k, v in cost.items()))
    if args.out:
        results["sampler_ms"] = cost
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
