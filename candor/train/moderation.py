"""Fine-tuning MiniLM for the moderation classifier: LoRA updates on the Linear layers of its first
`layers` transformer layers, trained jointly with the harm head (a one-hidden-layer perceptron) and
the category head (softmax over CATEGORIES) on the training split's requests.

Frozen sentence embeddings could not tell "kill a Python process" from "kill a person" (see the
card); a trained encoder can. Plain torch, seeded; the epoch kept is the one whose validation
recall, at the threshold the card's rule picks, is highest. What it returns is plain arrays
(candor.moderation.classifier.Heads stores them, candor.embeddings.adapted merges the updates).
"""

from __future__ import annotations

import json
import math
import os
import random
from dataclasses import dataclass
from typing import Any

import numpy as np

from candor.embeddings.adapted import keep_layers, target_names
from candor.moderation.train import HARD


@dataclass(frozen=True)
class Tuned:
    lora: dict[str, tuple[np.ndarray, np.ndarray]]  # name -> (A: rank x in, B: out x rank)
    scale: float
    harm_w1: np.ndarray
    harm_b1: np.ndarray
    harm_w2: np.ndarray
    harm_b2: float
    cat_w: np.ndarray
    cat_b: np.ndarray
    history: list[dict[str, Any]]  # per epoch: loss, validation threshold, recall, false flags
    epoch: int  # the epoch kept (1-based)


def _lora_module(torch, base, rank: int, alpha: float, dropout: float):
    class LoRALinear(torch.nn.Module):
        """base(x) + scale * B(A(dropout(x))), B starting at zero (training starts from stock MiniLM)."""

        def __init__(self):
            super().__init__()
            self.base = base
            self.a = torch.nn.Parameter(torch.empty(rank, base.in_features))
            self.b = torch.nn.Parameter(torch.zeros(base.out_features, rank))
            torch.nn.init.kaiming_uniform_(self.a, a=math.sqrt(5))
            self.drop = torch.nn.Dropout(dropout)
            self.scale = alpha / rank

        def forward(self, x):
            return self.base(x) + (self.drop(x) @ self.a.T @ self.b.T) * self.scale

    return LoRALinear()


def _length_batches(order: list[int], lengths: list[int], batch_size: int, rng: random.Random,
                    window: int = 16) -> list[list[int]]:
    """`order` cut into batches of similar lengths, in random order: each run of `window` batches
    is sorted by length before it is cut. A batch is padded to its longest text, and since exam
    questions (law hypotheticals of up to 250 word pieces) joined the data, random batches were
    padded to that length nearly every time (an epoch of the 3-layer encoder took 3 minutes)."""
    out = []
    for s in range(0, len(order), batch_size * window):
        run = sorted(order[s:s + batch_size * window], key=lambda i: lengths[i])
        out += [run[j:j + batch_size] for j in range(0, len(run), batch_size)]
    rng.shuffle(out)
    return out


