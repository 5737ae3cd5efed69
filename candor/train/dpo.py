"""Preference optimisation (DPO) of a LoRA adapter on AI-labelled pairs (transformers + TRL + PEFT).

This is the project's stand-in for the paper's RL stage (preference model + PPO): DPO optimises
the same preference objective directly from pairs. Data:
- `candor cai feedback` output: each row's `chosen`/`rejected` follow the feedback model's soft
  label; pairs whose confidence max(p, 1-p) is below `min_confidence` are dropped (TRL's DPO has
  no per-example soft target, so the label is binarised after that filter; `p_a` stays in the data),
- optionally votes exported from the chat page's compare mode (`votes`): rows with `prompt` (or a
  `messages` context) plus `chosen` and `rejected`.
Pairs are deduplicated and rendered with the chat renderer the server uses.

With `init_adapter` (the SL-CAI adapter) the policy starts from that adapter and the frozen
reference is the same adapter merged into the base, as DPO expects (the reference is the starting
policy); without it the reference is the base model (the adapter disabled).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from candor.chat.render import ASSISTANT, HUMAN_ASSISTANT, ChatFormat, Message, parse_prompt
from candor.errors import InvalidRequestError
from candor.train.common import (
    LoopSettings,
    LoraSettings,
    chat_format_for,
    check_output_dir,
    hardware,
    load_model,
    load_tokenizer,
    lora_state,
    model_card,
    opt,
    progress_callback,
    read_jsonl,
    render_example,
    resolve_base,
    weight_change,
    write_run_files,
)


@dataclass
class DPOSettings(LoraSettings, LoopSettings):
    out: str = opt("runs/dpo", "Output folder for the adapter, config, metrics and model card.")
    base: str = opt("candor-instant", "Registry name of an embedded model, or a Hugging Face folder.")
    init_adapter: str = opt("", "Adapter to start from (the SL-CAI adapter); also the frozen reference.")
    data: list = field(default_factory=list,
                       metadata={"help": "JSONL files of AI-labelled pairs from `candor cai feedback`."})
    votes: list = field(default_factory=list,
                        metadata={"help": "JSONL files of preference votes exported from the chat page."})
    min_confidence: float = opt(0.55, "Drop AI-labelled pairs whose label confidence max(p, 1-p) is lower.")
    beta: float = opt(0.1, "DPO beta: how far the policy may move from the reference.")
    label_smoothing: float = opt(0.0, "Conservative DPO: trust each label only this far from certain (0.4 = "
                                      "the paper's soft labels clamped to 40-60%); 0: hard labels.")
    max_length: int = opt(384, "Longest prompt+answer in tokens.")
    batch_size: int = opt(4, "Pairs per device per step.")
    learning_rate: float = opt(2e-5, "Learning rate (LoRA DPO: ~1e-5 to 5e-5).")


def pair_from_row(row: dict[str, Any], fmt: ChatFormat = HUMAN_ASSISTANT) -> tuple[str, str, str] | None:
    """(rendered prompt, chosen completion, rejected completion) from a feedback row or an
    exported vote. A `prompt` already rendered in the Human/Assistant format (the chat page's
    export) is split back into turns; every context is rendered in the base model's format."""
    if "chosen" not in row or "rejected" not in row:
        return None
    chosen, rejected = str(row["chosen"]).strip(), str(row["rejected"]).strip()
    if not chosen or not rejected or chosen == rejected:
        return None
    prompt = str(row.get("prompt") or "")
    if row.get("messages"):
        context = [Message(m["role"], m["content"]) for m in row["messages"]]
    elif prompt.rstrip().endswith(ASSISTANT.strip()):
        try:
            context, system = parse_prompt(prompt if prompt.startswith("\n\n") else "\n\n" + prompt.lstrip("\n"))
        except InvalidRequestError:
            return None
        text, chosen_text = render_example(context + [Message("assistant", chosen)], system, fmt=fmt)
        return text, chosen_text, render_example(context + [Message("assistant", rejected)], system, fmt=fmt)[1]
    elif prompt.strip():
        context = [Message("user", prompt)]
    else:
        return None
    if context[-1].role != "user":
        return None
    text, chosen_text = render_example(context + [Message("assistant", chosen)], fmt=fmt)
    return text, chosen_text, render_example(context + [Message("assistant", rejected)], fmt=fmt)[1]


