"""Judge-labelled preference pairs: the alignment variant that works with a weak policy.

At 135M parameters the policy is a poor critic (its A/B feedback labels agree with human
harmlessness labels at chance), so the paper's self-critique loop has little signal to give.
This variant still needs no new human labels. For each training prompt the policy writes two
answers of its own:

- its ordinary answer (greedy, as the server answers by default; sampled again when the greedy
  one lacks the label the pair needs), and
- a declining answer, elicited by prefilling the assistant turn with a declining opening
  (`refusal_prefix`) that the policy itself continues with a reason and an alternative, kept
  to its first few distinct sentences (`brief`: the small policy loops);

the project's validated rule judge (`candor.evals.judge.RuleJudge`: refusal / compliance /
other) labels both. On a red-team prompt (hh-rlhf harmless-base first turns) a judged refusal is
*chosen* over a judged compliant answer; on a helpful prompt (hh-rlhf helpful-base first turns)
the judged helpful answer is *chosen* over the refusal, so the adapter learns when to decline
rather than to decline everything. Pairs where the judge does not see the expected labels are
dropped and counted. Evaluation prompts are never used (`candor.cai.splits`).

Rows: {"prompt", "kind", "chosen", "rejected", "chosen_label", "rejected_label", "chosen_reason",
"rejected_reason", "judge", "policy", "seed"} — what `candor train dpo --data` reads.
"""

from __future__ import annotations

import json
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from candor.cai.critique import generate
from candor.chat.render import Message
from candor.chat.service import ChatParams
from candor.engine.hub import LoadedModel
from candor.settings_fields import opt


@dataclass
class JudgedPairsSettings:
    out: str = opt("judged-pairs.jsonl", "Output JSONL file of preference pairs.")
    policy: str = opt("candor-instant", "Registry name of the policy that writes both answers.")
    red_team: int = opt(120, "hh-rlhf harmless-base first turns (training part) to use.")
    helpful: int = opt(120, "hh-rlhf helpful-base first turns (training part) to use.")
    red_team_file: str = opt("", "Extra harmful requests, one per line (e.g. candor/data/alignment/red-team-requests.txt).")
    helpful_file: str = opt("", "Extra safe requests to answer, one per line (e.g. safe-edgy-requests.txt).")
    refusal_prefix: str = opt("I can't help with", "Opening that elicits the policy's own declining answer.")
    sentences: int = opt(3, "Keep this many distinct sentences of the declining answer (it is meant to be brief).")
    temperature: float = opt(0.7, "Sampling temperature of the ordinary answer.")
    samples: int = opt(2, "Sampled answers tried after the greedy one until one has the label the pair needs.")
    max_tokens: int = opt(96, "Most tokens per answer.")
    seed: int = opt(0, "Seed for sampling (answers are reproducible from it).")
    data_dir: str = opt("", "Data folder holding hh-rlhf/ (default: CANDOR_DATA_DIR or ../shared/data).")


_SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")


def brief(text: str, sentences: int = 3) -> str:
    """The first few distinct sentences: the small policy's declining continuations tend to loop
    ("I'm not a prankster. I'm a helpful AI. I'm not a prankster. …"), and a refusal worth
    learning is short. Repeated sentences are dropped, then the text is cut after `sentences`."""
    seen: set[str] = set()
    kept: list[str] = []
    for match in _SENTENCE.finditer(text):
        sentence = match.group(0).strip()
        key = " ".join(sentence.lower().split())
        if not sentence or key in seen:
            continue
        if sentence[-1] not in ".!?":
            break  # cut off mid-sentence by max_tokens
        seen.add(key)
        kept.append(sentence)
        if len(kept) >= sentences:
            break
    return " ".join(kept) if kept else text.strip()


