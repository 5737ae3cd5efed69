"""`candor settings`: every CANDOR_* environment setting, its value in effect and what it does."""

from __future__ import annotations

import json
import os

import click

from candor.cli.common import handle_errors
from candor.config import SETTINGS, env
from candor.text_table import format_table

SECRET = {"CANDOR_API_KEYS", "CANDOR_EVAL_API_KEY", "CANDOR_DATABASE_URL", "CANDOR_REDIS_URL"}  # may hold secrets


@click.command("settings")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def settings_command(as_json):
    """List the CANDOR_* settings (values that may hold secrets are shown only as set or not)."""
    rows = []
    for name, setting in SETTINGS.items():
        value = env(name)
        shown = ("(set)" if os.environ.get(name, "").strip() else "-") if name in SECRET else (value or "-")
        source = "environment" if os.environ.get(name, "").strip() else "default"
        rows.append({"name": name, "value": shown, "source": source, "meaning": setting.help})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        click.echo(format_table(list(rows[0]), [list(r.values()) for r in rows]))