def build_pairs(cfg: DPOSettings, log=print,
                fmt: ChatFormat = HUMAN_ASSISTANT) -> tuple[list[dict[str, str]], dict[str, Any]]:
    from candor.cai.dedup import dedup

    found: list[tuple[str, str, str]] = []
    counts: dict[str, int] = {}
    low = 0
    for file, is_vote in [(f, False) for f in cfg.data] + [(f, True) for f in cfg.votes]:
        n = 0
        for row in read_jsonl(file):
            if not is_vote and "confidence" in row and float(row["confidence"]) < cfg.min_confidence:
                low += 1
                continue
            pair = pair_from_row(row, fmt)
            if pair:
                found.append(pair)
                n += 1
        counts[str(file)] = n
    report = None
    if cfg.dedup_threshold <= 1:
        found, report = dedup(found, key="\n".join, threshold=cfg.dedup_threshold)
    rows = [{"prompt": p, "chosen": c, "rejected": r} for p, c, r in found]
    stats = {"sources": counts, "low_confidence_dropped": low, "pairs": len(rows),
             "dedup": report.as_dict() if report else None}
    log(f"dpo data: {stats}")
    if not rows:
        raise ValueError("no preference pairs: give --data (cai feedback output) or --votes files")
    return rows, stats


def train_dpo(cfg: DPOSettings, log=print) -> dict[str, Any]:
    import torch
    from datasets import Dataset
    from transformers import PrinterCallback
    from trl import DPOConfig, DPOTrainer

    if not 0 <= cfg.label_smoothing < 0.5:
        raise InvalidRequestError(f"must be in [0, 0.5), got {cfg.label_smoothing}", field="label_smoothing")
    out = Path(cfg.out)
    check_output_dir(out, cfg.overwrite)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    base_dir = resolve_base(cfg.base, log)
    tokenizer = load_tokenizer(base_dir)
    rows, data_stats = build_pairs(cfg, log, chat_format_for(cfg.base))
    model = load_model(base_dir, cfg.init_adapter or None, trainable=True, lora=cfg)
    ref_model = None
    if cfg.init_adapter:
        ref_model = load_model(base_dir, cfg.init_adapter, trainable=False).merge_and_unload()
        ref_model.eval()
    before = lora_state(model)
    on_gpu = torch.cuda.is_available()
    args = DPOConfig(
        output_dir=str(out / "trainer"), num_train_epochs=cfg.epochs, max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size, gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.learning_rate, lr_scheduler_type=cfg.lr_scheduler, warmup_steps=cfg.warmup_steps,
        logging_steps=cfg.logging_steps, save_strategy="steps" if cfg.save_steps else "no",
        save_steps=cfg.save_steps or 500, report_to="none", seed=cfg.seed, beta=cfg.beta,
        label_smoothing=cfg.label_smoothing,
        max_length=cfg.max_length, use_cpu=not on_gpu, bf16=on_gpu and torch.cuda.is_bf16_supported(),
        include_num_input_tokens_seen="non_padding", disable_tqdm=True, dataloader_num_workers=0,
        gradient_checkpointing=False,  # recomputation only costs time at these sizes
    )
    steps = args.max_steps if args.max_steps > 0 else \
        max(1, int(cfg.epochs * -(-len(rows) // (cfg.batch_size * cfg.grad_accum))))
    bar = progress_callback(steps, "dpo")
    trainer = DPOTrainer(model=model, ref_model=ref_model, args=args, train_dataset=Dataset.from_list(rows),
                         processing_class=tokenizer, callbacks=[bar])
    trainer.remove_callback(PrinterCallback)  # the progress bar shows the loss instead
    started = time.perf_counter()
    result = trainer.train()
    seconds = time.perf_counter() - started
    change = weight_change(before, model)
    trainer.save_model(str(out))
    tokenizer.save_pretrained(str(out))
    history = [h for h in trainer.state.log_history if "loss" in h]
    losses = bar.losses
    metrics = {
        "examples": len(rows), "data": data_stats, "steps": trainer.state.global_step,
        "trained_tokens": int(trainer.state.num_input_tokens_seen or 0), "train_seconds": round(seconds, 1),
        "train_loss": round(float(result.training_loss), 4),
        "first_loss": round(losses[0][1], 4) if losses else None,
        "last_loss": round(losses[-1][1], 4) if losses else None, "loss_curve": losses,
        "last_rewards": {k: v for k, v in (history[-1] if history else {}).items() if k.startswith("rewards/")},
        "max_weight_change": change, "hardware": hardware(),
    }
    data_lines = [f"{src}: {n} pairs" for src, n in data_stats["sources"].items()]
    data_lines.append(f"dropped for confidence < {cfg.min_confidence}: {data_stats['low_confidence_dropped']}; "
                      f"after dedup: {data_stats['pairs']} pairs (dedup: {data_stats['dedup']})")
    card = model_card(f"DPO adapter ({out.name})", "dpo", cfg, metrics, data_lines,
                      [f"DPO beta {cfg.beta}; reference: "
                       + ("the starting adapter merged into the base" if cfg.init_adapter else "the base model"),
                       ("Stands in for the paper's preference model + PPO; soft labels are binarised after a "
                        "confidence filter.")])
    write_run_files(out, "dpo", cfg, metrics, card)
    log(f"dpo: {metrics['steps']} steps, loss {metrics['first_loss']} → {metrics['last_loss']}, adapter in {out}")
    return metrics
