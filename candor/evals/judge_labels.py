"""Hand labels for the rule judge on the default model's own answers.

`judge_set.py` holds the labelled responses the rule judge was written against (mostly the
Gemma base model's echoes and loops, plus written examples). SmolLM2-135M-Instruct writes fluent
text of another kind, so its answers to the harmlessness and over-refusal prompts were labelled
by hand again: `labels/<model>.jsonl`, one row per answer:

    {"item": "advbench-12:direct", "task": "harmlessness-direct", "answer": "…",
     "label": "refusal" | "compliance" | "other", "why": "the reason for the label"}

The request is not stored (it is data-set text); it is read back from the data folder by the
item id, so the agreement is measured on exactly what the judge saw in the eval.

`labels/smollm2-135m-instruct-guarded.jsonl` holds the same model's answers decoded with the loop
guard (the report card's runs of 2026-12-03; `model` names the adapter), which go on about the
topic where the unguarded ones looped: 100 answers of candor-instant, read while rules-v3 was
written, then 60 of candor-instant-hh labelled before the v3 judge's verdicts on them were seen
(and read afterwards, while rules-v4 was written), then 50 jailbreak answers of candor-instant
labelled before v4 was written (read while a v4 variant that did worse on the next 40 was tried and
dropped), then 40 jailbreak answers of candor-instant-hh labelled before any v4 rule was written
and never read against it: the held-out rows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from candor.evals.judge import RuleJudge, agreement

LABELS_DIR = Path(__file__).resolve().parent / "labels"
# Rows in view while the rules were revised (the first ones of each file); the rest are held out.
DEV_ROWS = {"smollm2-135m-instruct": 87,  # rules-v2 was written looking at these only
            "smollm2-135m-instruct-guarded": 210}  # rules-v3 and v4 likewise


def load_labels(name: str = "smollm2-135m-instruct") -> list[dict[str, Any]]:
    path = LABELS_DIR / f"{name}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def requests(data_dir: str | Path | None = None) -> dict[str, tuple[str, str]]:
    """item id → (prompt as asked, the request alone) for every harmlessness and XSTest item."""
    from candor.evals.data import Data
    from candor.evals.harmlessness import TEMPLATES, Harmlessness, HarmlessnessConfig
    from candor.evals.overrefusal import OverRefusal, OverRefusalConfig

    data = Data(data_dir)
    out: dict[str, tuple[str, str]] = {}
    task = Harmlessness(HarmlessnessConfig(), data)
    for bid, _, request, core in task.behaviours():
        for name, template in TEMPLATES.items():
            out[f"{bid}:{name}"] = (template.format(request=request), core)
    for item in OverRefusal(OverRefusalConfig(), data).load():
        out[item.id] = (item.data["prompt"], item.data["prompt"])
    return out


def measure(name: str = "smollm2-135m-instruct", data_dir: str | Path | None = None,
            part: str | None = None) -> dict[str, Any]:
    """The rule judge against the hand labels: accuracy, Cohen's kappa, confusion, disagreements.
    `part`: "dev" (the file's first `DEV_ROWS` rows, in view while the rules were revised),
    "heldout" (the rest) or None (all)."""
    rows = load_labels(name)
    dev = DEV_ROWS[name]
    rows = {"dev": rows[:dev], "heldout": rows[dev:], None: rows}[part]
    asked = requests(data_dir)
    missing = [r["item"] for r in rows if r["item"] not in asked]
    if missing:
        raise ValueError(f"{len(missing)} labelled items are not in the data folder: {missing[:3]}")
    judge = RuleJudge()
    predicted = [judge.judge(asked[r["item"]][0], r["answer"], asked[r["item"]][1],
                             harmful=r["task"].startswith("harmlessness")) for r in rows]
    result = agreement([r["label"] for r in rows], [v.label for v in predicted])
    result["judge"] = judge.name
    result["labels"] = name
    result["disagreements"] = [{"item": r["item"], "gold": r["label"], "judge": v.label, "judge_reason": v.reason,
                                "why": r["why"], "answer": r["answer"][:200]}
                               for r, v in zip(rows, predicted) if r["label"] != v.label]
    return result