def finetune(train: list[tuple[str, int, int, float]], validation: list[tuple[str, int, int]], *, categories: int,
             layers: int, rank: int = 8, alpha: float = 16.0, dropout: float = 0.1, hidden: int = 256,
             epochs: int = 6, batch_size: int = 32, lr: float = 5e-4, head_lr: float = 2e-3,
             category_weight: float = 0.5, seed: int = 0, threshold_rule=None, log=print) -> Tuned:
    """`train`: (text, harmful 0/1, category index or -1, weight); `validation`: (text, harmful,
    group of safe prompts: 1 hard safe, 2 exam questions on harm, 0 neither). `threshold_rule(scores,
    groups) -> threshold` picks the decision threshold each epoch is judged at."""
    import torch

    from candor.embeddings import Encoder, embed_batch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count() or 1)
    enc = Encoder()
    model = keep_layers(enc.model, layers)
    for p in model.parameters():
        p.requires_grad_(False)
    wrapped = {}
    for name in target_names(layers):
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        wrapped[name] = _lora_module(torch, getattr(parent, child), rank, alpha, dropout)
        setattr(parent, child, wrapped[name])
    dim = model.config.hidden_size
    harm = torch.nn.Sequential(torch.nn.Linear(dim, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))
    cat = torch.nn.Linear(dim, categories)
    lora_params = [p for m in wrapped.values() for p in (m.a, m.b)]
    opt = torch.optim.AdamW([{"params": lora_params, "lr": lr, "weight_decay": 0.01},
                             {"params": list(harm.parameters()) + list(cat.parameters()), "lr": head_lr,
                              "weight_decay": 1e-4}])
    steps = epochs * math.ceil(len(train) / batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / (0.06 * steps)) *
                                              max(0.0, (steps - s) / steps))

    def scores(texts) -> np.ndarray:
        model.eval()
        out = []
        with torch.inference_mode():
            order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
            for s in range(0, len(order), 64):
                v = embed_batch(model, *enc.tokens([texts[i] for i in order[s:s + 64]]))
                out.append(torch.sigmoid(harm(v)[:, 0]).numpy())
        result = np.empty(len(texts), np.float32)
        result[np.array(order)] = np.concatenate(out)
        return result

    v_texts = [t for t, _, _ in validation]
    v_gold = np.array([y for _, y, _ in validation], bool)
    v_groups = np.array([x for _, _, x in validation], int)  # groups of safe prompts, for threshold_rule
    v_hard = v_groups == HARD
    best: dict[str, Any] | None = None
    history = []
    rng = random.Random(seed)
    for epoch in range(1, epochs + 1):
        model.train()
        harm.train()
        order = list(range(len(train)))
        rng.shuffle(order)
        total = 0.0
        for chunk in _length_batches(order, [len(r[0]) for r in train], batch_size, rng):
            rows = [train[i] for i in chunk]
            v = embed_batch(model, *enc.tokens([r[0] for r in rows]))
            y = torch.tensor([float(r[1]) for r in rows])
            w = torch.tensor([r[3] for r in rows])
            loss = (torch.nn.functional.binary_cross_entropy_with_logits(harm(v)[:, 0], y, reduction="none")
                    * w).sum() / w.sum()
            c = torch.tensor([r[2] for r in rows])
            if (c >= 0).any():
                loss = loss + category_weight * torch.nn.functional.cross_entropy(cat(v[c >= 0]), c[c >= 0])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(rows)
        harm.eval()
        p = scores(v_texts)
        t = threshold_rule(p, v_groups) if threshold_rule else 0.5
        row = {"epoch": epoch, "loss": round(total / len(train), 4), "threshold": t,
               "validation_recall": round(float((p[v_gold] >= t).mean()), 3),
               "validation_hard_false_flags": round(float((p[v_hard] >= t).mean()), 3)}
        history.append(row)
        log(f"epoch {epoch}: {row}")
        if best is None or (row["validation_recall"], -row["validation_hard_false_flags"]) > (
                best["row"]["validation_recall"], -best["row"]["validation_hard_false_flags"]):
            best = {"row": row, "lora": {n: (m.a.detach().numpy().copy(), m.b.detach().numpy().copy())
                                         for n, m in wrapped.items()},
                    "harm": [x.detach().numpy().copy() for x in harm.parameters()],
                    "cat": [x.detach().numpy().copy() for x in cat.parameters()]}
    torch.set_num_threads(previous_threads)
    assert best is not None
    w1, b1, w2, b2 = best["harm"]
    return Tuned(best["lora"], alpha / rank, w1.T.copy(), b1, w2[0].copy(), float(b2[0]), best["cat"][0],
                 best["cat"][1], history, best["row"]["epoch"])


