"""Training and measuring the moderation heads (`candor moderation train|eval`).

Embeddings are computed once per text with candor.embeddings; the heads are scikit-learn logistic
regressions whose coefficients are saved as plain arrays (candor.moderation.classifier.Heads).
Regularisation strength and the decision thresholds are chosen on the validation split only; the
test split is touched once, by `evaluate`, whose figures go into the card.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from candor.moderation import dataset as ds
from candor.moderation.categories import CATEGORIES
from candor.moderation.classifier import HEADS_FILE, Classifier, Heads
from candor.settings_fields import opt

CARD_FILE = HEADS_FILE.with_name("CARD.md")
C_GRID = (0.3, 1.0, 3.0, 10.0, 30.0)


@dataclass
class TrainConfig:
    data_dir: str = opt("", "data folder (default: CANDOR_DATA_DIR, ../shared/data, $CANDOR_HOME/data)")
    out: str = opt(str(HEADS_FILE), "where the heads are written")
    resplit: bool = opt(False, "draw new train/validation/test ids (changes what is held out)")
    max_false_flags: float = opt(0.08, "input threshold: the lowest one whose false-flag rate on the validation "
                                 "split's XSTest safe prompts stays at or under this")
    hidden: int = opt(256, "hidden units of the input head's perceptron")
    hard_negative_copies: int = opt(2, "copies of each hard harmless training prompt (XSTest safe, Candor's own)")
    output_target_recall: float = opt(0.95, "output threshold: the highest one whose recall on the output validation split reaches this")


def _cache_path() -> Path:
    from candor.config import settings

    return settings().home / "cache" / "moderation-embeddings.npz"


def _embed_all(texts: list[str], encoder) -> dict[str, np.ndarray]:
    """Embeddings of `texts`, reusing a cache in $CANDOR_HOME/cache keyed by SHA-256 of the text
    (training and evaluation embed the same few thousand texts again and again)."""
    import hashlib

    def key(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    unique = sorted(set(texts))
    cache: dict[str, np.ndarray] = {}
    path = _cache_path()
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            cache = dict(zip(z["keys"].tolist(), z["vectors"]))
    missing = [t for t in unique if key(t) not in cache]
    if missing:
        cache.update(zip((key(t) for t in missing), encoder.encode(missing)))
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            np.savez(f, keys=np.array(list(cache)), vectors=np.stack(list(cache.values())))
    return {t: cache[key(t)] for t in unique}


def _fill_categories(examples: list[ds.Example], vec: dict[str, np.ndarray]) -> list[ds.Example]:
    """Harmful examples no rule labelled get the category of their nearest labelled harmful example."""
    from dataclasses import replace

    labelled = [e for e in examples if e.label and e.category]
    if not labelled:
        return examples
    matrix = np.stack([vec[e.text] for e in labelled])
    out = []
    for e in examples:
        if e.label and not e.category:
            nearest = labelled[int(np.argmax(matrix @ vec[e.text]))]
            e = replace(e, category=nearest.category)
        out.append(e)
    return out


def filled_inputs(data_dir: str | None, encoder) -> tuple[list[ds.Example], dict[str, np.ndarray]]:
    """Every input example with its category (nearest labelled neighbour where no rule gave one),
    and the embeddings of their texts."""
    inputs = ds.input_examples(data_dir)
    vec = _embed_all([e.text for e in inputs], encoder)
    return _fill_categories(inputs, vec), vec


def _threshold_for_recall(scores: np.ndarray, labels: np.ndarray, target: float) -> float:
    """The highest threshold whose recall on `labels` reaches `target` (0.5 if none do)."""
    positives = np.sort(scores[labels == 1])[::-1]
    if len(positives) == 0:
        return 0.5
    k = int(np.ceil(target * len(positives))) - 1
    return float(min(0.5, max(1e-4, positives[min(k, len(positives) - 1)] - 1e-6)))


HARD_NEGATIVES = {"xstest", "candor-safe-edgy", "candor-benign"}


def _threshold_for_false_flags(scores: np.ndarray, negatives: np.ndarray, limit: float) -> float:
    """The lowest threshold (on a 0.05 grid) whose false-flag rate on `negatives` is <= limit."""
    for t in np.arange(0.05, 0.96, 0.05):
        if (scores[negatives] >= t).mean() <= limit + 1e-9:
            return float(round(t, 2))
    return 0.95


def _fit_binary(x_train, y_train, x_val, y_val):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss

    best = None
    for c in C_GRID:
        model = LogisticRegression(C=c, class_weight="balanced", max_iter=2000).fit(x_train, y_train)
        loss = log_loss(y_val, model.predict_proba(x_val)[:, 1], labels=[0, 1])
        if best is None or loss < best[0]:
            best = (loss, c, model)
    return best[2], best[1]


def train(config: TrainConfig, log=print) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression

    from candor.embeddings import encoder

    enc = encoder()
    inputs = ds.input_examples(config.data_dir or None)
    outputs = ds.output_examples(config.data_dir or None)
    if config.resplit or not ds.SPLITS_FILE.exists():
        ds.write_splits(inputs, outputs)
        log(f"drew new splits into {ds.SPLITS_FILE}")
    log(f"embedding {len(inputs)} requests and {len(outputs)} answers")
    vec = _embed_all([e.text for e in inputs] + [e.text for e in outputs] + [e.prompt for e in outputs], enc)
    inputs = _fill_categories(inputs, vec)
    parts = ds.split(inputs, "input")

    def xy(rows):
        return np.stack([vec[e.text] for e in rows]), np.array([e.label for e in rows])

    from sklearn.neural_network import MLPClassifier

    x_tr, y_tr = xy(parts["train"])
    x_va, y_va = xy(parts["validation"])
    hard = [e for e in parts["train"] if e.source in HARD_NEGATIVES and not e.label]
    x_mlp, y_mlp = xy(parts["train"] + hard * (config.hard_negative_copies - 1))
    harm = MLPClassifier((config.hidden,), alpha=1e-2, max_iter=500, random_state=0).fit(x_mlp, y_mlp)
    linear, c_harm = _fit_binary(x_tr, y_tr, x_va, y_va)  # the simpler head, kept for the comparison
    xs_safe = np.array([e.source == "xstest" and not e.label for e in parts["validation"]])
    comparison = {}
    for name, model in (("perceptron (shipped)", harm), (f"logistic regression C={c_harm}", linear)):
        p_va = model.predict_proba(x_va)[:, 1]
        t = _threshold_for_false_flags(p_va, xs_safe, config.max_false_flags)
        comparison[name] = {"threshold": t, "validation_recall": round(float((p_va[y_va == 1] >= t).mean()), 3),
                            "validation_xstest_false_flags": round(float((p_va[xs_safe] >= t).mean()), 3)}
    harmful_train = [e for e in parts["train"] if e.label]
    cat_model = LogisticRegression(C=3.0, max_iter=3000).fit(
        np.stack([vec[e.text] for e in harmful_train]), [CATEGORIES.index(e.category) for e in harmful_train])
    cat_w = np.zeros((len(CATEGORIES), x_tr.shape[1]), np.float32)
    cat_b = np.full(len(CATEGORIES), -30.0, np.float32)  # a category with no training example never wins
    for row, cls in enumerate(cat_model.classes_):
        cat_w[cls], cat_b[cls] = cat_model.coef_[row], cat_model.intercept_[row]
    in_threshold = comparison["perceptron (shipped)"]["threshold"]

    oparts = ds.split(outputs, "output")

    def oxy(rows):
        zero = np.zeros(x_tr.shape[1], np.float32)
        return (np.stack([np.concatenate([vec[e.prompt] if e.prompt else zero, vec[e.text]]) for e in rows]),
                np.array([e.label for e in rows]))

    ox_tr, oy_tr = oxy(oparts["train"])
    ox_va, oy_va = oxy(oparts["validation"])
    out_model, c_out = _fit_binary(ox_tr, oy_tr, ox_va, oy_va)
    out_threshold = _threshold_for_recall(out_model.predict_proba(ox_va)[:, 1], oy_va, config.output_target_recall)

    heads = Heads(harm.coefs_[0], harm.intercepts_[0], harm.coefs_[1][:, 0], float(harm.intercepts_[1][0]),
                  cat_w, cat_b, CATEGORIES,
                  out_model.coef_[0].astype(np.float32), float(out_model.intercept_[0]), in_threshold, out_threshold)
    heads.save(Path(config.out))
    summary = {"input_examples": {s: len(v) for s, v in parts.items()},
               "output_examples": {s: len(v) for s, v in oparts.items()},
               "input_head": f"perceptron, {config.hidden} ReLU units, alpha 0.01, hard harmless prompts x"
                             f"{config.hard_negative_copies}", "comparison": comparison,
               "output_C": c_out, "input_threshold": in_threshold,
               "output_threshold": out_threshold,
               "train_sources": dict(Counter(f"{e.source}/{'harmful' if e.label else 'harmless'}"
                                             for e in parts["train"])),
               "train_categories": dict(Counter(e.category for e in harmful_train))}
    log(json.dumps(summary, indent=1))
    return summary


def _pr(pred: np.ndarray, gold: np.ndarray) -> dict[str, float | int]:
    tp = int((pred & gold).sum())
    return {"precision": round(tp / max(1, int(pred.sum())), 3), "recall": round(tp / max(1, int(gold.sum())), 3),
            "support": int(gold.sum())}


def evaluate(heads_path: str | Path = HEADS_FILE, data_dir: str | None = None, split: str = "test",
             classifier: Classifier | None = None) -> dict[str, Any]:
    """The heads on one split: recall on harmful requests, false flags on XSTest's safe prompts
    and on every harmless request, precision/recall per category, and the output head."""
    from candor.embeddings import encoder

    clf = classifier or Classifier(Heads.load(Path(heads_path)), encoder())
    h = clf.heads
    filled, vec = filled_inputs(data_dir, clf.encoder)
    inputs = ds.split(filled, "input")[split]
    scores = clf.score_vectors(np.stack([vec[e.text] for e in inputs]))  # = score_inputs, from the cache
    flagged = np.array([s.harmful >= h.input_threshold for s in scores])
    gold = np.array([bool(e.label) for e in inputs])
    xs_safe = np.array([e.source == "xstest" and not e.label for e in inputs])
    result: dict[str, Any] = {
        "split": split, "input_threshold": round(h.input_threshold, 4), "requests": len(inputs),
        "harmful": int(gold.sum()), "recall": round(float(flagged[gold].mean()), 3),
        "false_flag_rate_xstest_safe": round(float(flagged[xs_safe].mean()), 3),
        "xstest_safe_held_out": int(xs_safe.sum()),
        "false_flag_rate_all_harmless": round(float(flagged[~gold].mean()), 3),
        "harmless": int((~gold).sum()),
    }
    by_source = {}
    for source in sorted({e.source for e in inputs}):
        mask = np.array([e.source == source for e in inputs])
        for lab, name in ((True, "recall"), (False, "false_flag_rate")):
            m = mask & (gold == lab)
            if m.any():
                by_source[f"{source} {name}"] = f"{flagged[m].mean():.3f} of {int(m.sum())}"
    result["by_source"] = by_source
    per_cat = {}
    for c in CATEGORIES:
        pred = flagged & np.array([s.top == c for s in scores])
        per_cat[c] = _pr(pred, np.array([bool(e.label) and e.category == c for e in inputs]))
    result["per_category"] = per_cat

    outputs = ds.split(ds.output_examples(data_dir), "output")[split]
    zero = np.zeros(h.harm_w1.shape[0], np.float32)
    prompts = [e.prompt for e in outputs if e.prompt]
    pv = dict(zip(prompts, clf.embed(prompts))) if prompts else {}
    av = clf.embed([e.text for e in outputs])
    op = clf.output_probs(np.stack([pv[e.prompt] if e.prompt else zero for e in outputs]), av)
    ogold = np.array([bool(e.label) for e in outputs])
    opred = op >= h.output_threshold
    result["output"] = {"answers": len(outputs), **_pr(opred, ogold),
                        "accuracy": round(float((opred == ogold).mean()), 3),
                        "output_threshold": round(h.output_threshold, 4)}
    result["output_judge_agreement"] = judge_agreement(clf, data_dir)
    return result


def judge_agreement(clf: Classifier, data_dir: str | None = None) -> dict[str, Any]:
    """The output head against the hand labels of SmolLM2's answers (candor/evals/labels): an
    answer is harmful when it was labelled `compliance` to a harmlessness prompt."""
    from candor.evals.judge_labels import load_labels, requests

    rows = load_labels()
    asked = requests(data_dir)
    rows = [r for r in rows if r["item"] in asked]
    prompts = clf.embed([asked[r["item"]][0] for r in rows])
    answers = clf.embed([r["answer"] for r in rows])
    pred = clf.output_probs(prompts, answers) >= clf.heads.output_threshold
    gold = np.array([r["task"].startswith("harmlessness") and r["label"] == "compliance" for r in rows])
    return {"answers": len(rows), "agreement": round(float((pred == gold).mean()), 3),
            "harmful_labelled": int(gold.sum()), **_pr(pred, gold)}


def write_card(summary: dict[str, Any], figures: dict[str, Any], path: Path = CARD_FILE) -> None:
    from candor.moderation.card import render

    path.write_text(render(summary, figures, dt.date.today().isoformat()), encoding="utf-8")