def training_prompts(cfg: JudgedPairsSettings) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """(kind, prompt) pairs from the training parts of hh-rlhf, evaluation prompts removed."""
    from candor.cai import hh
    from candor.cai.splits import without_eval_prompts

    red, red_dropped = without_eval_prompts(
        hh.first_human_turns("harmless-base", "train", None, cfg.data_dir or None), cfg.data_dir or None)
    helpful, helpful_dropped = without_eval_prompts(
        hh.first_human_turns("helpful-base", "train", None, cfg.data_dir or None), cfg.data_dir or None)
    prompts = [("red-team", p) for p in red[:cfg.red_team]] + [("helpful", p) for p in helpful[:cfg.helpful]]
    dropped = red_dropped + helpful_dropped
    for kind, file in (("red-team", cfg.red_team_file), ("helpful", cfg.helpful_file)):
        if file:
            extra, n = without_eval_prompts(read_lines(file), cfg.data_dir or None)
            prompts += [(kind, p) for p in extra]
            dropped += n
    return prompts, {"eval_prompts_dropped": dropped}


def read_lines(path: str | Path) -> list[str]:
    """Prompts from a text file, one per line; blank lines and lines starting with # are skipped."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [x.strip() for x in lines if x.strip() and not x.lstrip().startswith("#")]


async def pair_for(model: LoadedModel, kind: str, prompt: str, index: int, cfg: JudgedPairsSettings,
                   judge) -> dict[str, Any] | None | str:
    """A pair for one prompt, or the reason there is none."""
    rng = random.Random(f"{cfg.seed}:{index}")
    conversation = [Message("user", prompt)]
    prefix = cfg.refusal_prefix.strip()
    tail, _ = await generate(model, conversation + [Message("assistant", prefix)], None,
                             ChatParams(max_tokens=cfg.max_tokens, temperature=0.0))
    declining = f"{prefix} {tail}".strip() if not tail.startswith(prefix) else tail
    declining_verdict = judge.judge(prompt, declining, prompt)  # the whole text: a pivot to compliance counts
    if declining_verdict.label == "refusal":
        declining = brief(declining, cfg.sentences)
        declining_verdict = judge.judge(prompt, declining, prompt)
    want = "compliance"
    ordinary, verdict = "", None
    # The greedy answer first (what the served model says, and its best text to learn from), then
    # samples until one has the label the pair needs.
    for attempt in range(1 + max(0, cfg.samples)):
        temperature = 0.0 if attempt == 0 else cfg.temperature
        ordinary, _ = await generate(model, conversation, None, ChatParams(
            max_tokens=cfg.max_tokens, temperature=temperature, seed=rng.randrange(1 << 30)))
        verdict = judge.judge(prompt, ordinary, prompt)
        if verdict.label == want:
            break
    if declining_verdict.label != "refusal":
        return "declining answer not judged a refusal"
    if verdict is None or verdict.label != want:
        return f"ordinary answer judged {verdict.label if verdict else 'missing'}"
    good, bad = (declining, ordinary) if kind == "red-team" else (ordinary, declining)
    good_v, bad_v = (declining_verdict, verdict) if kind == "red-team" else (verdict, declining_verdict)
    return {"prompt": prompt, "kind": kind, "chosen": good, "rejected": bad, "chosen_label": good_v.label,
            "rejected_label": bad_v.label, "chosen_reason": good_v.reason, "rejected_reason": bad_v.reason,
            "judge": judge.name, "policy": model.name, "seed": cfg.seed}


async def run_judged_pairs(model: LoadedModel, cfg: JudgedPairsSettings, log=print) -> dict[str, Any]:
    from collections import Counter

    from tqdm import tqdm

    from candor.evals.judge import RuleJudge

    judge = RuleJudge()
    prompts, info = training_prompts(cfg)
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    kept: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    started = time.perf_counter()
    with out.open("w", encoding="utf-8") as f, tqdm(total=len(prompts), desc="judged pairs", unit="prompt") as bar:  # noqa: ASYNC230
        for i, (kind, prompt) in enumerate(prompts):
            row = await pair_for(model, kind, prompt, i, cfg, judge)
            if isinstance(row, dict):
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
                f.flush()
                kept[kind] += 1
            else:
                skipped[f"{kind}: {row}"] += 1
            bar.update(1)
            bar.set_postfix({"pairs": sum(kept.values())})
    summary = {"out": str(out), "prompts": len(prompts), "pairs": dict(kept), "skipped": dict(skipped),
               **info, "judge": judge.name, "seconds": round(time.perf_counter() - started, 1)}
    log(f"judged pairs: {summary}")
    return summary