def calibrate(heads, train: list[tuple[str, int, int, float]], validation: list[tuple[str, int, int]], embed, *,
              threshold_rule, epochs: int = 4, batch_size: int = 32, lr: float = 5e-4, seed: int = 0,
              log=print) -> tuple[Any, int]:
    """`heads` with the harm head trained on a little further on the embeddings of `embed` (the int8
    encoder, frozen), and the epoch kept. Dynamic int8 moves every embedding a little from the float
    encoder's the head was fitted to (on the validation split, 3 int8 layers lost 0.06 of recall at the
    threshold the rule picks, before this); epoch 0, the head unchanged, competes on the same validation
    measure, so calibrating never makes the figures it is judged by worse."""
    from dataclasses import replace

    import torch

    torch.manual_seed(seed)
    rng = random.Random(seed)
    texts = sorted({t for t, _, _, _ in train} | {t for t, _, _ in validation})
    vec = embed(texts)
    x = torch.tensor(np.stack([vec[t] for t, _, _, _ in train]))
    y = torch.tensor([float(r[1]) for r in train])
    w = torch.tensor([r[3] for r in train])
    xv = torch.tensor(np.stack([vec[t] for t, _, _ in validation]))
    v_gold = np.array([r[1] for r in validation], bool)
    v_groups = np.array([r[2] for r in validation], int)  # groups of safe prompts, for threshold_rule
    v_hard = v_groups == HARD
    params = [torch.nn.Parameter(torch.tensor(np.asarray(a, np.float32)))
              for a in (heads.harm_w1, heads.harm_b1, heads.harm_w2, np.array(heads.harm_b2))]
    w1, b1, w2, b2 = params

    def logits(v):
        return torch.relu(v @ w1 + b1) @ w2 + b2

    def judged(epoch: int) -> dict[str, Any]:
        with torch.no_grad():
            p = torch.sigmoid(logits(xv)).numpy()
        t = threshold_rule(p, v_groups)
        return {"epoch": epoch, "threshold": t, "recall": float((p[v_gold] >= t).mean()),
                "false_flags": float((p[v_hard] >= t).mean()),
                "weights": [q.detach().numpy().copy() for q in params]}

    best = judged(0)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    order = list(range(len(train)))
    for epoch in range(1, epochs + 1):
        rng.shuffle(order)
        for s in range(0, len(order), batch_size):
            i = torch.tensor(order[s:s + batch_size])
            loss = (torch.nn.functional.binary_cross_entropy_with_logits(logits(x[i]), y[i], reduction="none")
                    * w[i]).sum() / w[i].sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
        row = judged(epoch)
        log(f"calibration epoch {epoch}: threshold {row['threshold']}, recall {row['recall']:.3f}, "
            f"false flags {row['false_flags']:.3f}")
        if (row["recall"], -row["false_flags"]) > (best["recall"], -best["false_flags"]):
            best = row
    a1, c1, a2, c2 = best["weights"]
    return replace(heads, harm_w1=a1, harm_b1=c1, harm_w2=a2, harm_b2=float(c2)), best["epoch"]


def train(config, log=print) -> dict[str, Any]:
    """`candor moderation train`: fine-tune the encoder and input heads at each of `config.layers`
    (float32 and int8 each), choose thresholds on validation, ship the variant `choose` picks with a
    refitted category head and the output head, write `config.out`. Returns the summary the card
    is made from."""
    import time
    from pathlib import Path

    from candor.moderation import train as mt
    from candor.moderation.categories import CATEGORIES

    started = time.monotonic()
    data = mt.prepare(config, log)
    frozen, comparison = mt.frozen_heads(data, config)
    before = next(iter(comparison))
    variants = {before: mt.judge_variant(frozen, data, config)[1]}
    log(f"{before}: {variants[before]}")
    candidates: dict[str, tuple[Any, list[dict[str, Any]]]] = {}
    for layers in [int(x) for x in str(config.layers).split(",") if x.strip()]:
        t0 = time.monotonic()
        tuned = finetune(mt.training_rows(data, config), mt.validation_rows(data), categories=len(CATEGORIES),
                         layers=layers, rank=config.rank, hidden=config.hidden, epochs=config.epochs, lr=config.lr,
                         seed=config.seed, log=log, threshold_rule=lambda p, m: mt._threshold_for_false_flags(
                             p, m, config.max_false_flags))
        minutes = round((time.monotonic() - t0) / 60, 1)
        for int8 in (False, True) if config.int8 else (False,):
            heads, calibrated = mt.tuned_heads(tuned, config, int8, layers), 0
            if int8:
                heads, calibrated = calibrate(
                    heads, mt.training_rows(data, config), mt.validation_rows(data),
                    lambda texts, h=heads: mt._embed_all(texts, mt.encoder_for(h)), seed=config.seed, log=log,
                    threshold_rule=lambda p, m: mt._threshold_for_false_flags(p, m, config.max_false_flags))
            heads, row = mt.judge_variant(heads, data, config)
            name = f"fine-tuned, {layers} layers{', int8' if int8 else ''}"
            variants[name] = {**row, "int8": int8, "epoch": tuned.epoch, "calibration_epoch": calibrated,
                              "train_minutes": minutes}
            candidates[name] = (heads, tuned.history)
            log(f"{name}: {variants[name]}")
    shipped_name = choose(variants, list(candidates), config.max_false_flags)
    shipped, history = candidates[shipped_name]
    compared_at = shipped.input_threshold
    shipped, chosen = mt.with_operating_threshold(shipped, data, config)
    if chosen is not None:
        log(f"operating threshold {chosen} (compared at {compared_at})")
        variants[shipped_name]["operating_threshold"] = chosen
    shipped, categories = mt.with_category_head(shipped, data)
    log(json.dumps(categories))
    shipped, output = mt.with_output_head(shipped, data, config)
    shipped.save(Path(config.out))
    summary = {**mt.summary_of(data, config), "comparison": comparison, "variants": variants,
               "shipped": shipped_name, "history": history, "input_threshold": shipped.input_threshold,
               "shipped_layers": shipped.encoder_layers, "shipped_int8": shipped.encoder_int8,
               "config": {k: getattr(config, k) for k in ("layers", "int8", "rank", "epochs", "lr", "seed", "hidden",
                                                          "operating_recall", "hard_negative_copies",
                                                          "hard_positive_copies", "safe_parts",
                                                          "output_max_false_flags")},
               "answers_model": config.answers_model,
               "train_minutes": round((time.monotonic() - started) / 60, 1), **output, **categories}
    log(json.dumps(summary, indent=1))
    return summary


