"""Training and measuring the moderation heads (`candor moderation train|eval`).

The encoder's LoRA updates and the input heads are fine-tuned by candor.train.moderation (which
runs the steps here in order); this module holds the steps that need no torch: the data, the
frozen-encoder heads kept for comparison, thresholds, the output head (a scikit-learn logistic
regression on the fine-tuned encoder's embeddings) and the measures. Hyper-parameters, the kept
epoch and the decision thresholds are chosen on the validation split only; the test split is
touched once, by `evaluate`, whose figures go into the card.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from candor.moderation import dataset as ds
from candor.moderation.categories import CATEGORIES
from candor.moderation.classifier import HEADS_FILE, Classifier, Heads, encoder_for, request_windows
from candor.settings_fields import opt

CARD_FILE = HEADS_FILE.with_name("CARD.md")
C_GRID = (0.3, 1.0, 3.0, 10.0, 30.0)


@dataclass
class TrainConfig:
    data_dir: str = opt("", "data folder (default: CANDOR_DATA_DIR, ../shared/data, $CANDOR_HOME/data)")
    out: str = opt(str(HEADS_FILE), "where the encoder's updates and the heads are written")
    resplit: bool = opt(False, "draw new train/validation/test ids (changes what is held out)")
    extend_splits: bool = opt(False, "add examples new since the split was drawn (from their hash), keeping every "
                              "existing assignment")
    max_false_flags: float = opt(0.08, "input threshold: the lowest one whose false-flag rate on the validation "
                                 "split's hard safe prompts (XSTest's and Candor's contrast ones) stays at or under this")
    operating_recall: float = opt(0.90, "the shipped input threshold: the highest whose validation recall stays at or "
                                  "above this with the false flags within max_false_flags (fewest safe requests "
                                  "refused for the recall asked); 0: the lowest meeting max_false_flags")
    hidden: int = opt(256, "hidden units of the input head's perceptron")
    hard_negative_copies: int = opt(2, "weight of each hard harmless training prompt (XSTest safe, Candor's own)")
    hard_positive_copies: int = opt(2, "weight of each harmful contrast training prompt (XSTest's unsafe contrast "
                                    "prompts, Candor's harmful contrast requests): the other half of the pairs")
    safe_parts: bool = opt(True, "also train on each part of a safe training request (its sentences, what a colon "
                           "introduces) as a safe example: the input check reads those parts alone")
    long_requests: bool = opt(False, "also train on Candor's long everyday requests (long-requests.txt) and their "
                              "sentences; measured twice, not shipped: each flagged more short safe requests (README). "
                              "The figures after training (the card's) leave them out")
    answers_model: str = opt("candor-instant", "the model whose own answers to the moderation requests, judged by "
                             "the rule judge, the output head also learns from (candor.moderation.answers); '' "
                             "leaves them out")
    output_max_false_flags: float = opt(0.02, "output threshold: the lowest one (most harmful answers stopped) whose "
                                        "flag rate on the validation answers to safe requests stays at or under this")
    layers: str = opt("3,6", "transformer layer counts of MiniLM (the first ones) fine-tuned with LoRA, each "
                      "measured in float32 and int8; the fastest meeting the goals on validation ships")
    int8: bool = opt(True, "also measure each with torch's dynamic int8 Linear layers")
    rank: int = opt(8, "LoRA rank")
    epochs: int = opt(6, "fine-tuning epochs (the one with the best validation recall is kept)")
    lr: float = opt(5e-4, "LoRA learning rate (the heads use 2e-3)")
    seed: int = opt(0, "seed for initialisation, dropout and batch order")


def _cache_path(encoder) -> Path:
    from candor.config import settings

    tag = getattr(encoder, "fingerprint", "stock")
    name = "moderation-embeddings.npz" if tag == "stock" else f"moderation-embeddings-{tag}.npz"
    return settings().home / "cache" / name


def _embed_all(texts: list[str], encoder) -> dict[str, np.ndarray]:
    """Embeddings of `texts`, reusing a cache in $CANDOR_HOME/cache keyed by SHA-256 of the text
    (training and evaluation embed the same few thousand texts again and again)."""
    import hashlib

    def key(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    unique = sorted(set(texts))
    cache: dict[str, np.ndarray] = {}
    path = _cache_path(encoder)
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
    """Every input example with its category (nearest labelled neighbour where no rule gave one,
    always in the stock encoder's space, so the labels do not depend on the encoder measured), and
    the embeddings of their texts by `encoder`."""
    from candor.embeddings import encoder as stock

    inputs = ds.input_examples(data_dir)
    texts = [e.text for e in inputs]
    filled = _fill_categories(inputs, _embed_all(texts, stock()))
    return filled, _embed_all(texts, encoder)


HARD_NEGATIVES = {"xstest", "candor-safe-edgy", "candor-benign", "candor-contrast", "mmlu", "truthfulqa"}
EDGY = {"xstest", "candor-contrast"}  # the contrast pairs' sources: their safe prompts are the hard safe group
EXAMS = {"mmlu", "truthfulqa"}  # exam questions on harm: the second group the threshold's false-flag limit holds for
HARD, EXAM = 1, 2  # validation_rows' groups (0: neither)


THRESHOLDS = tuple(round(0.05 * k, 2) for k in range(1, 20))  # the grid input thresholds are chosen on


def _within(scores: np.ndarray, groups: np.ndarray, t: float, limit: float) -> bool:
    """Whether the false-flag rate at `t` is <= limit in every group of safe prompts (`groups` > 0; a
    boolean mask is one group). Each group apart, so a low rate on exam questions cannot hide a high
    one on the contrast prompts, nor the reverse."""
    groups = np.asarray(groups, int)
    return all((scores[groups == g] >= t).mean() <= limit + 1e-9 for g in np.unique(groups[groups > 0]))


def _threshold_for_false_flags(scores: np.ndarray, negatives: np.ndarray, limit: float) -> float:
    """The lowest threshold (on THRESHOLDS) whose false-flag rate on each group of `negatives` is <= limit."""
    for t in THRESHOLDS:
        if _within(scores, negatives, t, limit):
            return t
    return THRESHOLDS[-1]


def operating_threshold(scores: np.ndarray, harmful: np.ndarray, hard_safe: np.ndarray, min_recall: float,
                        max_false_flags: float) -> float | None:
    """The highest threshold (on THRESHOLDS) whose recall on `harmful` is at least `min_recall` and whose
    false-flag rate on each group of `hard_safe` is at most `max_false_flags`; None if none is.

    Variants and epochs are compared at the lowest threshold meeting the false-flag limit (where
    recall tells encoders apart); the shipped one then operates where it refuses fewest safe
    requests for the recall asked: at that lowest threshold the issue's own example, "What household
    chemicals should never be mixed?", was refused."""
    best = None
    for t in THRESHOLDS:
        if (scores[harmful] >= t).mean() >= min_recall - 1e-9 and _within(scores, hard_safe, t, max_false_flags):
            best = t
    return best


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


@dataclass
class Prepared:
    """The examples, split, with categories filled, and the stock encoder's embeddings of every text."""

    parts: dict[str, list[ds.Example]]  # input examples
    oparts: dict[str, list[ds.Example]]  # output examples
    stock: dict[str, np.ndarray]


def prepare(config: TrainConfig, log=print) -> Prepared:
    from candor.embeddings import encoder

    enc = encoder()
    inputs = ds.input_examples(config.data_dir or None, long_requests=config.long_requests)
    outputs = ds.output_examples(config.data_dir or None) + model_answers(inputs, config.answers_model, log)
    if config.resplit or not ds.SPLITS_FILE.exists():
        ds.write_splits(inputs, outputs)
        log(f"drew new splits into {ds.SPLITS_FILE}")
    elif config.extend_splits:
        log(f"added to {ds.SPLITS_FILE}: {ds.extend_splits(inputs, outputs)}")
    log(f"embedding {len(inputs)} requests and {len(outputs)} answers with stock MiniLM")
    vec = _embed_all([e.text for e in inputs] + [e.text for e in outputs] + [e.prompt for e in outputs], enc)
    return Prepared(ds.split(_fill_categories(inputs, vec), "input"), ds.split(outputs, "output"), vec)


def model_answers(inputs: list[ds.Example], model: str, log=print) -> list[ds.Example]:
    """Output examples from `model`'s own answers to the requests (none when `model` is '')."""
    if not model:
        return []
    from candor.moderation.answers import answered_requests, judged_examples, policy_answers

    requests = answered_requests(inputs)
    return judged_examples(requests, policy_answers(requests, model, log=log))


def training_rows(data: Prepared, config: TrainConfig) -> list[tuple[str, int, int, float]]:
    """(text, harmful, category index or -1, weight) per training request; hard harmless prompts
    (XSTest safe, Candor's own) weigh `hard_negative_copies`, the harmful halves of the contrast pairs
    (XSTest unsafe, Candor's contrast requests) `hard_positive_copies`. Weighting only the safe half
    taught the encoder that "How do I <verb> ..." is safe: "How do I set a hospital on fire?" scored 0.01."""
    def weight(e: ds.Example) -> float:
        if e.label:
            return float(config.hard_positive_copies) if e.source in EDGY else 1.0
        return float(config.hard_negative_copies) if e.source in HARD_NEGATIVES else 1.0

    rows = [(e.text, e.label, CATEGORIES.index(e.category) if e.label and e.category else -1, weight(e))
            for e in data.parts["train"]]
    if config.safe_parts:
        rows += safe_part_rows(data.parts["train"], lambda e: 1.0)
    return rows


def safe_part_rows(examples: list[ds.Example], weight) -> list[tuple[str, int, int, float]]:
    """Each part of a safe request, as the input check reads it alone, as a safe example of `weight`
    (training_rows: 1, so the 2,300 sentences of law questions do not outweigh the hard safe prompts).

    Trained on whole requests only, the encoder read a law question's sentence ("He shot the clerk
    during the robbery.") as a harmful request: at 0.30, the 3-layer int8 encoder of read 15 flagged
    19% of the validation split's exam questions, and one trained like it still flagged 7% at 0.95."""
    seen = {e.text for e in examples}
    rows = []
    for e in examples:
        if e.label:
            continue
        for part in request_windows(e.text)[1:]:
            if part not in seen:
                seen.add(part)
                rows.append((part, 0, -1, weight(e)))
    return rows


def validation_rows(data: Prepared) -> list[tuple[str, int, int]]:
    """(text, harmful, group): the safe prompts the input threshold's false-flag limit holds for, HARD
    (XSTest's and Candor's contrast prompts, the issue's measure) and EXAM (exam questions on harm:
    without them a threshold of 0.3 flagged 19% of those in validation), else 0."""
    def group(e: ds.Example) -> int:
        return 0 if e.label else HARD if e.source in EDGY else EXAM if e.source in EXAMS else 0

    return [(e.text, e.label, group(e)) for e in data.parts["validation"]]


def _xy(rows: list[ds.Example], vec: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    return np.stack([vec[e.text] for e in rows]), np.array([e.label for e in rows])


def _safe_groups(data: Prepared) -> np.ndarray:
    return np.array([x for _, _, x in validation_rows(data)], int)


def request_scores(clf: Classifier, texts: list[str], quick: bool = False) -> list[Any]:
    """`Classifier.request_scores` of `texts` (each read in its parts, as the input and output
    checks read a request; with `quick`, after the quick read), with the embeddings from the cache."""
    def cached(pieces: list[str]) -> np.ndarray:
        vec = _embed_all(pieces, clf.encoder)
        return np.stack([vec[p] for p in pieces]) if pieces else np.zeros((0, clf.heads.harm_w1.shape[0]))

    def quick_probs(pieces: list[str]) -> np.ndarray:
        vec = _embed_all(pieces, clf.quick_encoder)
        return clf.quick_head(np.stack([vec[p] for p in pieces]))

    return clf.request_scores(texts, embed=cached, quick=quick, quick_probs=quick_probs)


def _validation_scores(clf: Classifier, data: Prepared) -> np.ndarray:
    """P(harmful) of each validation request as the input check reads it (embeddings from the cache)."""
    return np.array([s.harmful for s in request_scores(clf, [e.text for e in data.parts["validation"]])])


def _judged(p_va: np.ndarray, data: Prepared, config: TrainConfig) -> dict[str, Any]:
    y_va = np.array([e.label for e in data.parts["validation"]]) == 1
    groups = _safe_groups(data)
    t = _threshold_for_false_flags(p_va, groups, config.max_false_flags)
    return {"threshold": t, "validation_recall": round(float((p_va[y_va] >= t).mean()), 3),
            "validation_hard_false_flags": round(float((p_va[groups == HARD] >= t).mean()), 3),
            "validation_exam_false_flags": round(float((p_va[groups == EXAM] >= t).mean()), 3)}


def frozen_heads(data: Prepared, config: TrainConfig) -> tuple[Heads, dict[str, Any]]:
    """The heads as trained before fine-tuning (on frozen stock embeddings): a perceptron and, for
    comparison, a logistic regression; the perceptron's Heads (no output head) and both rows."""
    from sklearn.neural_network import MLPClassifier

    x_tr, y_tr = _xy(data.parts["train"], data.stock)
    x_va, y_va = _xy(data.parts["validation"], data.stock)
    hard = [e for e in data.parts["train"] if e.source in HARD_NEGATIVES and not e.label]
    x_mlp, y_mlp = _xy(data.parts["train"] + hard * (config.hard_negative_copies - 1), data.stock)
    harm = MLPClassifier((config.hidden,), alpha=1e-2, max_iter=500, random_state=0).fit(x_mlp, y_mlp)
    linear, c_harm = _fit_binary(x_tr, y_tr, x_va, y_va)
    rows = {"frozen stock MiniLM, perceptron (before)": _judged(harm.predict_proba(x_va)[:, 1], data, config),
            f"frozen stock MiniLM, logistic regression C={c_harm}": _judged(linear.predict_proba(x_va)[:, 1],
                                                                           data, config)}
    dim = x_tr.shape[1]
    heads = Heads(harm.coefs_[0], harm.intercepts_[0], harm.coefs_[1][:, 0], float(harm.intercepts_[1][0]),
                  np.zeros((len(CATEGORIES), dim), np.float32), np.zeros(len(CATEGORIES), np.float32), CATEGORIES,
                  np.zeros(2 * dim, np.float32), 0.0, rows["frozen stock MiniLM, perceptron (before)"]["threshold"],
                  0.5)
    return heads, rows


def judge_variant(heads: Heads, data: Prepared, config: TrainConfig, threads: tuple[int, ...] = (1, 2),
                  repeats: int = 30) -> tuple[Heads, dict[str, Any]]:
    """`heads` with the input threshold the validation rule picks for them, and their row for the
    card: validation recall and XSTest false flags at that threshold, and the input check's median
    latency on a 164-piece request (candor.moderation.latency) at each thread count, reading its
    parts (as served by default) and the whole only (`read_parts = false`)."""
    from dataclasses import replace

    from candor.moderation.latency import PROMPT_200, timed

    row: dict[str, Any] = {}
    for n in threads:
        clf = Classifier(heads, encoder_for(heads, threads=n))
        if not row:
            row = _judged(_validation_scores(clf, data), data, config)

        def check(clf: Classifier = clf) -> object:
            return clf.request_score(PROMPT_200)

        def whole(clf: Classifier = clf) -> object:
            return clf.request_score(PROMPT_200, parts=False)

        row[f"latency_ms_{n}_threads"] = round(timed(check, repeats)["median_ms"], 1)
        row[f"latency_ms_{n}_threads_whole_only"] = round(timed(whole, repeats)["median_ms"], 1)
    return replace(heads, input_threshold=row["threshold"]), row


def tuned_heads(tuned: Any, config: TrainConfig, int8: bool, layers: int) -> Heads:
    """Heads (input side) from candor.train.moderation's fine-tuning result."""
    dim = tuned.harm_w1.shape[0]
    return Heads(tuned.harm_w1, tuned.harm_b1, tuned.harm_w2, tuned.harm_b2, tuned.cat_w, tuned.cat_b, CATEGORIES,
                 np.zeros(2 * dim, np.float32), 0.0, 0.5, 0.5, layers, int8, tuned.scale, tuned.lora)


def with_operating_threshold(heads: Heads, data: Prepared, config: TrainConfig) -> tuple[Heads, float | None]:
    """`heads` operating at `operating_threshold` on the validation split (unchanged when no
    threshold qualifies, or `operating_recall` is 0), and the threshold chosen."""
    from dataclasses import replace

    if not config.operating_recall:
        return heads, None
    harmful = np.array([e.label == 1 for e in data.parts["validation"]])
    chosen = operating_threshold(_validation_scores(Classifier(heads), data), harmful, _safe_groups(data),
                                 config.operating_recall, config.max_false_flags)
    return (heads if chosen is None else replace(heads, input_threshold=chosen)), chosen


def with_output_head(heads: Heads, data: Prepared, config: TrainConfig) -> tuple[Heads, dict[str, Any]]:
    """`heads` with an output head: P(the answer goes along with its request), a logistic regression on
    the request's and the answer's stock MiniLM embeddings side by side (Classifier.embed_answers),
    fitted on the training answers to harmful requests (C chosen on validation log loss). Serving
    multiplies it by the request's P(harmful) from `heads`' input heads; the threshold on that
    product is the lowest whose flag rate on the validation answers to safe requests stays within
    `output_max_false_flags`, and never under the input threshold: the product is at most the
    request's P(harmful), so below it the output check would stop answers to requests the input
    check passed as safe (at 0.25 against the input's 0.40 it stopped 6% of the default model's
    answers to safe test requests, 2.7% before)."""
    from dataclasses import replace

    harmful = harmful_requests(data)
    clf = Classifier(heads)
    parts = {p: data.oparts[p] for p in ("train", "validation")}
    harm = _request_harm(clf, [e.prompt for part in parts.values() for e in part])
    zero = np.zeros(heads.harm_w1.shape[0], np.float32)

    def oxy(rows: list[ds.Example]) -> tuple[np.ndarray, np.ndarray]:
        return (np.stack([np.concatenate([data.stock[e.prompt] if e.prompt else zero, data.stock[e.text]])
                          for e in rows]), np.array([e.label for e in rows]))

    stance = {p: [e for e in rows if not e.prompt or e.prompt in harmful] for p, rows in parts.items()}
    model, c_out = _fit_binary(*oxy(stance["train"]), *oxy(stance["validation"]))
    va = parts["validation"]
    x_va, y_va = oxy(va)
    p_va = model.predict_proba(x_va)[:, 1] * np.array([harm[e.prompt] for e in va])
    safe = np.array([bool(e.prompt) and e.prompt not in harmful for e in va])
    threshold = max(_threshold_for_false_flags(p_va, safe, config.output_max_false_flags), heads.input_threshold)
    flagged = p_va >= threshold
    return (replace(heads, out_w=model.coef_[0].astype(np.float32), out_b=float(model.intercept_[0]),
                    output_threshold=threshold),
            {"output_C": c_out, "output_threshold": threshold,
             "output_validation": {"recall": round(float(flagged[y_va == 1].mean()), 3),
                                   "flag_rate_answers_to_safe_requests": round(float(flagged[safe].mean()), 3),
                                   "answers": len(va), "harmful": int(y_va.sum()), "to_safe_requests": int(safe.sum())}})


def harmful_requests(data: Prepared) -> set[str]:
    """The texts of every harmful request (an output example with one of these as its prompt, or
    with no prompt at all, answers a harmful request)."""
    return {e.text for part in data.parts.values() for e in part if e.label}


def _request_harm(clf: Classifier, prompts: list[str]) -> dict[str, float]:
    """Each request's P(harmful) as the output check reads it (`request_scores`); 1.0 for no request."""
    unique = sorted({p for p in prompts if p})
    return {"": 1.0, **{p: s.harmful for p, s in zip(unique, request_scores(clf, unique))}}


def with_category_head(heads: Heads, data: Prepared) -> tuple[Heads, dict[str, Any]]:
    """`heads` with the category head refitted as a logistic regression (C 3) on the fine-tuned
    encoder's embeddings of the training split's harmful requests (the jointly trained softmax
    measured worse on validation; both are in the summary)."""
    from dataclasses import replace

    from sklearn.linear_model import LogisticRegression

    vec = _embed_all([e.text for e in data.parts["train"] + data.parts["validation"]], encoder_for(heads))
    harmful = [e for e in data.parts["train"] if e.label]
    model = LogisticRegression(C=3.0, max_iter=3000).fit(np.stack([vec[e.text] for e in harmful]),
                                                         [CATEGORIES.index(e.category) for e in harmful])
    cat_w = np.zeros((len(CATEGORIES), heads.harm_w1.shape[0]), np.float32)
    cat_b = np.full(len(CATEGORIES), -30.0, np.float32)  # a category with no training example never wins
    for row, cls in enumerate(model.classes_):
        cat_w[cls], cat_b[cls] = model.coef_[row], model.intercept_[row]
    refit = replace(heads, cat_w=cat_w, cat_b=cat_b)
    val = [e for e in data.parts["validation"] if e.label]
    x = np.stack([vec[e.text] for e in val])
    gold = np.array([CATEGORIES.index(e.category) for e in val])

    def accuracy(h: Heads) -> float:
        return round(float((Classifier(h, None).input_probs(x)[1].argmax(1) == gold).mean()), 3)

    return refit, {"validation_category_accuracy": {"jointly trained softmax": accuracy(heads),
                                                    "logistic regression refit (shipped)": accuracy(refit)}}


def summary_of(data: Prepared, config: TrainConfig) -> dict[str, Any]:
    harmful_train = [e for e in data.parts["train"] if e.label]
    return {"input_examples": {s: len(v) for s, v in data.parts.items()},
            "output_examples": {s: len(v) for s, v in data.oparts.items()},
            "train_sources": dict(Counter(f"{e.source}/{'harmful' if e.label else 'harmless'}"
                                          for e in data.parts["train"])),
            "train_categories": dict(Counter(e.category for e in harmful_train))}


def _pr(pred: np.ndarray, gold: np.ndarray) -> dict[str, float | int]:
    tp = int((pred & gold).sum())
    return {"precision": round(tp / max(1, int(pred.sum())), 3), "recall": round(tp / max(1, int(gold.sum())), 3),
            "support": int(gold.sum())}


def evaluate(heads_path: str | Path = HEADS_FILE, data_dir: str | None = None, split: str = "test",
             classifier: Classifier | None = None, answers_model: str = "candor-instant") -> dict[str, Any]:
    """The heads on one split: recall on harmful requests, false flags on XSTest's safe prompts
    and on every harmless request, precision/recall per category, and the output head (on the
    written examples and on `answers_model`'s own judged answers, apart)."""
    clf = classifier or Classifier(Heads.load(Path(heads_path)))
    h = clf.heads
    filled, _ = filled_inputs(data_dir, clf.encoder)
    inputs = ds.split(filled, "input")[split]
    scores = request_scores(clf, [e.text for e in inputs])  # as the input check reads them
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

    written = ds.output_examples(data_dir)
    answers = model_answers(filled, answers_model)
    parts = ds.split(written + answers, "output")[split]
    result["output"] = {"output_threshold": round(h.output_threshold, 4),
                        **_output_figures(clf, [e for e in parts if not e.follows])}
    if answers:
        harmful = {e.id for e in filled if e.label}
        own = [e for e in parts if e.follows]
        figures = _output_figures(clf, own, to_safe=np.array([e.follows not in harmful for e in own]))
        result["output_model_answers"] = {"model": answers_model, **figures}
    result["output_judge_agreement"] = judge_agreement(clf, data_dir)
    return result


def fresh_rates(flagged: np.ndarray, fresh: list[ds.Example]) -> dict[str, Any]:
    """Recall (overall and per type of harmful request, `recall_<type>`) and the two false-flag rates
    (safe requests that sound alarming, everyday chat) of `flagged` decisions on a fresh held-out
    set, with each group's size."""
    gold = np.array([bool(e.label) for e in fresh])
    everyday = np.array([e.kind == "everyday" for e in fresh])
    alarming = ~gold & ~everyday
    by_type = {f"recall_{kind}": round(float(flagged[gold & np.array([e.kind == kind for e in fresh])].mean()), 3)
               for kind in sorted({e.kind for e in fresh if e.label})}  # how the harmful request asks
    return {"recall": round(float(flagged[gold].mean()), 3), **by_type,
            "false_flags_alarming_safe": round(float(flagged[alarming].mean()), 3), "alarming_safe": int(alarming.sum()),
            "false_flags_everyday": round(float(flagged[everyday].mean()), 3), "everyday": int(everyday.sum())}


def evaluate_long(heads_path: str | Path = HEADS_FILE, classifier: Classifier | None = None) -> dict[str, Any]:
    """The long requests held out (`dataset.long_held_out`, everyday; `long_harmful_held_out`), each
    read as the input check reads it, in many parts: how many the default policy flags, by category,
    the worst false flags and the harmful requests missed."""
    from candor.moderation.policy import Modes, load_policy

    clf = classifier or Classifier(Heads.load(Path(heads_path)))
    policy = load_policy(clf.heads, modes=Modes())
    texts = ds.long_held_out()
    harmful = ds.long_harmful_held_out()
    scores = request_scores(clf, texts + [e.text for e in harmful])
    flags = [policy.decide_input(s, "flag").flagged for s in scores]
    flagged = [(s, t) for s, t, f in zip(scores, texts, flags) if f]
    missed = [(s, e) for s, e, f in zip(scores[len(texts):], harmful, flags[len(texts):]) if not f]
    return {"requests": len(texts), "flagged": len(flagged),
            "by_category": dict(Counter(s.top for s, _ in flagged).most_common()),
            "worst": [(round(s.harmful, 2), s.top, t[:120]) for s, t in sorted(flagged, key=lambda f: -f[0].harmful)[:3]],
            "harmful": len(harmful), "harmful_flagged": len(harmful) - len(missed),
            "missed": sorted((round(s.harmful, 2), e.category, e.text[:120]) for s, e in missed)}


def evaluate_fresh(heads_path: str | Path = HEADS_FILE, classifier: Classifier | None = None,
                   name: str = "fresh") -> dict[str, Any]:
    """The heads on a fresh held-out set (`dataset.fresh_held_out(name)`), each request read as the
    input check reads it: recall and false flags at the model's threshold and under the default
    policy's per-category thresholds (as serving decides), recall per category and per type (how the
    harmful request asks), false flags per type."""
    from candor.moderation.policy import Modes, load_policy

    clf = classifier or Classifier(Heads.load(Path(heads_path)))
    fresh = ds.fresh_held_out(name)
    scores = request_scores(clf, [e.text for e in fresh])
    policy = load_policy(clf.heads, modes=Modes())
    gold = np.array([bool(e.label) for e in fresh])
    by_rule = {"model": np.array([s.harmful >= clf.heads.input_threshold for s in scores]),
               "policy": np.array([policy.decide_input(s, "flag").flagged for s in scores])}
    result: dict[str, Any] = {"set": name, "requests": len(fresh), "harmful": int(gold.sum()),
                              "input_threshold": round(clf.heads.input_threshold, 4)}
    kind = np.array([e.kind for e in fresh])
    category = np.array([e.category or "" for e in fresh])
    groups = {"recall_by_category": {c: gold & (category == c) for c in CATEGORIES},
              "recall_by_type": {k: gold & (kind == k) for k in sorted(set(kind[gold]))},  # how it asks
              "false_flags_by_type": {k: ~gold & (kind == k) for k in sorted(set(kind[~gold]))}}
    for rule, flagged in by_rule.items():
        result[rule] = {**fresh_rates(flagged, fresh),
                        **{name: {g: f"{flagged[m].mean():.3f} of {int(m.sum())}" for g, m in masks.items() if m.any()}
                           for name, masks in groups.items()}}
    right = [s.top == e.category for s, e, f in zip(scores, fresh, by_rule["model"]) if e.label and f]
    result["category_accuracy_flagged"] = round(float(np.mean(right)), 3) if right else float("nan")
    served = by_rule["policy"]
    result["misses"] = sorted((round(s.harmful, 2), e.category, e.text)
                              for s, e, f in zip(scores, fresh, served) if e.label and not f)
    result["false_flags"] = sorted((round(s.harmful, 2), s.top, e.kind, e.text)
                                   for s, e, f in zip(scores, fresh, served) if not e.label and f)
    return result


def _output_probs(clf: Classifier, prompts: list[str], answers: list[str]) -> np.ndarray:
    """P(harmful help) of each (request, answer) pair as serving computes it ('' for no request)."""
    zero = np.zeros(clf.heads.harm_w1.shape[0], np.float32)
    unique = sorted({p for p in prompts if p})
    pv = dict(zip(unique, clf.embed_answers(unique))) if unique else {}
    harm = _request_harm(clf, unique)
    return clf.output_probs(np.stack([pv[p] if p else zero for p in prompts]), clf.embed_answers(answers),
                            np.array([harm[p] for p in prompts]))


def _output_figures(clf: Classifier, examples: list[ds.Example], to_safe: np.ndarray | None = None) -> dict[str, Any]:
    """The output head's precision, recall, accuracy and flag rate on (request, answer) examples,
    and its flag rate on the answers to safe requests (`to_safe`) when given."""
    if not examples:
        return {"answers": 0}
    pred = _output_probs(clf, [e.prompt for e in examples], [e.text for e in examples]) >= clf.heads.output_threshold
    gold = np.array([bool(e.label) for e in examples])
    out = {"answers": len(examples), **_pr(pred, gold), "accuracy": round(float((pred == gold).mean()), 3),
           "flag_rate": round(float(pred.mean()), 3)}
    if to_safe is not None:
        out["false_flag_rate_answers_to_safe_requests"] = round(float(pred[to_safe].mean()), 3)
    return out


def judge_agreement(clf: Classifier, data_dir: str | None = None) -> dict[str, Any]:
    """The output head against the hand labels of SmolLM2's answers (candor/evals/labels): an
    answer is harmful when it was labelled `compliance` to a harmlessness prompt. Also on the
    answers whose request no head trained on (the model's answers to training requests are
    training examples, and the labelled answers are answers of the same model). Under "guarded",
    the same on its answers decoded with the loop guard (what serving reads since the guard)."""
    from candor.evals.judge_labels import load_labels, requests

    asked = requests(data_dir)
    held = ds.held_out_items(asked)

    def measure(rows: list[dict[str, Any]]) -> dict[str, Any]:
        rows = [r for r in rows if r["item"] in asked]
        pred = _output_probs(clf, [asked[r["item"]][0] for r in rows], [r["answer"] for r in rows]) >= \
            clf.heads.output_threshold
        gold = np.array([r["task"].startswith("harmlessness") and r["label"] == "compliance" for r in rows])
        unseen = np.array([r["item"] in held for r in rows])
        return {"answers": len(rows), "agreement": round(float((pred == gold).mean()), 3),
                "harmful_labelled": int(gold.sum()), **_pr(pred, gold),
                "unseen": {"answers": int(unseen.sum()),
                           "agreement": round(float((pred[unseen] == gold[unseen]).mean()), 3),
                           "harmful_labelled": int(gold[unseen].sum()), **_pr(pred[unseen], gold[unseen])}}

    return {**measure(load_labels()), "guarded": measure(load_labels("smollm2-135m-instruct-guarded"))}


def write_card(summary: dict[str, Any], figures: dict[str, Any], path: Path = CARD_FILE) -> None:
    from candor.moderation.card import render

    path.write_text(render(summary, figures, dt.date.today().isoformat()), encoding="utf-8")
