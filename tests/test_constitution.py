"""The constitution: the packaged file, validation messages, diff and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from candor.constitution import (
    DEFAULT_PATH,
    ConstitutionError,
    diff_constitutions,
    load_constitution,
    parse_constitution,
)


def test_default_constitution_covers_the_papers_ground_and_more():
    c = load_constitution(DEFAULT_PATH)
    assert len(c) >= 16
    topics = {t for p in c.principles for t in p.topics}
    for topic in ("harm", "dishonesty", "illegality", "toxicity", "bias", "age-appropriateness", "assumptions",
                  "empathy", "helpfulness", "non-evasiveness"):
        assert topic in topics, topic
    for p in c.principles:
        assert p.critique and p.revision and p.comparison
        assert p.comparison.rstrip().endswith("?")
    assert len(set(c.ids)) == len(c.ids)


def test_env_setting_picks_the_file(tmp_path, monkeypatch):
    f = tmp_path / "mine.yaml"
    f.write_text(yaml.safe_dump({"name": "mine", "principles": [
        {"id": "only", "critique": "c?", "revision": "r.", "comparison": "which?"}]}))
    monkeypatch.setenv("CANDOR_CONSTITUTION", str(f))
    c = load_constitution()
    assert c.name == "mine" and c.ids == ["only"]


def test_validation_names_the_principle_and_the_missing_field():
    text = yaml.safe_dump({"principles": [
        {"id": "a", "critique": "c", "revision": "r", "comparison": "q"},
        {"id": "b", "critique": "c", "comparison": "q"},
        {"id": "a", "critique": "c", "revision": "r", "comparison": " "},
        {"critique": "c", "revision": "r", "comparison": "q", "colour": "red"},
    ]})
    with pytest.raises(ConstitutionError) as info:
        parse_constitution(text, "bad.yaml")
    problems = info.value.problems
    assert "principle #2 ('b'): missing field 'revision'" in problems
    assert any("principle #3 ('a'): duplicate id" in p for p in problems)
    assert "principle #3 ('a'): field 'comparison' must be non-empty text" in problems
    assert "principle #4: missing field 'id'" in problems
    assert "principle #4: unknown field 'colour'" in problems
    assert info.value.message.startswith("constitution: bad.yaml: 5 problems")


def test_diff_reports_added_removed_and_changed_fields():
    old = load_constitution(DEFAULT_PATH)
    data = yaml.safe_load(DEFAULT_PATH.read_text())
    data["principles"][0]["critique"] = "Is the answer harmful in any way at all?"
    removed = data["principles"].pop(1)["id"]
    data["principles"].append({"id": "brevity", "critique": "Too long?", "revision": "Shorten it.",
                               "comparison": "Which is more concise?"})
    new = parse_constitution(yaml.safe_dump(data))
    lines = diff_constitutions(old, new)
    assert f"- removed principle {removed!r}" in lines
    assert any(line.startswith("+ added principle 'brevity'") for line in lines)
    assert "~ harm.critique:" in lines
    assert diff_constitutions(old, old) == []


def test_cli_show_validate_diff(tmp_path):
    run = lambda *a: subprocess.run([sys.executable, "-m", "candor", "constitution", *a],
                                    check=False, capture_output=True, text=True)
    shown = run("show", "--json", "--id", "empathy")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["principles"][0]["id"] == "empathy"
    assert run("validate").returncode == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("principles:\n  - id: x\n    critique: c\n    comparison: q\n")
    result = run("validate", str(bad))
    assert result.returncode == 1
    assert "principle #1 ('x'): missing field 'revision'" in result.stderr
    changed = tmp_path / "changed.yaml"
    data = yaml.safe_load(DEFAULT_PATH.read_text())
    data["principles"][0]["revision"] = "Rewrite it kindly."
    changed.write_text(yaml.safe_dump(data))
    result = run("diff", str(DEFAULT_PATH), str(changed))
    assert result.returncode == 1 and "~ harm.revision:" in result.stdout
