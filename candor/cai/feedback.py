"""AI feedback (RLAIF labels), as in Bai et al. (2022) §4.1.

For each prompt the policy samples two answers. A feedback model (a pretrained LM, non-chain-of-
thought) reads a multiple-choice question under one principle drawn at random:

    Consider the following conversation between a human and an assistant:
    Human: …
    {the principle's comparison question}
    Options:
    (A) …
    (B) …
    The answer is: (

and the log-probabilities of the next token being `A` or `B`, normalised over the two, are the
soft label. Few-shot examples of the task precede it, each under its own random principle.
One change from the paper: by default each pair is asked twice, with the options swapped, and
the two probabilities averaged, because small models prefer one letter whatever the content.

`measure_agreement` asks the same question about hh-rlhf harmless-base pairs (held-out rows)
and counts how often the feedback model prefers the answer the human labellers chose.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from candor.cai.critique import generate
from candor.chat.model_format import chat_format
from candor.chat.render import ASSISTANT, Message, render
from candor.chat.service import ChatParams
from candor.constitution import Constitution, Principle, load_constitution
from candor.engine.hub import LoadedModel
from candor.settings_fields import opt

LETTERS = ("A", "B")


@dataclass
class FeedbackSettings:
    out: str = opt("feedback.jsonl", "Output JSONL of AI-labelled pairs.")
    prompts: str = opt("", "Prompts: a `cai revise` output, a JSONL with `prompt`, or one per line; "
                           "default: hh-rlhf harmless-base first human turns.")
    limit: int = opt(16, "How many prompts (-1: all).")
    offset: int = opt(0, "Skip this many prompts first.")
    policy: str = opt("candor-instant", "Registry name of the policy that samples the two answers.")
    feedback_model: str = opt("candor-instant", "Registry name of the feedback model (must give log-probs).")
    constitution: str = opt("", "Constitution file (default: CANDOR_CONSTITUTION or the packaged one).")
    seed: int = opt(0, "Seed for principle draws and sampling.")
    temperature: float = opt(1.0, "Policy sampling temperature.")
    max_tokens: int = opt(160, "Most tokens per sampled answer.")
    fewshot: int = opt(2, "Few-shot labelled comparisons before each question (0-3).")
    both_orders: bool = opt(True, "Ask with the options in both orders and average (removes letter bias).")
    ensemble: int = opt(1, "Principles whose labels are averaged per pair (the paper's principle ensemble).")
    chat: bool = opt(False, "Ask in the feedback model's own chat format (an instruction-tuned model) "
                            "instead of as plain text (a pretrained model, as the paper).")
    data_dir: str = opt("", "Data folder holding hh-rlhf/ (default: CANDOR_DATA_DIR or ../shared/data).")


def transcript(context: Sequence[Message]) -> str:
    """The conversation as Human/Assistant text, rendered by the one chat renderer."""
    text = render(context).text
    return text.removesuffix(ASSISTANT).strip()


def question(context: Sequence[Message], first: str, second: str, principle: Principle) -> str:
    return ("Consider the following conversation between a human and an assistant:\n\n"
            f"{transcript(context)}\n\n{principle.comparison}\nOptions:\n"
            f"(A) {' '.join(first.split())}\n(B) {' '.join(second.split())}\nThe answer is: (")


def fewshot_block(constitution: Constitution, rng: random.Random, k: int) -> str:
    from candor.cai.fewshot import COMPARISON_EXAMPLES

    blocks = []
    for ex in COMPARISON_EXAMPLES[:max(0, k)]:
        principle = rng.choice(constitution.principles)
        better_first = rng.random() < 0.5
        a, b = (ex.better, ex.worse) if better_first else (ex.worse, ex.better)
        context = [Message("user", ex.context.removeprefix("Human:").strip())]
        blocks.append(question(context, a, b, principle) + ("A)" if better_first else "B)"))
    return "\n\n".join(blocks) + ("\n\n" if blocks else "")


def normalise(logprobs: dict[str, float]) -> float:
    """P(A) from the log-probabilities of A and B (softmax over the two)."""
    a, b = logprobs["A"], logprobs["B"]
    if a == b == float("-inf"):
        return 0.5
    top = max(a, b)
    ea, eb = math.exp(a - top), math.exp(b - top)
    return ea / (ea + eb)


ANSWER_CUE = "The answer is: ("


def as_prompt(model: LoadedModel, text: str, chat: bool) -> str:
    """The question as plain text, or as a user turn in the model's chat format with the answer
    cue as the start of the assistant's reply."""
    if not chat:
        return text
    body = text.removesuffix(ANSWER_CUE).rstrip()
    return chat_format(model).render([Message("user", body), Message("assistant", ANSWER_CUE)]).text


