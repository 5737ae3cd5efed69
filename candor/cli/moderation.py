"""`candor moderation train|eval|check`: reproduce the moderation heads and their measured figures."""

from __future__ import annotations

import json

import click

from candor.cli.common import handle_errors
from candor.moderation.dataset import FRESH_SETS
from candor.moderation.second_look import SUBJECTS
from candor.settings_fields import click_options, settings_from


@click.group("moderation")
def moderation():
    """The moderation classifiers: train, measure, try."""


def _train_config():
    from candor.moderation.train import TrainConfig

    return TrainConfig


@moderation.command("train")
@click_options(_train_config())
@click.option("--card/--no-card", default=True, show_default=True,
              help="Measure the new heads on the test split and write CARD.md next to them.")
@handle_errors
def train_command(card, **values):
    """Fine-tune the encoder with the input heads and fit the output head on the data folder's sets
    (about 10 minutes on a 2-core CPU for the 3- and 6-layer variants, and about 22 more the first time,
    while the default model answers the requests the output head learns from; see the card)."""
    from pathlib import Path

    from candor.moderation import dataset as ds
    from candor.moderation import train as t
    from candor.train.moderation import train

    config = settings_from(t.TrainConfig, values)
    summary = train(config, log=click.echo)
    if card:
        figures = t.evaluate(config.out, config.data_dir or None, "test")
        for name in ds.FRESH_SETS:
            figures[name] = t.evaluate_fresh(config.out, name=name)
        figures["long"] = t.evaluate_long(config.out)
        t.write_card(summary, figures, Path(config.out).with_name("CARD.md"))
        click.echo(json.dumps(figures, indent=1))


@moderation.command("second-look")
@click.option("--category", type=click.Choice(list(SUBJECTS)), default="sexual/minors", show_default=True,
              help="The category whose readings the specialist re-reads (candor.moderation.second_look.SUBJECTS; "
                   "sexual/minors ships, the others were measured and not shipped: README).")
@click.option("--heads", default=None, help="The heads file to add it to (default: the one shipped with Candor).")
@click.option("--out", default=None, help="Where to write the heads with the second look (default: --heads).")
@click.option("--seed", default=0, show_default=True, help="Seed for initialisation, dropout and batch order.")
@click.option("--data-dir", default=None, help="Data folder (default: CANDOR_DATA_DIR or ../shared/data).")
@handle_errors
def second_look_command(category, heads, out, seed, data_dir):
    """Fine-tune a specialist that re-reads the requests the input heads put in CATEGORY, on that
    subject's requests only, and add it to the heads (about 4 minutes on a 2-core CPU)."""
    from candor.moderation.classifier import HEADS_FILE
    from candor.train.moderation import train_second_look

    train_second_look(heads or HEADS_FILE, category, seed=seed, data_dir=data_dir, out=out, log=click.echo)


@moderation.command("quick-read")
@click.option("--heads", default=None, help="The heads file to add it to (default: the one shipped with Candor).")
@click.option("--out", default=None, help="Where to write the heads with the quick read (default: --heads).")
@click.option("--epochs", default=5, show_default=True, help="Fine-tuning epochs (the best on validation is kept).")
@click.option("--seed", default=0, show_default=True, help="Seed for the training forms, initialisation and batch order.")
@click.option("--data-dir", default=None, help="Data folder (default: CANDOR_DATA_DIR or ../shared/data).")
@handle_errors
def quick_read_command(heads, out, epochs, seed, data_dir):
    """Fine-tune the quick read, a 3-layer first pass that lets plainly safe requests through without
    the full read, on the heads' own full read, and add it to the heads (about 31 minutes on a 2-core CPU).
    Measured and not shipped (README, Moderation): write it to another file with --out and measure it
    with benchmarks/moderation.py --heads."""
    from candor.moderation.classifier import HEADS_FILE
    from candor.train.moderation import train_quick_read

    train_quick_read(heads or HEADS_FILE, epochs=epochs, seed=seed, data_dir=data_dir, out=out, log=click.echo)


@moderation.command("eval")
@click.option("--heads", default=None, help="A heads file (default: the one shipped with Candor).")
@click.option("--data-dir", default=None, help="Data folder (default: CANDOR_DATA_DIR or ../shared/data).")
@click.option("--split", type=click.Choice(["train", "validation", "test", *FRESH_SETS]),
              default="test", show_default=True, help="fresh*: the fresh held-out sets (candor/data/moderation/"
                                      "fresh-held-out*.txt, input check only).")
@click.option("--answers-model", default="candor-instant", show_default=True,
              help="Also measure the output head on this model's own answers (generated once, about 22 minutes "
                   "on 2 cores, then cached); '' skips them.")
@handle_errors
def eval_command(heads, data_dir, split, answers_model):
    """Recall, false flags, per-category precision/recall and the output head's figures on a split."""
    from candor.moderation.classifier import HEADS_FILE
    from candor.moderation.train import evaluate, evaluate_fresh

    if split.startswith("fresh"):
        click.echo(json.dumps(evaluate_fresh(heads or HEADS_FILE, name=split), indent=1))
        return
    click.echo(json.dumps(evaluate(heads or HEADS_FILE, data_dir, split, answers_model=answers_model), indent=1))


@moderation.command("redact-stored")
@handle_errors
def redact_stored_command():
    """Redact e-mail addresses, phone, card and national id numbers and street addresses from the
    stored conversations (and kept moderation texts); run it on a schedule for CANDOR_PII_REDACT=stored."""
    from candor.moderation.records import redact_stored
    from candor.store import open_store

    click.echo(f"redacted {redact_stored(open_store())} stored texts")


@moderation.command("check")
@click.argument("texts", nargs=-1, required=True)
@handle_errors
def check(texts):
    """Score TEXTS with the input classifier (as POST /v1/moderations would)."""
    from candor.moderation.classifier import classifier
    from candor.moderation.policy import Modes, load_policy

    clf = classifier()
    policy = load_policy(clf.heads, modes=Modes())
    for text, score in zip(texts, clf.request_scores(list(texts), policy.read_parts)):
        flagged = policy.decide_input(score, "flag").flagged  # the category's threshold, as the endpoint's
        click.echo(f"{'FLAGGED' if flagged else 'ok':8s} {score.harmful:.3f} {score.top:15s} {text}")
