"""Supervised fine-tuning of a LoRA adapter (transformers + TRL + PEFT).

The data are conversations ending in an assistant answer:
- SL-CAI revisions from `candor cai revise` (every revision step, as the paper trains on, or only
  the last one),
- conversations in a `messages` JSONL file,
- hh-rlhf helpful-base chosen answers (`helpful`, the helpfulness data the paper mixes in) and
  harmless-base chosen answers (`harmless`, for the human-feedback comparison model).
They are deduplicated (exact and near-duplicate), rendered with the same chat renderer the
server uses for the base model (its chat template and default system prompt), and the loss is
taken on the answer tokens only (plus the format's end-of-turn marker, so the model learns to stop).

Runs on CPU with small settings and on GPUs through accelerate (`accelerate launch -m candor
train sft …`). The output folder holds the adapter, config.json (resolved settings),
metrics.json (loss curve, tokens, time) and README.md (the model card).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from candor.chat.render import HUMAN_ASSISTANT, ChatFormat, Message
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
    tokenize_example,
    weight_change,
    write_run_files,
)


@dataclass
class SFTSettings(LoraSettings, LoopSettings):
    out: str = opt("runs/sft", "Output folder for the adapter, config, metrics and model card.")
    base: str = opt("candor-instant", "Registry name of an embedded model, or a Hugging Face folder.")
    init_adapter: str = opt("", "Adapter folder to continue training (e.g. the helpful SFT before SL-CAI).")
    data: list = field(default_factory=list,
                       metadata={"help": "JSONL files: `cai revise` output or rows with `messages`."})
    revisions: str = opt("all", "Which revisions of `cai revise` rows to train on: all (paper) or last.")
    helpful: int = opt(0, "hh-rlhf helpful-base chosen conversations to mix in (-1: all training rows).")
    harmless: int = opt(0, "hh-rlhf harmless-base chosen conversations to mix in (-1: all training rows).")
    data_dir: str = opt("", "Data folder holding hh-rlhf/ (default: CANDOR_DATA_DIR or ../shared/data).")
    max_length: int = opt(384, "Longest example in tokens (longer ones are cut; prompts that leave no room dropped).")
    batch_size: int = opt(8, "Examples per device per step.")
    learning_rate: float = opt(2e-4, "Peak learning rate (LoRA needs ~10x full fine-tuning's).")


# -- data -----------------------------------------------------------------------------------------
def row_conversations(row: dict[str, Any], revisions: str = "all") -> list[list[Message]]:
    """Training conversations from one data row."""
    if "steps" in row and "prompt" in row:  # `cai revise` output
        steps = [s for s in row["steps"] if s.get("revision", "").strip()]
        if revisions == "last":
            steps = steps[-1:]
        context = [Message(m["role"], m["content"]) for m in row.get("context") or
                   [{"role": "user", "content": row["prompt"]}]]
        return [context + [Message("assistant", s["revision"])] for s in steps]
    if "messages" in row:
        return [[Message(m["role"], m["content"]) for m in row["messages"]]]
    if "prompt" in row and ("response" in row or "completion" in row or "chosen" in row):
        # `chosen`: the preferred answer of a preference pair (judged pairs), trained on directly
        answer = row.get("response") or row.get("completion") or row["chosen"]
        return [[Message("user", row["prompt"]), Message("assistant", answer)]]
    raise ValueError("a training row needs `steps` (cai revise), `messages`, or `prompt` and `response` "
                     "(or `chosen`)")


def collect_conversations(cfg: SFTSettings, log=print) -> tuple[list[list[Message]], dict[str, int]]:
    from candor.cai import hh

    counts: dict[str, int] = {}
    convs: list[list[Message]] = []
    for file in cfg.data:
        found = [c for row in read_jsonl(file) for c in row_conversations(row, cfg.revisions)]
        counts[str(file)] = len(found)
        convs.extend(found)
    for subset, n in (("helpful-base", cfg.helpful), ("harmless-base", cfg.harmless)):
        if n:
            found = list(hh.conversations(subset, "chosen", "train", None if n < 0 else n, cfg.data_dir or None))
            counts[f"hh-rlhf {subset} chosen"] = len(found)
            convs.extend(found)
    log(f"collected {len(convs)} conversations: {counts}")
    return convs, counts


def build_dataset(cfg: SFTSettings, tokenizer, log=print, fmt: ChatFormat = HUMAN_ASSISTANT) -> tuple[Any, dict[str, Any]]:
    from datasets import Dataset

    from candor.cai.dedup import dedup

    convs, counts = collect_conversations(cfg, log)
    if cfg.dedup_threshold <= 1:
        convs, report = dedup(convs, key=lambda c: "\n".join(m.content for m in c), threshold=cfg.dedup_threshold)
        log(f"dedup: kept {report.kept}, dropped {report.exact} exact and {report.near} near duplicates")
    else:
        report = None
    rows, too_long, tokens = [], 0, 0
    for conv in convs:
        example = tokenize_example(tokenizer, *render_example(conv, fmt=fmt), cfg.max_length)
        if example is None:
            too_long += 1
            continue
        rows.append(example)
        tokens += len(example["input_ids"])
    if not rows:
        raise ValueError("no training examples: give --data files or --helpful/--harmless counts")
    random.Random(cfg.seed).shuffle(rows)
    stats = {"sources": counts, "examples": len(rows), "dropped_too_long": too_long, "tokens": tokens,
             "dedup": report.as_dict() if report else None}
    return Dataset.from_list(rows), stats


# -- training -------------------------------------------------------------------------------------
def train_sft(cfg: SFTSettings, log=print) -> dict[str, Any]:
    import torch
    from transformers import PrinterCallback
    from trl import SFTConfig, SFTTrainer

    out = Path(cfg.out)
    check_output_dir(out, cfg.overwrite)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    base_dir = resolve_base(cfg.base, log)
    tokenizer = load_tokenizer(base_dir)
    fmt = chat_format_for(cfg.base)
    dataset, data_stats = build_dataset(cfg, tokenizer, log, fmt)
    model = load_model(base_dir, cfg.init_adapter or None, trainable=True, lora=cfg)
    before = lora_state(model)
    on_gpu = torch.cuda.is_available()
    args = SFTConfig(
        output_dir=str(out / "trainer"), num_train_epochs=cfg.epochs, max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size, gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.learning_rate, lr_scheduler_type=cfg.lr_scheduler, warmup_steps=cfg.warmup_steps,
        logging_steps=cfg.logging_steps, save_strategy="steps" if cfg.save_steps else "no",
        save_steps=cfg.save_steps or 500, report_to="none", seed=cfg.seed,
        use_cpu=not on_gpu, bf16=on_gpu and torch.cuda.is_bf16_supported(), max_length=None,
        completion_only_loss=True, include_num_input_tokens_seen="non_padding", disable_tqdm=True,
        dataloader_num_workers=0, gradient_checkpointing=False,
    )
    steps = args.max_steps if args.max_steps > 0 else \
        max(1, int(cfg.epochs * -(-len(dataset) // (cfg.batch_size * cfg.grad_accum))))
    bar = progress_callback(steps, "sft")
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                         callbacks=[bar])
    trainer.remove_callback(PrinterCallback)  # the progress bar shows the loss instead
    started = time.perf_counter()
    result = trainer.train()
    seconds = time.perf_counter() - started
    change = weight_change(before, model)
    trainer.save_model(str(out))
    tokenizer.save_pretrained(str(out))
    losses = bar.losses
    metrics = {
        "examples": data_stats["examples"], "data": data_stats, "steps": trainer.state.global_step,
        "trained_tokens": int(trainer.state.num_input_tokens_seen or 0),
        "train_seconds": round(seconds, 1),
        "tokens_per_second": round((trainer.state.num_input_tokens_seen or 0) / max(seconds, 1e-9), 1),
        "train_loss": round(float(result.training_loss), 4),
        "first_loss": round(losses[0][1], 4) if losses else None,
        "last_loss": round(losses[-1][1], 4) if losses else None,
        "loss_curve": losses, "max_weight_change": change, "hardware": hardware(),
    }
    data_lines = [f"{src}: {n} conversations" for src, n in data_stats["sources"].items()]
    data_lines.append(f"after dedup and length filter: {data_stats['examples']} examples, "
                      f"{data_stats['tokens']} tokens (dedup: {data_stats['dedup']})")
    card = model_card(f"SFT adapter ({out.name})", "sft", cfg, metrics, data_lines,
                      [("Loss is on answer tokens only; examples are rendered with candor.chat.render in the "
                        + ("base model's own chat template" if fmt.chat_template else
                           "`\\n\\nHuman:` / `\\n\\nAssistant:` format")
                        + (" with its default system prompt" if fmt.default_system else "")
                        + ", exactly as the server renders them.")])
    write_run_files(out, "sft", cfg, metrics, card)
    log(f"sft: {metrics['steps']} steps, loss {metrics['first_loss']} → {metrics['last_loss']}, "
        f"{metrics['tokens_per_second']} tokens/s, adapter in {out}")
    return metrics
