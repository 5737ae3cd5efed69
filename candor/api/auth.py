"""API keys for the server: `x-api-key` or `Authorization: Bearer`.

Until the accounts store exists, keys come from `CANDOR_API_KEYS` (comma-separated) or
`candor serve --api-key`; with neither, a key is generated once into CANDOR_HOME/api-key and
printed at start. `--no-auth` (loopback only) lets requests without a valid key use the model
endpoints, for local experiments; the admin and critique endpoints still need a key.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from fastapi import Request

from candor.config import env, settings

OPEN_PATHS = {"/health"}


def bootstrap_key_file() -> Path:
    return settings().home / "api-key"


def load_keys(explicit: list[str] | None = None) -> tuple[list[str], str | None]:
    """(keys, newly generated key or None)."""
    keys = [k.strip() for k in (explicit or []) if k.strip()]
    keys += [k.strip() for k in (env("CANDOR_API_KEYS") or "").split(",") if k.strip()]
    if keys:
        return keys, None
    path = bootstrap_key_file()
    if path.is_file():
        return [path.read_text().strip()], None
    key = "sk-candor-" + secrets.token_urlsafe(24)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(key + "\n")
    path.chmod(0o600)
    return [key], key


def presented_key(request: Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key.strip()
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return None
