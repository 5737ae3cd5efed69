"""`candor models`: the registry as a table."""

from __future__ import annotations

import json

import click

from candor.cli.common import handle_errors
from candor.engine.weights import weights_present
from candor.registry import load_registry
from candor.text_table import format_table


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the registry as JSON.")
@click.option("--models-file", default=None, help="Extra registry TOML (default: $CANDOR_MODELS_FILE).")
@handle_errors
def models(as_json, models_file):
    """List the models in the registry and whether their weights are here."""
    registry = load_registry(models_file)
    records = []
    for e in registry:
        where = e.resolved(e.base_url) if e.engine == "remote" else e.weights
        records.append({
            "name": e.name, "engine": e.engine, "weights": where or "(unset)",
            "adapter": str(e.adapter_path() or "") or "-", "context_window": e.context_window,
            "max_output_tokens": e.max_output_tokens, "price_input_per_mtok": e.price_input_per_mtok,
            "price_output_per_mtok": e.price_output_per_mtok, "present": weights_present(e),
        })
    if as_json:
        click.echo(json.dumps(records, indent=2))
        return
    headers = ["name", "engine", "weights", "adapter", "context", "max out", "$/MTok in", "$/MTok out", "present"]
    rows = [[r["name"], r["engine"], r["weights"], r["adapter"], f"{r['context_window']:,}",
             f"{r['max_output_tokens']:,}", f"{r['price_input_per_mtok']:.2f}", f"{r['price_output_per_mtok']:.2f}",
             "yes" if r["present"] else "no"] for r in records]
    click.echo(format_table(headers, rows))
