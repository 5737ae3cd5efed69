"""SL-CAI data: red-team prompt → initial answer → N critique/revision rounds, each under a
principle drawn uniformly at random (seeded per prompt), as in Bai et al. (2022) §3.

Prompts are the first human turns of hh-rlhf harmless-base (the training part; the last rows are
held out) or any file the user gives. Any registry model generates: the embedded model, a remote
OpenAI-compatible server, or an Anthropic-compatible endpoint. Each output row keeps every
intermediate step and the principle used:

    {"id", "prompt", "initial", "steps": [{"round", "principle", "critique_request", "critique",
     "revision_request", "revision"}], "final", "model", "seed", "constitution", "usage"}

Rows are appended and flushed one by one, so an interrupted run can be resumed (`resume`).
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from candor.cai.critique import CritiqueSettings, critique_and_revise, generate
from candor.chat.render import Message
from candor.chat.service import ChatParams
from candor.constitution import load_constitution
from candor.engine.hub import LoadedModel
from candor.settings_fields import opt


@dataclass
class ReviseSettings:
    out: str = opt("revisions.jsonl", "Output JSONL file.")
    prompts: str = opt("", "A file of prompts (JSONL with `prompt`, or one per line); default: hh-rlhf "
                           "harmless-base first human turns.")
    limit: int = opt(16, "How many prompts to use (-1: all).")
    offset: int = opt(0, "Skip this many prompts first (to split work between runs).")
    rounds: int = opt(4, "Critique/revision rounds per prompt (the paper: 4).")
    model: str = opt("candor-instant", "Registry name of the model that answers, critiques and revises.")
    constitution: str = opt("", "Constitution file (default: CANDOR_CONSTITUTION or the packaged one).")
    seed: int = opt(0, "Seed: principle draws and sampling are reproducible from it.")
    temperature: float = opt(1.0, "Sampling temperature (the paper: 1).")
    max_tokens: int = opt(160, "Most tokens per answer and revision.")
    critique_max_tokens: int = opt(96, "Most tokens per critique.")
    fewshot: int = opt(3, "Few-shot critique/revision examples before each request (0-5).")
    data_dir: str = opt("", "Data folder holding hh-rlhf/ (default: CANDOR_DATA_DIR or ../shared/data).")
    resume: bool = opt(False, "Keep rows already in the output file and skip their prompts.")


def load_prompts(cfg: ReviseSettings) -> list[str]:
    from candor.cai import hh

    if cfg.prompts:
        prompts = hh.read_prompts(cfg.prompts)
    else:
        prompts = hh.first_human_turns("harmless-base", "train", None, cfg.data_dir or None)
    prompts = prompts[cfg.offset:]
    return prompts if cfg.limit < 0 else prompts[:cfg.limit]


async def revise_one(model: LoadedModel, prompt: str, index: int, cfg: ReviseSettings, constitution) -> dict[str, Any]:
    rng = random.Random(f"{cfg.seed}:{index}")
    principles = constitution.sample(rng, cfg.rounds)
    sample_seed = rng.randrange(1 << 30)
    params = ChatParams(max_tokens=cfg.max_tokens, temperature=cfg.temperature, seed=sample_seed)
    conversation = [Message("user", prompt)]
    initial, fin = await generate(model, conversation, None, params)
    settings = CritiqueSettings(rounds=cfg.rounds, critique_max_tokens=cfg.critique_max_tokens, fewshot=cfg.fewshot)
    result = await critique_and_revise(model, conversation, initial, principles, params, None, settings)
    return {
        "id": index, "prompt": prompt, "initial": initial,
        "steps": [asdict(s) for s in result.steps], "final": result.final,
        "model": model.name, "seed": cfg.seed,
        "constitution": f"{constitution.name}@{constitution.version}",
        "usage": {"input_tokens": fin.usage.input_tokens + result.input_tokens,
                  "output_tokens": fin.usage.output_tokens + result.output_tokens},
    }


async def run_revise(model: LoadedModel, cfg: ReviseSettings, log=print) -> dict[str, Any]:
    from tqdm import tqdm

    constitution = load_constitution(cfg.constitution or None)
    prompts = load_prompts(cfg)
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done: set[int] = set()
    if cfg.resume and out.is_file():
        done = {json.loads(line)["id"] for line in out.read_text(encoding="utf-8").splitlines() if line.strip()}
    mode = "a" if cfg.resume else "w"
    started, tokens, written = time.perf_counter(), 0, 0
    bar = tqdm(total=len(prompts), desc="revise", unit="prompt")
    with out.open(mode, encoding="utf-8") as f, bar:  # noqa: ASYNC230 - one short line per prompt
        for i, prompt in enumerate(prompts):
            index = cfg.offset + i
            if index in done:
                bar.update(1)
                continue
            row = await revise_one(model, prompt, index, cfg, constitution)
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            f.flush()
            written += 1
            tokens += row["usage"]["output_tokens"]
            bar.update(1)
            bar.set_postfix({"tok/s": f"{tokens / max(time.perf_counter() - started, 1e-9):.1f}"})
    summary = {"out": str(out), "prompts": len(prompts), "written": written, "skipped": len(done),
               "rounds": cfg.rounds, "output_tokens": tokens, "seconds": round(time.perf_counter() - started, 1)}
    log(f"revise: {written} prompts × {cfg.rounds} rounds → {out} ({summary['seconds']} s)")
    return summary