async def _p_first(model: LoadedModel, context, first, second, principle, shots, both_orders, chat):
    ask = model.engine.next_token_logprobs
    p_ab = normalise(await ask(as_prompt(model, shots + question(context, first, second, principle), chat), LETTERS))
    if not both_orders:
        return p_ab, None
    p_ba = normalise(await ask(as_prompt(model, shots + question(context, second, first, principle), chat), LETTERS))
    return p_ab, 1.0 - p_ba


async def compare(model: LoadedModel, context: Sequence[Message], first: str, second: str, principle: Principle,
                  shots: str, both_orders: bool = True, chat: bool = False,
                  more_principles: Sequence[Principle] = ()) -> dict[str, float]:
    """P(first is better) under `principle` (averaged with `more_principles`: an ensemble),
    over both option orders if asked."""
    as_a, as_b = [], []
    for p in (principle, *more_principles):
        p_ab, p_first_as_b = await _p_first(model, context, first, second, p, shots, both_orders, chat)
        as_a.append(p_ab)
        if p_first_as_b is not None:
            as_b.append(p_first_as_b)
    out = {"p_first_as_a": sum(as_a) / len(as_a)}
    if as_b:
        out["p_first_as_b"] = sum(as_b) / len(as_b)
        out["p_first"] = (out["p_first_as_a"] + out["p_first_as_b"]) / 2
    else:
        out["p_first"] = out["p_first_as_a"]
    return out


def principles_for(constitution: Constitution, rng: random.Random, k: int) -> tuple[Principle, list[Principle]]:
    """One principle drawn at random, and k-1 more distinct ones for an ensemble."""
    first = rng.choice(constitution.principles)
    others = [p for p in constitution.principles if p.id != first.id]
    return first, rng.sample(others, min(max(0, k - 1), len(others)))


def _prompts(cfg: FeedbackSettings) -> list[str]:
    from candor.cai import hh

    if cfg.prompts:
        path = Path(cfg.prompts)
        rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()] \
            if path.suffix == ".jsonl" and path.is_file() else None
        prompts = [r["prompt"] for r in rows] if rows and isinstance(rows[0], dict) and "prompt" in rows[0] \
            else hh.read_prompts(cfg.prompts)
    else:
        prompts = hh.first_human_turns("harmless-base", "train", None, cfg.data_dir or None)
    prompts = prompts[cfg.offset:]
    return prompts if cfg.limit < 0 else prompts[:cfg.limit]


