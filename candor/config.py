"""Settings read from the environment, so tests and deployments can point Candor elsewhere.

CANDOR_HOME          folder for Candor's own files (default ~/.candor): models/ cache, data
CANDOR_MODELS_FILE   a TOML file of extra or overriding registry entries
CANDOR_DEFAULT_MODEL the model used when none is named (default: the first registry entry)
CANDOR_MAX_WAITING   requests that may wait per model before new ones are refused (default 16)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    home: Path
    max_waiting: int

    @property
    def models_dir(self) -> Path:
        return self.home / "models"


def settings() -> Settings:
    home = Path(os.environ.get("CANDOR_HOME") or Path.home() / ".candor").expanduser()
    return Settings(home=home, max_waiting=int(os.environ.get("CANDOR_MAX_WAITING", "16")))
