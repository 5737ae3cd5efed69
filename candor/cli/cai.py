"""`candor cai …`: Constitutional AI data — critique/revision, AI feedback, agreement, dedup."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import click

from candor.cai.feedback import FeedbackSettings
from candor.cai.judged import JudgedPairsSettings
from candor.cai.revise import ReviseSettings
from candor.cli.common import handle_errors, make_hub
from candor.settings_fields import click_options, settings_from


@click.group()
def cai():
    """Constitutional AI data generation (SL-CAI revisions, AI feedback labels)."""


def _hub(models_file):
    return make_hub(models_file)


@cai.command()
@click_options(ReviseSettings)
@click.option("--models-file", default=None, help="Extra registry TOML (default: $CANDOR_MODELS_FILE).")
@handle_errors
def revise(models_file, **values):
    """Red-team prompts → answer → N critique/revision rounds (JSONL with every step)."""
    from candor.cai.revise import run_revise

    cfg = settings_from(ReviseSettings, values)
    hub = _hub(models_file)
    hub.registry.get(cfg.model)

    async def run():
        try:
            return await run_revise(await hub.get(cfg.model), cfg, log=lambda m: click.echo(m, err=True))
        finally:
            await hub.close()

    click.echo(json.dumps(asyncio.run(run())))


@cai.command()
@click_options(FeedbackSettings)
@click.option("--models-file", default=None, help="Extra registry TOML (default: $CANDOR_MODELS_FILE).")
@handle_errors
def feedback(models_file, **values):
    """Two policy samples per prompt, labelled by a feedback model's A/B log-probabilities."""
    from candor.cai.feedback import run_feedback

    cfg = settings_from(FeedbackSettings, values)
    hub = _hub(models_file)
    hub.registry.get(cfg.policy)
    hub.registry.get(cfg.feedback_model)

    async def run():
        try:
            return await run_feedback(await hub.get(cfg.policy), await hub.get(cfg.feedback_model), cfg,
                                      log=lambda m: click.echo(m, err=True))
        finally:
            await hub.close()

    click.echo(json.dumps(asyncio.run(run())))


@cai.command("judged-pairs")
@click_options(JudgedPairsSettings)
@click.option("--models-file", default=None, help="Extra registry TOML (default: $CANDOR_MODELS_FILE).")
@handle_errors
def judged_pairs(models_file, **values):
    """Policy answers labelled by the rule judge → DPO pairs (refuse red-team, help the rest)."""
    from candor.cai.judged import run_judged_pairs

    cfg = settings_from(JudgedPairsSettings, values)
    hub = _hub(models_file)
    hub.registry.get(cfg.policy)

    async def run():
        try:
            return await run_judged_pairs(await hub.get(cfg.policy), cfg, log=lambda m: click.echo(m, err=True))
        finally:
            await hub.close()

    click.echo(json.dumps(asyncio.run(run())))


@cai.command()
@click.option("--model", "model_name", default="candor-instant", show_default=True, help="The feedback model.")
@click.option("--pairs", type=int, default=200, show_default=True, help="Held-out hh-rlhf harmless-base pairs.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for principle draws and option order.")
@click.option("--fewshot", type=int, default=2, show_default=True, help="Few-shot labelled comparisons.")
@click.option("--one-order", is_flag=True, help="Ask each pair in one option order only.")
@click.option("--ensemble", type=int, default=1, show_default=True, help="Principles averaged per pair.")
@click.option("--chat", is_flag=True, help="Ask in the model's chat format (instruction-tuned models).")
@click.option("--max-chars", type=int, default=2000, show_default=True, help="Skip pairs longer than this.")
@click.option("--constitution", "constitution_file", default=None, help="Constitution file.")
@click.option("--data-dir", default=None, help="Data folder holding hh-rlhf/.")
@click.option("--out", default=None, help="Also write the result as JSON to this file.")
@click.option("--models-file", default=None, help="Extra registry TOML (default: $CANDOR_MODELS_FILE).")
@handle_errors
def agreement(model_name, pairs, seed, fewshot, one_order, ensemble, chat, max_chars, constitution_file, data_dir,
              out, models_file):
    """How often the feedback model agrees with human harmlessness labels (hh-rlhf)."""
    from candor.cai.feedback import measure_agreement
    from candor.constitution import load_constitution

    hub = _hub(models_file)
    hub.registry.get(model_name)
    constitution = load_constitution(constitution_file)

    async def run():
        try:
            return await measure_agreement(await hub.get(model_name), pairs, seed, fewshot, not one_order,
                                           constitution, data_dir, max_chars, ensemble, chat)
        finally:
            await hub.close()

    result = asyncio.run(run())
    if out:
        Path(out).write_text(json.dumps(result, indent=2) + "\n")
    click.echo(json.dumps(result))


