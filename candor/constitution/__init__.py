"""The constitution: principles as data, loaded from YAML (or JSON) and validated.

Each principle has a critique request and a revision request (the supervised, critique-and-revise
stage) and a comparison question (the AI-feedback stage). The packaged file is `default.yaml`
next to this module; a deployment supplies its own with `CANDOR_CONSTITUTION=path` or the
`--constitution` option of the commands. Validation errors name the principle and the field.
"""

from __future__ import annotations

import difflib
import json
import os
import random
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from candor.config import env
from candor.errors import InvalidRequestError

DEFAULT_PATH = Path(__file__).resolve().parent / "default.yaml"
REQUIRED = ("critique", "revision", "comparison")
OPTIONAL = ("title", "topics")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


class ConstitutionError(InvalidRequestError):
    """A constitution file that cannot be used; the message names the principle and field."""

    def __init__(self, message: str, problems: Sequence[str] = ()):
        super().__init__(message, field="constitution")
        self.problems = list(problems) or [message]


@dataclass(frozen=True)
class Principle:
    id: str
    critique: str
    revision: str
    comparison: str
    title: str = ""
    topics: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["topics"] = list(self.topics)
        return data


@dataclass(frozen=True)
class Constitution:
    principles: tuple[Principle, ...]
    name: str = ""
    version: str = ""
    description: str = ""
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.principles)

    @property
    def ids(self) -> list[str]:
        return [p.id for p in self.principles]

    def get(self, principle_id: str) -> Principle:
        for p in self.principles:
            if p.id == principle_id:
                return p
        raise InvalidRequestError(f"unknown principle {principle_id!r}; known: {', '.join(self.ids)}",
                                  field="principle")

    def sample(self, rng: random.Random, k: int = 1) -> list[Principle]:
        """`k` principles drawn uniformly at random with replacement, as the paper does per step."""
        return [rng.choice(self.principles) for _ in range(k)]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "description": self.description,
                "principles": [p.as_dict() for p in self.principles]}


def constitution_path(path: str | os.PathLike | None = None) -> Path:
    """The file to load: the argument, else CANDOR_CONSTITUTION, else the packaged default."""
    chosen = path or env("CANDOR_CONSTITUTION")
    return Path(chosen).expanduser() if chosen else DEFAULT_PATH


def load_constitution(path: str | os.PathLike | None = None) -> Constitution:
    file = constitution_path(path)
    if not file.is_file():
        raise ConstitutionError(f"constitution file {file} does not exist")
    text = file.read_text(encoding="utf-8")
    return parse_constitution(text, source=str(file))


def parse_constitution(text: str, source: str = "<text>") -> Constitution:
    try:
        data = json.loads(text) if source.endswith(".json") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ConstitutionError(f"{source}: not valid {'JSON' if source.endswith('.json') else 'YAML'}: {exc}") \
            from exc
    problems = validate_data(data)
    if problems:
        head = f"{source}: {len(problems)} problem{'s' if len(problems) != 1 else ''}: " + "; ".join(problems)
        raise ConstitutionError(head, problems)
    principles = tuple(
        Principle(id=str(p["id"]), critique=_clean(p["critique"]), revision=_clean(p["revision"]),
                  comparison=_clean(p["comparison"]), title=str(p.get("title") or ""),
                  topics=tuple(str(t) for t in (p.get("topics") or ())))
        for p in data["principles"])
    extra = {k: v for k, v in data.items() if k not in ("name", "version", "description", "principles")}
    return Constitution(principles=principles, name=str(data.get("name") or ""),
                        version=str(data.get("version") or ""), description=_clean(data.get("description") or ""),
                        source=source, extra=extra)


def validate_data(data: Any) -> list[str]:
    """Every problem in a parsed constitution, each naming the principle and the field."""
    if not isinstance(data, dict):
        return ["the file must be a mapping with a 'principles' list"]
    items = data.get("principles")
    if not isinstance(items, list) or not items:
        return ["'principles' must be a non-empty list"]
    problems: list[str] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            problems.append(f"principle #{i}: must be a mapping with id, critique, revision, comparison")
            continue
        pid = item.get("id")
        label = f"principle #{i}" + (f" ({pid!r})" if pid else "")
        if not pid:
            problems.append(f"{label}: missing field 'id'")
        elif not isinstance(pid, str) or not _ID.match(pid):
            problems.append(f"{label}: field 'id' must be letters, digits, '-' or '_'")
        elif pid in seen:
            problems.append(f"{label}: duplicate id, also used by principle #{seen[pid]}")
        else:
            seen[pid] = i
        for name in REQUIRED:
            value = item.get(name)
            if value is None:
                problems.append(f"{label}: missing field {name!r}")
            elif not isinstance(value, str) or not value.strip():
                problems.append(f"{label}: field {name!r} must be non-empty text")
        if "topics" in item and not isinstance(item["topics"], list):
            problems.append(f"{label}: field 'topics' must be a list")
        unknown = sorted(set(item) - set(REQUIRED) - set(OPTIONAL) - {"id"})
        if unknown:
            problems.append(f"{label}: unknown field{'s' if len(unknown) > 1 else ''} "
                            + ", ".join(repr(u) for u in unknown))
    return problems


def _clean(text: str) -> str:
    return " ".join(str(text).split())


def diff_constitutions(old: Constitution, new: Constitution) -> list[str]:
    """A readable diff by principle: added, removed, and changed fields with a word-level diff."""
    lines: list[str] = []
    old_by = {p.id: p for p in old.principles}
    new_by = {p.id: p for p in new.principles}
    for pid in old_by.keys() - new_by.keys():
        lines.append(f"- removed principle {pid!r}")
    for pid in [p for p in new_by if p not in old_by]:
        lines.append(f"+ added principle {pid!r}: {new_by[pid].critique[:80]}")
    for pid in [p for p in new_by if p in old_by]:
        a, b = old_by[pid].as_dict(), new_by[pid].as_dict()
        for name in ("title", "topics") + REQUIRED:
            if a[name] != b[name]:
                lines.append(f"~ {pid}.{name}:")
                lines.extend("    " + line for line in _word_diff(str(a[name]), str(b[name])))
    if old.ids != new.ids and set(old.ids) == set(new.ids):
        lines.append("~ the principles are in a different order")
    return lines


def _word_diff(a: str, b: str) -> list[str]:
    words_a, words_b = a.split(), b.split()
    out: list[str] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=words_a, b=words_b).get_opcodes():
        if op in ("replace", "delete"):
            out.append("- " + " ".join(words_a[i1:i2]))
        if op in ("replace", "insert"):
            out.append("+ " + " ".join(words_b[j1:j2]))
    return out