async def run_feedback(policy: LoadedModel, judge: LoadedModel, cfg: FeedbackSettings, log=print) -> dict[str, Any]:
    """Two policy samples per prompt, labelled by the feedback model; one JSONL row per prompt:
    {"id", "prompt", "response_a", "response_b", "principle", "p_a", "chosen", "rejected", …}."""
    from tqdm import tqdm

    constitution = load_constitution(cfg.constitution or None)
    prompts = _prompts(cfg)
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    started, written = time.perf_counter(), 0
    with out.open("w", encoding="utf-8") as f:  # noqa: ASYNC230 - one short line per prompt; nothing else runs
        for i, prompt in enumerate(tqdm(prompts, desc="feedback", unit="prompt")):
            index = cfg.offset + i
            rng = random.Random(f"{cfg.seed}:feedback:{index}")
            context = [Message("user", prompt)]
            answers = []
            for _ in range(2):
                params = ChatParams(max_tokens=cfg.max_tokens, temperature=cfg.temperature,
                                    seed=rng.randrange(1 << 30))
                answers.append((await generate(policy, context, None, params))[0])
            principle, more = principles_for(constitution, rng, cfg.ensemble)
            shots = fewshot_block(constitution, rng, cfg.fewshot)
            scores = await compare(judge, context, answers[0], answers[1], principle, shots, cfg.both_orders,
                                   cfg.chat, more)
            p_a = scores["p_first"]
            chosen, rejected = (answers[0], answers[1]) if p_a >= 0.5 else (answers[1], answers[0])
            row = {"id": index, "prompt": prompt, "response_a": answers[0], "response_b": answers[1],
                   "principle": principle.id, "ensemble": [p.id for p in more], "p_a": round(p_a, 6),
                   **{k: round(v, 6) for k, v in scores.items() if k != "p_first"},
                   "chosen": chosen, "rejected": rejected, "confidence": round(max(p_a, 1 - p_a), 6),
                   "policy": policy.name, "feedback_model": judge.name}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            f.flush()
            written += 1
    summary = {"out": str(out), "pairs": written, "seconds": round(time.perf_counter() - started, 1)}
    log(f"feedback: {written} labelled pairs → {out} ({summary['seconds']} s)")
    return summary


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


async def measure_agreement(judge: LoadedModel, pairs: int = 200, seed: int = 0, fewshot: int = 2,
                            both_orders: bool = True, constitution: Constitution | None = None,
                            data_dir: str | None = None, max_chars: int = 2000, ensemble: int = 1,
                            chat: bool = False) -> dict[str, Any]:
    """How often the feedback model prefers the human-chosen answer of hh-rlhf harmless-base
    held-out pairs. Returns accuracy with a 95% Wilson interval and the mean soft label."""
    from tqdm import tqdm

    from candor.cai import hh

    constitution = constitution or load_constitution()
    rows = [p for p in hh.pairs("harmless-base", "holdout", None, data_dir)
            if len(transcript(p.context)) + len(p.chosen) + len(p.rejected) <= max_chars][:pairs]
    agree, total_p, first_only = 0, 0.0, 0
    started = time.perf_counter()
    for pair in tqdm(rows, desc="agreement", unit="pair"):
        rng = random.Random(f"{seed}:agree:{pair.index}")
        principle, more = principles_for(constitution, rng, ensemble)
        shots = fewshot_block(constitution, rng, fewshot)
        chosen_first = rng.random() < 0.5
        first, second = (pair.chosen, pair.rejected) if chosen_first else (pair.rejected, pair.chosen)
        scores = await compare(judge, pair.context, first, second, principle, shots, both_orders, chat, more)
        p_chosen = scores["p_first"] if chosen_first else 1 - scores["p_first"]
        p_chosen_single = scores["p_first_as_a"] if chosen_first else 1 - scores["p_first_as_a"]
        agree += p_chosen > 0.5
        first_only += p_chosen_single > 0.5
        total_p += p_chosen
    n = len(rows)
    low, high = wilson(agree, n)
    return {"feedback_model": judge.name, "pairs": n, "agreement": round(agree / n, 4) if n else None,
            "ci95": [round(low, 4), round(high, 4)], "mean_p_chosen": round(total_p / n, 4) if n else None,
            "agreement_one_order": round(first_only / n, 4) if n else None, "both_orders": both_orders,
            "fewshot": fewshot, "ensemble": ensemble, "chat": chat, "seed": seed, "source": "hh-rlhf harmless-base test, last 300 rows (held out)",
            "max_chars": max_chars, "seconds": round(time.perf_counter() - started, 1)}
