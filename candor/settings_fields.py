"""Settings dataclasses shown as command-line options: `opt()` declares a field with a default and
help text; `click_options` turns a dataclass's fields into options of a click command, and
`settings_from` builds the dataclass back from the parsed values.

Used by `candor cai …` and `candor train …` (their settings live in candor.cai and candor.train).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import field
from typing import Any


def opt(default: Any, help: str, **kwargs) -> Any:
    """A config field with a default and help text (shown by `candor train … --help`)."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help, **kwargs})
    return field(default=default, metadata={"help": help, **kwargs})


def click_options(cls):
    """Decorate a click command with one option per field of `cls` (help and default shown)."""
    import click

    def decorate(fn):
        for f in reversed(dataclasses.fields(cls)):
            name = "--" + f.name.replace("_", "-")
            help_text = f.metadata.get("help", "")
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            if isinstance(default, bool):
                fn = click.option(f"{name}/--no-{f.name.replace('_', '-')}", f.name, default=default,
                                  show_default=True, help=help_text)(fn)
            elif isinstance(default, list):
                fn = click.option(name, f.name, multiple=True, help=help_text + " (repeatable)")(fn)
            else:
                fn = click.option(name, f.name, type=type(default), default=default, show_default=True,
                                  help=help_text)(fn)
        return fn

    return decorate


def settings_from(cls, values: Mapping[str, Any]):
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: (list(v) if isinstance(v, tuple) else v) for k, v in values.items() if k in names})
