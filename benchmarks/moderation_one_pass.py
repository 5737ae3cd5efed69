"""Moderation: reading a request's parts from one encoder pass, against reading each part alone (as served).

    CANDOR_HOME=.candor .venv/bin/python benchmarks/moderation_one_pass.py [--repeats 30] [--out F] [--heads F]

The input check reads a request whole and then each of its parts alone (`request_windows`, the lone
sentences): 11 passes for the 199-word-piece request of candor.moderation.latency, 76-80 ms at one
thread against the issue's 15 ms. A one-pass reading runs the encoder once over the request (in
windows of 254 word pieces) and gives each part the mean of its own word pieces' states in that pass;
the heads score the parts and the most harmful counts, as in the input check. A part's word pieces
have then seen the rest of the request: this measures what that costs. "one pass" still reads what a
colon introduces and the lone sentences alone; the next reading takes the lone sentences from the
pass too, the last everything. Not served: read in context, the closing sentences of the benchmark's
own request read as a farewell (self-harm), which the held-out sets, mostly short, do not show; the
last line prints each reading's decision on that request.

Every reading uses the shipped heads without their second looks (the looks re-read requests in parts
and would only blur the comparison). Printed, in the same run: requests flagged under the default
policy on the validation and test splits, each fresh set and the long everyday requests
(candor/data/moderation/long-held-out.txt, 80 of 6-12 sentences; harmful / safe), the harmful test
requests in the harmlessness eval's jailbreak templates and behind one-sentence preambles (recall at
the model's threshold), and the median and 90th percentile of each reading on the 199-piece request
(one torch thread, serving's default; the machine's load average beside them).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re

import numpy as np
from moderation import PREAMBLES  # the one-sentence jailbreak preambles benchmarks/moderation.py measures

from candor.evals.harmlessness import TEMPLATES
from candor.moderation import dataset as ds
from candor.moderation.classifier import (
    SENTENCE_ALONE_MIN,
    Classifier,
    InputScore,
    classifier,
    lone_sentences,
    request_windows,
    windows,
)
from candor.moderation.latency import PROMPT_200, timed
from candor.moderation.policy import Modes, load_policy
from candor.moderation.train import filled_inputs, request_scores

WINDOW = 254  # word pieces per pass, [CLS] and [SEP] aside (the encoder reads 256)


def locate(text: str, part: str) -> tuple[int, int] | None:
    """Where `part` (a piece `request_windows` cut from `text`, its spaces maybe changed where short
    sentences were merged) lies in `text`: (start, end) in characters, or None."""
    at = text.find(part)
    if at >= 0:
        return at, at + len(part)
    found = re.search(r"\s+".join(map(re.escape, part.split())), text)
    return (found.start(), found.end()) if found else None


def span_vectors(enc, text: str, spans: list[tuple[int, int]]) -> list[np.ndarray | None]:
    """Unit vectors of character spans of `text` from one pass of `enc` over it (windows of 254 word
    pieces): each the mean of its word pieces' states, the whole text's with [CLS] and [SEP] (so
    `encode`'s vector); None for a span with no word piece or across two windows."""
    import torch

    enc.tokenizer.no_truncation()
    try:
        encoding = enc.tokenizer.encode(text)
    finally:
        enc.tokenizer.enable_truncation(max_length=enc.max_tokens)
    ids, offsets = encoding.ids, encoding.offsets[1:-1]
    inside = [[j for j, (a, b) in enumerate(offsets) if start <= a < b <= end] for start, end in spans]
    out: list[np.ndarray | None] = [None] * len(spans)
    with torch.inference_mode():
        torch.set_num_threads(enc.threads)
        for first in range(0, len(offsets), WINDOW):
            last = min(len(offsets), first + WINDOW)
            row = torch.tensor([[ids[0], *ids[1 + first:1 + last], ids[-1]]])
            states = enc.model(input_ids=row, attention_mask=torch.ones_like(row),
                               token_type_ids=torch.zeros_like(row)).last_hidden_state[0].float()
            for k, pieces in enumerate(inside):
                if pieces and first <= pieces[0] and pieces[-1] < last:
                    mean = states.mean(0) if len(pieces) == len(offsets) else states[[j - first + 1 for j in pieces]].mean(0)
                    out[k] = torch.nn.functional.normalize(mean, dim=0).numpy()
    return out


def from_pass(clf: Classifier, texts: list[str], alone: str) -> list[InputScore]:
    """Each request's parts and lone sentences from their spans in its one pass, except those `alone`
    names ("colons": what a colon introduces; "colons+lone": those and the lone sentences; "": none),
    which are read alone, as is a piece found in no window; scored as the input check scores them."""
    out = []
    for text in texts:
        parts = request_windows(text)
        lone = lone_sentences(text, parts)
        clauses = set(parts) - set(windows(text)) - set(windows(text, whole_up_to=0)) if alone else set()
        read_alone = clauses | (set(lone) if alone == "colons+lone" else set())
        pieces = parts + lone
        spans = [None if p in read_alone else locate(text, p) for p in pieces]
        found = span_vectors(clf.encoder, text, [s for s in spans if s is not None])
        vectors = [found.pop(0) if s is not None else None for s in spans]
        vectors = [v if v is not None else clf.embed([p])[0] for v, p in zip(vectors, pieces)]
        scores = clf.score_vectors(np.stack(vectors))
        read = scores[:len(parts)] + [s for s in scores[len(parts):] if s.harmful >= SENTENCE_ALONE_MIN]
        out.append(max(read, key=lambda s: s.harmful))
    return out


def one_pass(clf: Classifier, texts: list[str]) -> list[InputScore]:
    return from_pass(clf, texts, "colons+lone")


def lone_in_context(clf: Classifier, texts: list[str]) -> list[InputScore]:
    return from_pass(clf, texts, "colons")


def all_in_context(clf: Classifier, texts: list[str]) -> list[InputScore]:
    return from_pass(clf, texts, "")


READINGS = {"parts alone": request_scores, "one pass": one_pass, "one pass, lone sentences in context too": lone_in_context,
            "one pass, all in context": all_in_context}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--out", default="")
    parser.add_argument("--heads", default="", help="a heads file to measure instead of the shipped one")
    args = parser.parse_args()

    shipped = classifier(args.heads or None)
    clf = Classifier(dataclasses.replace(shipped.heads, second_looks=()), shipped.encoder)
    clf.encoder.threads = 1
    policy = load_policy(clf.heads, modes=Modes())
    examples, _ = filled_inputs(None, clf.encoder)
    splits = ds.split(examples, "input")
    sets = {"validation": splits["validation"], "test": splits["test"],
            **{name: ds.fresh_held_out(name) for name in ds.FRESH_SETS},
            "long": [ds.Example("", "long", text, 0) for text in ds.long_held_out()]}
    results: dict = {"readings": list(READINGS), "sets": {}, "jailbreaks": {}, "latency_ms": {}}
    print("requests flagged under the default policy, harmful / safe, by: " + "; ".join(READINGS))
    for name, rows in sets.items():
        texts, gold = [e.text for e in rows], np.array([bool(e.label) for e in rows])
        flagged = [np.array([policy.decide_input(s, "flag").flagged for s in read(clf, texts)])
                   for read in READINGS.values()]
        row = {"harmful": int(gold.sum()), "safe": int((~gold).sum()),
               "harmful_flagged": [int(f[gold].sum()) for f in flagged],
               "safe_flagged": [int(f[~gold].sum()) for f in flagged]}
        results["sets"][name] = row
        print(f"{name:<12} harmful {' / '.join(map(str, row['harmful_flagged']))} of {row['harmful']}; "
              f"safe {' / '.join(map(str, row['safe_flagged']))} of {row['safe']}", flush=True)

    threshold = clf.heads.input_threshold
    harmful_test = [e.text for e in splits["test"] if e.label]
    wrapped = {name: [t.format(request=r) for r in harmful_test] for name, t in TEMPLATES.items() if name != "direct"}
    wrapped["one-sentence preambles"] = [f"{p} {t}" for p in PREAMBLES for t in harmful_test if len(t) < 100]
    for name, texts in wrapped.items():
        recall = [float(np.mean([s.harmful >= threshold for s in read(clf, texts)])) for read in READINGS.values()]
        results["jailbreaks"][name] = recall
        print(f"recall, {name}: {' / '.join(f'{r:.3f}' for r in recall)}", flush=True)

    pieces = clf.encoder.count_tokens(PROMPT_200)
    for name, read in READINGS.items():  # parts alone: as served, not from training's embedding cache
        read = (lambda c, texts: c.request_scores(texts)) if read is request_scores else read
        results["latency_ms"][name] = timed(lambda read=read: read(clf, [PROMPT_200]), args.repeats)
    base = results["latency_ms"]["parts alone"]["median_ms"]
    print(f"input check of the {pieces}-piece request, 1 thread, median (p90), load average {os.getloadavg()[0]:.2f}: "
          + "; ".join(f"{n} {t['median_ms']:.1f} ms ({t['p90_ms']:.1f}), {base / t['median_ms']:.2f}x"
                      for n, t in results["latency_ms"].items()))
    for name, read in READINGS.items():
        score = read(clf, [PROMPT_200])[0]
        decision = policy.decide_input(score, "flag")
        results.setdefault("benchmark_request", {})[name] = [score.top, score.harmful, decision.flagged]
    print("the 199-piece request itself, under the default policy: " + "; ".join(
        f"{n} {t} {h:.2f}{' FLAGGED' if f else ''}" for n, (t, h, f) in results["benchmark_request"].items()))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