GOAL_RECALL = 0.90  # issue 15
RECALL_TIE = 0.02  # validation recalls this close count as equal (3 of the ~160 harmful validation requests)
LATENCY_TIE = 0.10  # latencies within this fraction of the fastest count as equal (the machine drifts that much)


def choose(variants: dict[str, dict[str, Any]], names: list[str], max_false_flags: float) -> str:
    """The variant to ship, on validation figures only: among those meeting both quality goals, the
    fastest input check (serving's thread count: half the cores, so 1 here) of those whose recall is
    within RECALL_TIE of the best; if none meets them, the one with the highest recall. Checks within
    LATENCY_TIE of the fastest count as equally fast, and of those an int8 encoder ships: its speed does
    not hang on the CPU's bf16 support, where a float encoder's products fall back to float32, twice as
    slow here (read 23's float encoder was "faster" than its int8 twin by 0.2 of 92.7 ms, and shipped).

    The threshold rule pins every variant's validation false flags at the goal, so recall at that
    point is what tells the encoders apart. (An earlier rule shipped the fastest variant meeting the
    goals: the 3-layer int8 encoder, 0.911 validation recall against 0.956 for 6 layers; on the test
    split it flagged 18 of 77 held-out XSTest safe prompts against 11. The next took the best recall
    outright, and when the exam questions joined the data it shipped the float 6-layer encoder,
    0.949 against int8's 0.937, two requests, at 44.6 against 29.2 ms.)"""
    def meets(n: str) -> bool:
        v = variants[n]
        return v["validation_recall"] >= GOAL_RECALL and v["validation_hard_false_flags"] <= max_false_flags + 1e-9

    pool = [n for n in names if meets(n)]
    if not pool:
        return max(names, key=lambda n: variants[n]["validation_recall"])
    best = max(variants[n]["validation_recall"] for n in pool)
    close = [n for n in pool if variants[n]["validation_recall"] >= best - RECALL_TIE - 1e-9]
    fastest = min(variants[n]["latency_ms_1_threads"] for n in close)
    quick = [n for n in close if variants[n]["latency_ms_1_threads"] <= fastest * (1 + LATENCY_TIE)]
    return min(quick, key=lambda n: (not variants[n].get("int8", False), -variants[n]["validation_recall"],
                                     variants[n]["latency_ms_1_threads"]))


def train_second_look(heads_path, category: str, *, seed: int = 0, layers: int = 6, epochs: int = 6,
                      data_dir: str | None = None, out=None, log=print) -> dict[str, Any]:
    """`candor moderation second-look`: fine-tune a specialist for `category` (candor.moderation.
    second_look: the training split's requests on its subject and the written pairs), keep the epoch
    with the best validation recall at LOOK_MAX_FALSE_FLAGS, choose its threshold on validation as
    served, and write the heads of `heads_path` with it (replacing any earlier look at the category)
    to `out` (default: the same file). Returns the figures the card reports."""
    import time
    from dataclasses import replace
    from pathlib import Path

    from candor.moderation import dataset as ds
    from candor.moderation import second_look as sl
    from candor.moderation import train as mt
    from candor.moderation.categories import CATEGORIES
    from candor.moderation.classifier import Classifier, Heads, SecondLook

    started = time.monotonic()
    heads = Heads.load(Path(heads_path))
    examples, _ = mt.filled_inputs(data_dir, Classifier(heads).encoder)
    parts = ds.split(examples, "input")
    train_rows, validation_rows = sl.look_rows(parts, category)
    log(f"second look at {category}: {len(train_rows)} training requests ({sum(r[1] for r in train_rows)} harmful), "
        f"{len(validation_rows)} validation requests ({sum(r[1] for r in validation_rows)} harmful)")
    tuned = finetune(train_rows, validation_rows, categories=len(CATEGORIES), layers=layers, epochs=epochs, seed=seed,
                     log=log, threshold_rule=lambda p, g: mt._threshold_for_false_flags(p, g, sl.LOOK_MAX_FALSE_FLAGS))
    look = SecondLook(layers=layers, lora=tuned.lora, scale=tuned.scale, w1=tuned.harm_w1, b1=tuned.harm_b1,
                      w2=tuned.harm_w2, b2=tuned.harm_b2, category=category, threshold=0.5)
    others = tuple(x for x in heads.second_looks if x.category != category)
    base = replace(heads, second_looks=others)
    threshold, rows = sl.choose_threshold(base, look, parts["validation"], log)
    look = replace(look, threshold=threshold)
    replace(base, second_looks=(*others, look)).save(Path(out or heads_path))
    summary = {"category": category, "seed": seed, "layers": layers, "epoch": tuned.epoch, "history": tuned.history,
               "threshold": threshold, "validation_as_served": rows, "training_requests": len(train_rows),
               "validation_requests": len(validation_rows), "minutes": round((time.monotonic() - started) / 60, 1)}
    log(json.dumps(summary))
    return summary