@cai.command()
@click.argument("files", nargs=-1)
@click.option("--helpful", type=int, default=0, help="hh-rlhf helpful-base conversations an SFT run took.")
@click.option("--harmless", type=int, default=0, help="hh-rlhf harmless-base conversations an SFT run took.")
@click.option("--out", default=None, help="Where to write (default: candor/data/alignment/train-prompts.txt).")
@click.option("--data-dir", default=None, help="Data folder holding the evaluation sets and hh-rlhf/.")
@handle_errors
def splits(files, helpful, harmless, out, data_dir):
    """Record the training prompts (hashes) and check that none is an evaluation prompt."""
    from candor.cai.splits import (
        TRAIN_FILE,
        eval_hashes,
        hh_training_prompts,
        prompt_hash,
        prompts_of,
        write_train_hashes,
    )

    groups = hh_training_prompts(helpful, harmless, data_dir)
    for file in files:
        groups[Path(file).name] = prompts_of(file)
    banned = eval_hashes(data_dir)
    overlap = {src: sum(prompt_hash(p) in banned for p in ps) for src, ps in groups.items()}
    n = write_train_hashes(groups, Path(out) if out else TRAIN_FILE)
    click.echo(json.dumps({"recorded": n, "sources": {k: len(v) for k, v in groups.items()},
                           "evaluation_prompts_among_them": overlap}))
    if any(overlap.values()):
        raise SystemExit(1)


@cai.command()
@click.argument("src")
@click.argument("dst")
@click.option("--threshold", type=float, default=0.8, show_default=True,
              help="Jaccard similarity at which rows count as near-duplicates.")
@handle_errors
def dedup(src, dst, threshold):
    """Drop exact and near-duplicate rows of a JSONL file (first occurrence kept)."""
    from candor.cai.dedup import dedup_rows
    from candor.train.common import read_jsonl, write_jsonl

    rows, report = dedup_rows(read_jsonl(src), threshold)
    write_jsonl(dst, rows)
    click.echo(json.dumps({"in": src, "out": dst, **report.as_dict()}))


@cai.command()
@click.argument("text")
@click.option("--model", "model_name", default=None, help="Registry name (default: the first entry).")
@click.option("--rounds", type=int, default=1, show_default=True, help="Critique/revision rounds.")
@click.option("--seed", type=int, default=None, help="Seed for principle draws and sampling.")
@click.option("--max-tokens", type=int, default=200, show_default=True, help="Most tokens per answer.")
@click.option("--temperature", type=float, default=0.0, show_default=True, help="0..1; 0 is greedy.")
@click.option("--system", default=None, help="System prompt.")
@click.option("--constitution", "constitution_file", default=None, help="Constitution file.")
@click.option("--models-file", default=None, help="Extra registry TOML (default: $CANDOR_MODELS_FILE).")
@handle_errors
def critique(text, model_name, rounds, seed, max_tokens, temperature, system, constitution_file, models_file):
    """Answer TEXT with self-critique: draft, critiques and final revision as JSON."""
    from candor.cai.critique import CritiqueSettings, parse_option, self_critique
    from candor.chat.render import Message
    from candor.chat.service import ChatParams
    from candor.constitution import load_constitution

    hub = _hub(models_file)
    name = model_name or hub.registry.default_name()
    params = ChatParams(max_tokens=max_tokens, temperature=temperature, seed=seed)
    params.validate(hub.registry.get(name))
    settings = parse_option({"rounds": rounds, "seed": seed}) or CritiqueSettings(rounds=0, seed=seed)
    constitution = load_constitution(constitution_file)

    async def run():
        try:
            return await self_critique(await hub.get(name), [Message("user", text)], system, params, settings,
                                       constitution)
        finally:
            await hub.close()

    click.echo(json.dumps(asyncio.run(run()).as_dict(), indent=2, ensure_ascii=False))
