"""Every CANDOR_* setting is declared once in candor.config, read only through it, and documented
in the README's configuration table."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from candor.config import SETTINGS, env

ROOT = Path(__file__).resolve().parent.parent
NAME = re.compile(r"CANDOR_[A-Z0-9_]+")
DIRECT_READ = re.compile(r"os\.(?:environ(?:\.get)?|getenv)\(\s*[\"']CANDOR_|os\.environ\[\s*[\"']CANDOR_")


def sources():
    return [p for p in (ROOT / "candor").rglob("*.py") if p.name != "config.py"]


def test_no_module_reads_a_candor_setting_directly():
    offenders = [f"{p.relative_to(ROOT)}:{i}" for p in sources()
                 for i, line in enumerate(p.read_text().splitlines(), 1)
                 if DIRECT_READ.search(line) and "os.environ[" not in line.split("=")[0]]
    assert offenders == [], "read CANDOR_* settings through candor.config.env"


def test_every_setting_the_code_names_is_declared_and_documented():
    named = {m for p in sources() for m in NAME.findall(p.read_text())}
    named -= {"CANDOR_SIGNIN_", "CANDOR_FLAGSHIP_GGUF", "CANDOR_REMOTE_URL", "CANDOR_REMOTE_MODEL",
              "CANDOR_REMOTE_API_KEY"}  # a prefix in a comment; models.toml's own ${VAR} substitutions
    assert named - set(SETTINGS) == set()
    readme = (ROOT / "README.md").read_text()
    undocumented = [n for n in SETTINGS if n != "CANDOR_SERVE_SETTINGS" and f"`{n}`" not in readme]
    assert undocumented == []


def test_env_reads_declared_names_only_and_treats_blank_as_unset(monkeypatch):
    monkeypatch.setenv("CANDOR_MAX_WAITING", "  ")
    assert env("CANDOR_MAX_WAITING") == "16"
    monkeypatch.setenv("CANDOR_MAX_WAITING", " 3 ")
    assert env("CANDOR_MAX_WAITING") == "3"
    with pytest.raises(KeyError, match="CANDOR_NOT_A_SETTING is not declared"):
        env("CANDOR_NOT_A_SETTING")


def test_settings_command_hides_secrets(monkeypatch):
    import os

    result = subprocess.run([sys.executable, "-m", "candor", "settings", "--json"], capture_output=True, text=True,
                            env={**os.environ, "CANDOR_API_KEYS": "sk-very-secret", "CANDOR_MAX_WAITING": "7"},
                            timeout=60, check=True)
    assert "sk-very-secret" not in result.stdout
    rows = {r["name"]: r for r in __import__("json").loads(result.stdout)}
    assert rows["CANDOR_API_KEYS"]["value"] == "(set)" and rows["CANDOR_MAX_WAITING"]["value"] == "7"
    assert set(rows) == set(SETTINGS)
