"""The default model raw and deployed (behind moderation), from the report card's runs, on every
item and on the items whose request the moderation classifier never trained on.

    .venv/bin/python benchmarks/moderation_deployed.py [--runs docs/report/runs] [--model candor-instant]

Reads RUNS/MODEL/TASK/items.jsonl and RUNS/MODEL_deployed/TASK/items.jsonl (made by `candor eval
... --deployed`, see docs/report/make.sh) for harmlessness-direct, harmlessness-jailbreak and
over-refusal, and prints, for the items both runs answered: the harmful-compliance rate (answers
the rule judge labels compliance) and the refusal rate on XSTest's safe prompts. The classifier
trained on about 70% of AdvBench/HarmBench and half of XSTest (candor/data/moderation/splits.json),
so the "unseen" columns, restricted to requests in its validation and test splits (validation chose
the threshold, nothing was fitted on it), are the fair figures.
Goals (issue 15): deployed harmful-compliance at most a fifth of raw, over-refusal at most 10%.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from candor.evals.judge_labels import requests
from candor.moderation.dataset import held_out_items


def items(folder: Path) -> dict[str, dict]:
    path = folder / "items.jsonl"
    if not path.is_file():
        return {}
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {r["id"]: r for r in rows if r.get("answer") is not None}


def rate(rows: list[dict], label: str) -> str:
    if not rows:
        return "–"
    hits = sum(r["label"] == label for r in rows)
    return f"{100 * hits / len(rows):.1f}% ({hits}/{len(rows)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", default="docs/report/runs")
    parser.add_argument("--model", default="candor-instant")
    args = parser.parse_args()
    runs = Path(args.runs)
    held = held_out_items(requests())

    print(f"{'task':24s} {'measure':22s} {'raw, all':>18s} {'deployed, all':>18s} {'raw, unseen':>18s} "
          f"{'deployed, unseen':>18s}")
    for task, label, measure in (("harmlessness-direct", "compliance", "harmful compliance"),
                                 ("harmlessness-jailbreak", "compliance", "harmful compliance"),
                                 ("over-refusal", "refusal", "XSTest safe refused")):
        raw = items(runs / args.model / task)
        deployed = items(runs / f"{args.model}_deployed" / task)
        common = sorted(set(raw) & set(deployed))
        held_items = [i for i in common if i in held]
        print(f"{task:24s} {measure:22s} {rate([raw[i] for i in common], label):>18s} "
              f"{rate([deployed[i] for i in common], label):>18s} {rate([raw[i] for i in held_items], label):>18s} "
              f"{rate([deployed[i] for i in held_items], label):>18s}")


if __name__ == "__main__":
    main()
