"""Every CANDOR_* environment setting, declared once with its default and meaning, and read only
through `env` (a test holds the code to that, and the README's configuration table to this list).

`candor settings` prints them with the values in effect.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Setting:
    default: str | None
    help: str


SETTINGS: dict[str, Setting] = {
    "CANDOR_HOME": Setting("~/.candor", "Candor's own files: models/ cache, api-key, the SQLite store"),
    "CANDOR_MODELS_FILE": Setting(None, "a TOML file of registry entries that extend or override the built-in ones"),
    "CANDOR_DEFAULT_MODEL": Setting(None, "the model used when none is named (default: the first registry entry)"),
    "CANDOR_MAX_WAITING": Setting("16", "requests that may wait per model before new ones get 529"),
    "CANDOR_SLOTS": Setting(None, "requests an embedded model decodes together (continuous batching); default "
                                  "16, fewer when 16 KV caches of the slot context would pass 4 GiB"),
    "CANDOR_SLOT_CONTEXT": Setting(None, "tokens of KV cache per slot, the most one request may use (default: "
                                         "the model's context window; smaller saves memory)"),
    "CANDOR_API_KEYS": Setting(None, "bootstrap API keys, comma-separated (administrators without limits)"),
    "CANDOR_ALLOWED_HOSTS": Setting(None, "extra Host names the server answers to, comma-separated; * turns the check off"),
    "CANDOR_SIGNIN_MAX_FAILURES": Setting("5", "failed sign-ins per name (4x per address) before sign-in answers 429"),
    "CANDOR_SIGNIN_WINDOW_S": Setting("900", "the window, in seconds, over which failed sign-ins count"),
    "CANDOR_INSECURE_COOKIES": Setting(None, "any value: no Secure flag on the session cookie over plain http to "
                                             "a non-loopback address (trying a LAN deployment without TLS)"),
    "CANDOR_DATABASE_URL": Setting(None, "the store (default SQLite in $CANDOR_HOME/candor.db; postgresql://… too)"),
    "CANDOR_REDIS_URL": Setting(None, "keep rate-limit buckets in Redis instead of the database"),
    "CANDOR_RETENTION_DAYS": Setting(None, "conversation retention used by `candor purge`"),
    "CANDOR_CONSTITUTION": Setting(None, "a constitution file replacing candor/constitution/default.yaml"),
    "CANDOR_DATA_DIR": Setting(None, "evaluation and alignment data sets (else ../shared/data, then $CANDOR_HOME/data)"),
    "CANDOR_UNSAFE_SANDBOX": Setting(None, "1: let humaneval run model code where bubblewrap cannot isolate it"),
    "CANDOR_EVAL_API_KEY": Setting(None, "the API key `candor eval --endpoint` sends"),
    "CANDOR_MODERATION": Setting("off", "off | flag | block: moderation of requests and answers"),
    "CANDOR_MODERATION_INPUT": Setting(None, "off | flag | block for requests only (overrides CANDOR_MODERATION)"),
    "CANDOR_MODERATION_OUTPUT": Setting(None, "off | flag | block for answers only (overrides CANDOR_MODERATION)"),
    "CANDOR_MODERATION_POLICY": Setting(None, "a moderation policy TOML (thresholds, overrides, decline messages)"),
    "CANDOR_MODERATION_HEADS": Setting(None, "a moderation classifier heads file replacing the packaged one"),
    "CANDOR_MODERATION_KEEP_TEXT": Setting(None, "1: keep the judged text of moderation decisions (purged like "
                                                 "conversations); else only category, score and action"),
    "CANDOR_EMBEDDINGS_PRECISION": Setting("auto", "auto | bf16 | float32: the sentence encoder's matrix "
                                                   "products (auto: bf16 where the CPU has bf16 instructions)"),
    "CANDOR_PII_REDACT": Setting(None, "where to redact personal data: answers (as they stream), stored "
                                       "(candor moderation redact-stored), or both, comma-separated"),
    "CANDOR_PII_REGION": Setting("US", "the country whose phone numbers may be written without +country code"),
    "CANDOR_FILES_MAX_BYTES": Setting("31457280", "largest Files API upload in bytes (30 MiB; under the 32 MiB "
                                                  "request limit the multipart body must fit)"),
    "CANDOR_SERVE_SETTINGS": Setting(None, "internal: what `candor serve` hands its worker processes (JSON)"),
}


def env(name: str, default: str | None = None) -> str | None:
    """The value of a declared setting (None when unset or blank), else `default`, else the
    declared default. An undeclared name is a programming error."""
    if name not in SETTINGS:
        raise KeyError(f"{name} is not declared in candor.config.SETTINGS")
    raw = os.environ.get(name)
    if raw is not None and raw.strip():
        return raw.strip()
    return default if default is not None else SETTINGS[name].default


def env_flag(name: str) -> bool:
    return (env(name) or "").lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    home: Path
    max_waiting: int
    slots: int | None = None
    slot_context: int | None = None

    @property
    def models_dir(self) -> Path:
        return self.home / "models"


def settings() -> Settings:
    home = Path(env("CANDOR_HOME") or "~/.candor").expanduser()
    return Settings(home=home, max_waiting=env_int("CANDOR_MAX_WAITING", minimum=0),
                    slots=env_int("CANDOR_SLOTS") if env("CANDOR_SLOTS") else None,
                    slot_context=env_int("CANDOR_SLOT_CONTEXT", minimum=16) if env("CANDOR_SLOT_CONTEXT") else None)


def env_int(name: str, minimum: int = 1) -> int:
    """A whole-number setting, refused with its name and limit when it is not one."""
    raw = env(name) or ""
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number >= {minimum}, got {raw!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum}, got {raw!r}")
    return value
