"""Helpers shared by the CLI commands: loading a model with progress, and printing errors."""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable

import click

from candor.engine.hub import EngineHub
from candor.engine.weights import Progress, stderr_progress
from candor.errors import CandorError, InvalidRequestError, NotFoundError
from candor.registry import load_registry


def cli_progress() -> Progress:
    """Bars for assembling/verifying a packaged model, and a line for loading it."""
    bars = stderr_progress()
    started: dict[str, float] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage != "loading":
            bars(stage, done, total)
        elif done == 0:
            started["t"] = time.perf_counter()
            click.echo("loading model…", err=True, nl=False)
        else:
            click.echo(f" ready in {time.perf_counter() - started.get('t', time.perf_counter()):.1f} s", err=True)

    return update


def make_hub(models_file: str | None = None) -> EngineHub:
    return EngineHub(load_registry(models_file), progress=cli_progress())


def handle_errors(fn: Callable) -> Callable:
    """Print Candor errors as one line on stderr with a meaningful exit code (2: bad input)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except CandorError as exc:
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(2 if isinstance(exc, (InvalidRequestError, NotFoundError)) else 1)

    return wrapper
