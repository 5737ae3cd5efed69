"""The model registry: client-facing names mapped to weights, prompt format, limits and prices.

The registry is data (`candor/data/models.toml`), extended or overridden by a deployment's own
TOML file named by `CANDOR_MODELS_FILE`, so a model can be added or re-priced without editing code.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from candor.config import env
from candor.errors import InvalidRequestError, UnknownModelError

PromptFormat = Literal["human-assistant", "template", "auto"]
ENGINES = ("embedded", "remote")
PROMPT_FORMATS = ("human-assistant", "template", "auto")
REMOTE_APIS = ("completions", "chat")
DEFAULT_MAX_OUTPUT = 4096
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class ModelEntry:
    name: str
    engine: str = "embedded"
    weights: str = ""
    adapter: str = ""
    prompt_format: str = "auto"
    context_window: int = 8192
    max_output_tokens: int = DEFAULT_MAX_OUTPUT
    price_input_per_mtok: float = 0.0
    price_output_per_mtok: float = 0.0
    description: str = ""
    base_url: str = ""
    api_key_env: str = ""
    remote_model: str = ""
    remote_api: str = "chat"
    sha256: str = ""  # expected SHA-256 of the weights file, checked before it is loaded
    system_prompt: str = ""  # the system prompt used when a request brings none
    default_temperature: float = 1.0  # the temperature used when a request names none
    # Loop guard for the embedded engine (candor.engine.base.RepetitionGuard; llama.cpp's names):
    dry_multiplier: float = 0.0  # 0: off
    dry_base: float = 1.75
    dry_allowed_length: int = 2
    dry_penalty_last_n: int = 1024
    repeat_penalty: float = 1.0  # 1.0: off
    repeat_last_n: int = 64
    source: str = ""  # the file this entry (last) came from, for adapter paths and messages
    extra: dict[str, Any] = field(default_factory=dict)  # fields other issues add (rate limits…)

    def cost_usd(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.price_input_per_mtok + output_tokens * self.price_output_per_mtok) / 1e6

    def resolved(self, value: str) -> str:
        """`value` with ${VARS} expanded; unset variables leave the text empty."""
        return _VAR.sub(lambda m: os.environ.get(m.group(1), ""), value).strip()

    def adapter_path(self) -> Path | None:
        text = self.resolved(self.adapter)
        if not text:
            return None
        path = Path(text).expanduser()
        if not path.is_absolute() and self.source:
            path = Path(self.source).parent / path
        return path

    def missing_settings(self, value: str) -> list[str]:
        return [m for m in _VAR.findall(value) if not os.environ.get(m)]


_KNOWN = {f.name for f in fields(ModelEntry)} - {"name", "source", "extra"}


class Registry:
    def __init__(self, entries: dict[str, ModelEntry]):
        self._entries = dict(entries)

    @property
    def names(self) -> list[str]:
        return list(self._entries)

    def __iter__(self):
        return iter(self._entries.values())

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def get(self, name: str) -> ModelEntry:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownModelError(name, self.names) from None

    def default_name(self) -> str:
        return env("CANDOR_DEFAULT_MODEL") or self.names[0]

    def add(self, entry: ModelEntry) -> None:
        self._entries[entry.name] = entry


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _entry_from(name: str, data: dict[str, Any], base: ModelEntry | None, source: str) -> ModelEntry:
    where = f"{source}: models.{name}"
    known = {k: v for k, v in data.items() if k in _KNOWN}
    extra = {k: v for k, v in data.items() if k not in _KNOWN}
    entry = replace(base, **known, source=source, extra={**base.extra, **extra}) if base \
        else ModelEntry(name=name, **known, source=source, extra=extra)
    checks = [
        ("engine", entry.engine in ENGINES, f"must be one of {', '.join(ENGINES)}"),
        ("prompt_format", entry.prompt_format in PROMPT_FORMATS, f"must be one of {', '.join(PROMPT_FORMATS)}"),
        ("remote_api", entry.remote_api in REMOTE_APIS, f"must be one of {', '.join(REMOTE_APIS)}"),
        ("context_window", isinstance(entry.context_window, int) and entry.context_window >= 16, "must be an integer >= 16"),
        ("max_output_tokens", isinstance(entry.max_output_tokens, int) and 1 <= entry.max_output_tokens,
         "must be an integer >= 1"),
        ("price_input_per_mtok", isinstance(entry.price_input_per_mtok, (int, float)) and entry.price_input_per_mtok >= 0, "must be a number >= 0"),
        ("price_output_per_mtok", isinstance(entry.price_output_per_mtok, (int, float)) and entry.price_output_per_mtok >= 0, "must be a number >= 0"),
        ("weights", entry.engine != "embedded" or bool(entry.weights), "is required for embedded models"),
        ("base_url", entry.engine != "remote" or bool(entry.base_url), "is required for remote models"),
        ("sha256", not entry.sha256 or bool(re.fullmatch(r"[0-9a-f]{64}", entry.sha256)),
         "must be 64 lowercase hex digits"),
        ("system_prompt", isinstance(entry.system_prompt, str), "must be a string"),
        ("default_temperature", isinstance(entry.default_temperature, (int, float))
         and 0 <= entry.default_temperature <= 1, "must be a number in 0..1"),
        ("dry_multiplier", _number(entry.dry_multiplier) and entry.dry_multiplier >= 0, "must be a number >= 0"),
        ("dry_base", _number(entry.dry_base) and entry.dry_base > 1, "must be a number > 1"),
        ("dry_allowed_length", _integer(entry.dry_allowed_length) and entry.dry_allowed_length >= 1,
         "must be an integer >= 1"),
        ("dry_penalty_last_n", _integer(entry.dry_penalty_last_n) and entry.dry_penalty_last_n >= 1,
         "must be an integer >= 1"),
        ("repeat_penalty", _number(entry.repeat_penalty) and entry.repeat_penalty > 0, "must be a number > 0"),
        ("repeat_last_n", _integer(entry.repeat_last_n) and entry.repeat_last_n >= 1, "must be an integer >= 1"),
        ("dry_multiplier", entry.engine == "embedded" or (entry.dry_multiplier == 0 and entry.repeat_penalty == 1.0),
         "and repeat_penalty apply to embedded models only (a remote server has its own sampling settings)"),
    ]
    for name_of_field, ok, why in checks:
        if not ok:
            raise InvalidRequestError(f"{where}.{name_of_field} {why}", field=name_of_field)
    return entry


def _merge_file(entries: dict[str, ModelEntry], text: str, source: str) -> None:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidRequestError(f"{source} is not valid TOML: {exc}", field="models_file") from exc
    tables = data.get("models") or {}
    if not isinstance(tables, dict):
        raise InvalidRequestError(f"{source}: write each model as a [models.NAME] table, not a list",
                                  field="models_file")
    for name, body in tables.items():
        if not isinstance(body, dict):
            raise InvalidRequestError(f"{source}: models.{name} must be a table", field="models_file")
        entries[name] = _entry_from(name, body, entries.get(name), source)


def load_registry(user_file: str | Path | None = None) -> Registry:
    """The packaged registry, then the user's file (argument, or CANDOR_MODELS_FILE) on top."""
    entries: dict[str, ModelEntry] = {}
    packaged = resources.files("candor") / "data" / "models.toml"
    _merge_file(entries, packaged.read_text(encoding="utf-8"), str(packaged))
    user_file = user_file or env("CANDOR_MODELS_FILE")
    if user_file:
        path = Path(user_file).expanduser()
        if not path.is_file():
            raise InvalidRequestError(f"models file {path} does not exist", field="CANDOR_MODELS_FILE")
        _merge_file(entries, path.read_text(encoding="utf-8"), str(path))
    return Registry(entries)
