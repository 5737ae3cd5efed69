"""`candor constitution show|validate|diff`: read, check and compare constitutions."""

from __future__ import annotations

import json
import sys

import click

from candor.cli.common import handle_errors
from candor.constitution import ConstitutionError, constitution_path, diff_constitutions, load_constitution


@click.group()
def constitution():
    """The principles the assistant critiques and revises by (CANDOR_CONSTITUTION picks the file)."""


@constitution.command()
@click.argument("file", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the parsed constitution as JSON.")
@click.option("--id", "only", multiple=True, help="Show only these principles (repeatable).")
@handle_errors
def show(file, as_json, only):
    """Print a constitution (default: CANDOR_CONSTITUTION or the packaged one)."""
    c = load_constitution(file)
    principles = [c.get(p) for p in only] if only else list(c.principles)
    if as_json:
        data = c.as_dict()
        data["principles"] = [p.as_dict() for p in principles]
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    click.echo(f"{c.name or '(unnamed)'} v{c.version or '?'} — {len(c)} principles — {c.source}")
    if c.description:
        click.echo(c.description)
    for p in principles:
        click.echo(f"\n[{p.id}] {p.title}" + (f"  ({', '.join(p.topics)})" if p.topics else ""))
        click.echo(f"  critique:   {p.critique}")
        click.echo(f"  revision:   {p.revision}")
        click.echo(f"  comparison: {p.comparison}")


@constitution.command()
@click.argument("file", required=False)
def validate(file):
    """Check a constitution file; each problem names the principle and the field."""
    path = constitution_path(file)
    try:
        c = load_constitution(path)
    except ConstitutionError as exc:
        click.echo(f"{path}: invalid", err=True)
        for problem in exc.problems:
            click.echo(f"  {problem}", err=True)
        sys.exit(1)
    click.echo(f"{path}: ok, {len(c)} principles")


@constitution.command()
@click.argument("old")
@click.argument("new", required=False)
@handle_errors
def diff(old, new):
    """Principles added, removed or changed from OLD to NEW (default NEW: the one in use)."""
    a, b = load_constitution(old), load_constitution(new)
    lines = diff_constitutions(a, b)
    click.echo(f"--- {a.source}\n+++ {b.source}")
    click.echo("\n".join(lines) if lines else "(no differences)")
    sys.exit(1 if lines else 0)