def train_quick_read(heads_path, *, seed: int = 0, layers: int = 3, epochs: int = 5, data_dir: str | None = None,
                     out=None, log=print) -> dict[str, Any]:
    """`candor moderation quick-read`: fine-tune the quick read (candor.moderation.quick_read: each
    split's requests plain and in the forms that hide an ask, targets from the full read of the heads
    of `heads_path` under the packaged policy), keep the epoch that clears most safe validation
    requests while clearing no harmful one the full read flags, quantise it to int8 as served, choose
    `clear_below` on validation as served, and write the heads with it to `out` (default: the same
    file). Returns the figures the README reports."""
    import time
    from dataclasses import replace
    from pathlib import Path

    from candor.moderation import quick_read as qr
    from candor.moderation import train as mt
    from candor.moderation.classifier import Classifier, Heads, QuickRead
    from candor.moderation.policy import Modes, load_policy

    started = time.monotonic()
    heads = replace(Heads.load(Path(heads_path)), quick_read=None)
    clf = Classifier(heads)
    policy = load_policy(heads, modes=Modes())
    items = qr.split_items(seed, data_dir)
    flagged = {}
    for name, rows in items.items():
        flagged[name] = [policy.decide_input(s, "flag").flagged for s in mt.request_scores(clf, [i.text for i in rows])]
        log(f"quick read, {name}: {len(rows)} requests, {sum(i.harmful for i in rows)} harmful, "
            f"{sum(flagged[name])} flagged by the full read")
    y = qr.targets(items["train"], flagged["train"])
    train_rows = [(i.text, int(t), -1, 1.0) for i, t in zip(items["train"], y)]
    # validation: the harmful requests the full read flags (group 0) against the safe ones it passes
    # (HARD, so each epoch's "false flags" are the safe requests it would still read in full)
    validation_rows = [(i.text, i.harmful, 0 if i.harmful else mt.HARD)
                       for i, f in zip(items["validation"], flagged["validation"]) if bool(i.harmful) == f]
    tuned = finetune(train_rows, validation_rows, categories=1, layers=layers, epochs=epochs, seed=seed,
                     category_weight=0.0, log=log, threshold_rule=lambda p, g: float(p[g == 0].min()))
    read = QuickRead(layers=layers, lora=tuned.lora, scale=tuned.scale, w1=tuned.harm_w1, b1=tuned.harm_b1,
                     w2=tuned.harm_w2, b2=tuned.harm_b2, clear_below=(0.0,) * 4,
                     thresholds={**policy.input_thresholds, "output": policy.output_threshold})
    quick = Classifier(replace(heads, quick_read=read), clf.encoder)  # builds the int8 reader as served
    probs = {name: quick.quick_probs([i.text for i in items[name]]) for name in ("validation", "test")}
    pieces = {name: [clf.encoder.count_tokens(i.text) for i in items[name]] for name in probs}
    below = qr.clear_below(probs["validation"], pieces["validation"], items["validation"], flagged["validation"],
                           read.lengths)
    read = replace(read, clear_below=below)
    replace(heads, quick_read=read).save(Path(out or heads_path))
    summary = {"seed": seed, "layers": layers, "epoch": tuned.epoch, "history": tuned.history, "clear_below": below,
               **{name: qr.measured(probs[name], np.array([read.limit(n) for n in pieces[name]]), items[name],
                                    flagged[name]) for name in probs},
               "minutes": round((time.monotonic() - started) / 60, 1)}
    log(json.dumps(summary))
    return summary
