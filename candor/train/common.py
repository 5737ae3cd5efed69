"""What the training methods share: the trainable base model, LoRA settings, examples rendered
with the one chat renderer, progress, and the files every run writes next to its outputs.

The embedded model ships as a quantised GGUF. transformers loads a GGUF directly (dequantised
to fp32); the result is saved once as a Hugging Face folder under `$CANDOR_HOME/hf/` and reused,
because the conversion takes about a minute and reloading the folder a few seconds.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from candor.chat.render import HUMAN_ASSISTANT, ChatFormat, Message
from candor.config import settings
from candor.errors import CandorError, InvalidRequestError
from candor.settings_fields import opt


@dataclass
class LoraSettings:
    """LoRA on the attention projections; never lm_head/embed_tokens (tied embeddings)."""

    lora_r: int = opt(8, "LoRA rank.")
    lora_alpha: int = opt(16, "LoRA alpha (scale = alpha / r).")
    lora_dropout: float = opt(0.05, "Dropout on the LoRA branch.")
    lora_targets: str = opt("q_proj,k_proj,v_proj,o_proj", "Comma-separated module names to adapt.")


@dataclass
class LoopSettings:
    """The training-loop settings SFT and DPO share (each sets its own batch size and rate)."""

    dedup_threshold: float = opt(0.8, "Jaccard similarity at which two examples count as near-duplicates (>1: off).")
    epochs: float = opt(1.0, "Passes over the data (the paper: 1).")
    max_steps: int = opt(-1, "Stop after this many optimiser steps (-1: run the epochs).")
    grad_accum: int = opt(1, "Gradient accumulation steps.")
    lr_scheduler: str = opt("constant", "Learning-rate schedule (the paper: constant).")
    warmup_steps: int = opt(0, "Linear warm-up steps.")
    save_steps: int = opt(0, "Save a checkpoint of the adapter every this many steps (0: only at the end).")
    logging_steps: int = opt(5, "Log the loss every this many steps.")
    seed: int = opt(0, "Seed for shuffling and initialisation.")
    threads: int = opt(0, "CPU threads for torch (0: all cores).")
    overwrite: bool = opt(False, "Replace a non-empty output folder.")


# -- the base model ------------------------------------------------------------------------------
def base_gguf(model_name: str = "candor-instant") -> Path:
    """The GGUF file behind a registry entry (assembled from its package if needed)."""
    from candor.engine.weights import ensure_weights
    from candor.registry import load_registry

    entry = load_registry().get(model_name)
    if entry.engine != "embedded":
        raise InvalidRequestError(f"{model_name} is a remote model; training needs local weights", field="base")
    return ensure_weights(entry)


def hf_base_dir(gguf: Path, log=print) -> Path:
    """A Hugging Face folder (config, fp32 weights, tokenizer) converted once from `gguf`."""
    target = settings().home / "hf" / gguf.stem
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log(f"converting {gguf.name} to a Hugging Face folder at {target} (once; about a minute)")
    started = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    quantizer: Any = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(model)  # weights are already dequantised
    partial = target.with_name(target.name + f".part-{os.getpid()}")
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    if target.exists():
        import shutil

        shutil.rmtree(target)
    partial.rename(target)
    log(f"converted in {time.perf_counter() - started:.0f} s")
    return target


def resolve_base(base: str, log=print) -> Path:
    """`base` is a registry name (its GGUF is converted) or a Hugging Face folder."""
    path = Path(base).expanduser()
    if path.is_dir() and (path / "config.json").is_file():
        return path
    return hf_base_dir(base_gguf(base), log)


def chat_format_for(base: str) -> ChatFormat:
    """How the server renders conversations for `base`, so training sees the same text: a
    registry name gives its model's template and default system prompt; a Hugging Face folder
    gives its tokenizer's chat template (or the Human/Assistant format when it has none)."""
    path = Path(base).expanduser()
    if path.is_dir() and (path / "config.json").is_file():
        config = path / "tokenizer_config.json"
        template = json.loads(config.read_text()).get("chat_template") if config.is_file() else None
        return ChatFormat(template) if isinstance(template, str) else HUMAN_ASSISTANT
    from candor.chat.model_format import chat_format_of
    from candor.registry import load_registry

    return chat_format_of(load_registry().get(base))


def load_tokenizer(base_dir: Path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(base_dir: Path, adapter: str | Path | None = None, trainable: bool = True,
               lora: LoraSettings | None = None):
    """The base model with a LoRA adapter: a new one from `lora`, or `adapter` to continue."""
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32)
    model.config.use_cache = False
    if adapter:
        return PeftModel.from_pretrained(model, str(adapter), is_trainable=trainable)
    lora = lora or LoraSettings()
    config = LoraConfig(r=lora.lora_r, lora_alpha=lora.lora_alpha, lora_dropout=lora.lora_dropout,
                        target_modules=[t.strip() for t in lora.lora_targets.split(",") if t.strip()],
                        task_type="CAUSAL_LM", bias="none")
    return get_peft_model(model, config)


def lora_state(model) -> dict[str, Any]:
    """A copy of the trainable (LoRA) tensors, to show that training changed them."""
    return {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad}


def weight_change(before: Mapping[str, Any], model) -> float:
    """Largest absolute change of any trainable tensor since `before`."""
    after = dict(model.named_parameters())
    return max(float((after[k].detach() - v).abs().max()) for k, v in before.items()) if before else 0.0


