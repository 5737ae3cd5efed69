"""`candor train sft|dpo|export`: LoRA training for the embedded model and export to GGUF."""

from __future__ import annotations

import json

import click

from candor.cli.common import handle_errors
from candor.settings_fields import click_options, settings_from
from candor.train.dpo import DPOSettings
from candor.train.export import ExportSettings
from candor.train.sft import SFTSettings


def _log(message: str) -> None:
    click.echo(message, err=True)


@click.group()
def train():
    """Train LoRA adapters (SFT, DPO) and export them for serving. GPUs: `accelerate launch -m candor train …`."""


@train.command()
@click_options(SFTSettings)
@handle_errors
def sft(**values):
    """Supervised fine-tuning on revisions and/or hh-rlhf chosen answers."""
    from candor.train.sft import train_sft

    metrics = train_sft(settings_from(SFTSettings, values), log=_log)
    click.echo(json.dumps({k: v for k, v in metrics.items() if k != "loss_curve"}, default=str))


@train.command()
@click_options(DPOSettings)
@handle_errors
def dpo(**values):
    """Direct preference optimisation on AI-labelled pairs (and chat-page votes)."""
    from candor.train.dpo import train_dpo

    metrics = train_dpo(settings_from(DPOSettings, values), log=_log)
    click.echo(json.dumps({k: v for k, v in metrics.items() if k != "loss_curve"}, default=str))


@train.command()
@click_options(ExportSettings)
@handle_errors
def export(**values):
    """Convert a LoRA adapter to GGUF (llama.cpp's converter) and register it by name."""
    from candor.train.export import export as run_export

    click.echo(json.dumps(run_export(settings_from(ExportSettings, values), log=_log)))
