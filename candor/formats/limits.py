"""Size limits that keep every grammar's language bounded where it would otherwise be open.

A small model at temperature 0 can repeat itself forever; with no bound, a grammar lets it, and
the answer ends only at max_tokens, incomplete. So free-form strings, collections and nesting
have caps (options of `grammar_for`, checked here): a value the caller's JSON Schema bounds
itself (maxLength, maxItems) keeps the schema's bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from candor.errors import InvalidRequestError

RANGES = {"max_depth": (1, 8), "max_items": (1, 1000), "max_string": (1, 100_000), "max_blocks": (1, 1000)}


@dataclass(frozen=True)
class Limits:
    max_depth: int = 4  # levels of nested containers
    max_items: int = 16  # entries per object/array/mapping/sequence/element, lines per Markdown block
    max_string: int = 256  # characters in a free-form string, XML text or YAML scalar
    max_blocks: int = 32  # Markdown blocks


DEFAULT_LIMITS = Limits()


def check_limit(name: str, value: Any) -> int:
    lo, hi = RANGES[name]
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InvalidRequestError(f"must be an integer from {lo} to {hi}, got {value!r}", field=name)
    return value


def limits_from(options: dict[str, Any]) -> Limits:
    return Limits(**{k: check_limit(k, v) for k, v in options.items() if k in RANGES})