# -- examples rendered with the serving renderer --------------------------------------------------
def render_example(messages: list[Message] | list[dict], system: str | None = None,
                   fmt: ChatFormat = HUMAN_ASSISTANT) -> tuple[str, str]:
    """(prompt, completion) for a conversation whose last message is the assistant's answer.

    The prompt is exactly what the server renders for the conversation so far (the model's own
    template and default system prompt); the completion is the answer followed by the format's
    end of turn, so the model learns to stop."""
    msgs = [m if isinstance(m, Message) else Message(m["role"], m["content"]) for m in messages]
    return fmt.render_answer(msgs, system)


def tokenize_example(tokenizer, prompt: str, completion: str, max_length: int) -> dict[str, list[int]] | None:
    """input_ids (with BOS, as llama.cpp adds it) and a mask of completion tokens; None if the
    prompt alone would not leave room for a useful part of the answer."""
    prompt_ids = tokenizer(prompt, add_special_tokens=True)["input_ids"]
    full_ids = tokenizer(prompt + completion, add_special_tokens=True)["input_ids"]
    k = 0
    while k < min(len(prompt_ids), len(full_ids)) and prompt_ids[k] == full_ids[k]:
        k += 1
    if k > max_length - 16:
        return None
    full_ids = full_ids[:max_length]
    return {"input_ids": full_ids, "completion_mask": [0] * k + [1] * (len(full_ids) - k)}


# -- data files -----------------------------------------------------------------------------------
def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        raise InvalidRequestError(f"{path} does not exist", field="data")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except ValueError as exc:
                raise InvalidRequestError(f"{path}:{n}: not JSON: {exc}", field="data") from exc
    return rows


def write_jsonl(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> int:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


# -- what a run leaves behind ----------------------------------------------------------------------
def hardware() -> str:
    try:
        import torch

        if torch.cuda.is_available():
            return f"{torch.cuda.device_count()}× {torch.cuda.get_device_name(0)}"
        threads = torch.get_num_threads()
    except ImportError:  # pragma: no cover
        threads = os.cpu_count() or 1
    return f"CPU ({platform.machine()}, {threads} threads, {os.cpu_count()} cores)"


def _as_dict(config: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return dataclasses.asdict(config)
    return dict(config)


def write_run_files(out_dir: Path, method: str, config: Any, metrics: dict[str, Any], card: str) -> None:
    """config.json (resolved), metrics.json, and README.md (the model card)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = _as_dict(config)
    (out_dir / "config.json").write_text(json.dumps({"method": method, **cfg}, indent=2, default=str) + "\n")
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str) + "\n")
    (out_dir / "README.md").write_text(card)


def model_card(title: str, method: str, config: Any, metrics: dict[str, Any], data_lines: list[str],
               notes: Sequence[str] = ()) -> str:
    cfg = _as_dict(config)
    hours = metrics.get("train_seconds", 0) / 3600
    lines = [
        f"# {title}", "",
        f"A LoRA adapter for Candor's embedded model, trained by `candor train {method}`.", "",
        "## Data", *[f"- {d}" for d in data_lines], "",
        "## Training",
        f"- method: {method}; base: `{cfg.get('base')}`" + (f"; starting adapter: `{cfg.get('init_adapter')}`"
                                                             if cfg.get("init_adapter") else ""),
        (f"- examples: {metrics.get('examples')}; steps: {metrics.get('steps')}; epochs: {cfg.get('epochs')}; "
         f"batch: {cfg.get('batch_size')} × grad-accum {cfg.get('grad_accum')}; "
         f"learning rate: {cfg.get('learning_rate')}"),
        f"- LoRA r={cfg.get('lora_r')}, alpha={cfg.get('lora_alpha')}, targets {cfg.get('lora_targets')}",
        (f"- trained tokens: {metrics.get('trained_tokens')}; wall time: {metrics.get('train_seconds', 0):.0f} s "
         f"({hours:.2f} h) on {metrics.get('hardware')}"),
        f"- loss: first logged {metrics.get('first_loss')}, last logged {metrics.get('last_loss')}",
        "", "## Loss curve (logged steps)", "",
        "| step | loss |", "|---|---|",
        *[f"| {s} | {v:.4f} |" for s, v in metrics.get("loss_curve", [])],
        "", "## Notes", *[f"- {n}" for n in notes],
        f"- The base, `{cfg.get('base')}`, is a very small model; expect weak answers even after training.",
        f"- Resolved settings: `config.json`; numbers: `metrics.json`. Python {sys.version.split()[0]}.", "",
    ]
    return "\n".join(lines)


def progress_callback(total_steps: int, desc: str):
    """A transformers callback that draws a tqdm bar with loss and trained tokens/s."""
    from tqdm import tqdm
    from transformers import TrainerCallback

    class _Bar(TrainerCallback):
        def __init__(self):
            self.bar = None
            self.started = 0.0
            self.losses: list[tuple[int, float]] = []

        def on_train_begin(self, args, state, control, **kwargs):
            self.bar = tqdm(total=total_steps, desc=desc, file=sys.stderr, dynamic_ncols=True)
            self.started = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.bar.update(state.global_step - self.bar.n)

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            if "loss" in logs:
                self.losses.append((state.global_step, float(logs["loss"])))
            tokens = getattr(state, "num_input_tokens_seen", 0) or 0
            rate = tokens / max(time.perf_counter() - self.started, 1e-9)
            post = {k: f"{v:.4f}" for k, v in logs.items() if k in ("loss", "rewards/accuracies", "rewards/margins")}
            if tokens:
                post["tok/s"] = f"{rate:.0f}"
            self.bar.set_postfix(post)

        def on_train_end(self, args, state, control, **kwargs):
            if self.bar:
                self.bar.close()

    return _Bar()


def check_output_dir(out: Path, overwrite: bool) -> None:
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise CandorError(f"{out} is not empty; pass --overwrite to replace it")
