"""`candor report RUN…`: the report card of evaluation runs; `--diff A B`: what changed between two."""

from __future__ import annotations

from pathlib import Path

import click

from candor.cli.common import handle_errors


@click.command("report")
@click.argument("runs", nargs=-1, type=click.Path(exists=True, file_okay=False))
@click.option("--out", type=click.Path(file_okay=False), default="candor-report", show_default=True,
              help="Folder for report.md, report.html and the plots.")
@click.option("--diff", "diff", nargs=2, type=click.Path(exists=True, file_okay=False), default=None,
              help="Two run folders of one task: list the items whose score changed.")
@click.option("--max-rows", type=int, default=50, show_default=True, help="Changed items shown by --diff.")
@handle_errors
def report(runs, out, diff, max_rows):
    """Write the report card for RUN folders (a run, or any folder holding runs)."""
    from candor.errors import InvalidRequestError
    from candor.evals.report import diff_runs, write_report

    if diff:
        click.echo(diff_runs(Path(diff[0]), Path(diff[1]), max_rows), nl=False)
        return
    if not runs:
        raise InvalidRequestError("name at least one run folder (or use --diff A B)", field="runs")
    for path in write_report([Path(r) for r in runs], Path(out)):
        click.echo(str(path))
