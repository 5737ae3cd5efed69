"""`candor feedback export`: chat-page votes and ratings as DPO preference pairs (JSONL)."""

from __future__ import annotations

import sys

import click

from candor.cli.common import handle_errors


@click.group()
def feedback():
    """Human feedback collected on the chat page."""


@feedback.command("export")
@click.option("--out", "out_path", default="-", show_default=True, help="JSONL file, or - for stdout.")
@handle_errors
def export(out_path):
    """Write preference pairs (prompt, chosen, rejected + metadata) as TRL's DPO trainer reads them."""
    from candor.store import open_store
    from candor.web.feedback import write_jsonl

    store = open_store()
    if out_path == "-":
        n = write_jsonl(store, sys.stdout)
    else:
        with open(out_path, "w", encoding="utf-8") as f:
            n = write_jsonl(store, f)
    click.echo(f"{n} preference pairs", err=True)
