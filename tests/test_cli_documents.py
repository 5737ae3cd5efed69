"""`candor ask` and `candor summarize` as a user runs them: real files, the real model, greedy."""

from __future__ import annotations

import json
import subprocess
from itertools import pairwise

from docs_fixtures import pdf, scanned_pdf

FACTS = ["The lighthouse keeper was named Amelia Thornbury.", "The island had exactly forty-two goats."]


def run(candor_bin, *args):
    return subprocess.run([*candor_bin, *args], capture_output=True, text=True, timeout=600, check=False)


def test_ask_cites_the_page(candor_bin, tmp_path):
    path = tmp_path / "island.pdf"
    path.write_bytes(pdf([["Meadows roll under a grey sky."], FACTS]))
    result = run(candor_bin, "ask", str(path), "How many goats did the island have?", "--max-tokens", "30")
    assert result.returncode == 0, result.stderr
    answer, _, sources = result.stdout.partition("Sources:")
    assert "42" in answer or "forty-two" in answer
    assert 'island.pdf, page 2: "The island had exactly forty-two goats."' in sources
    assert "(island.pdf: whole)" in result.stderr


def test_ask_refuses_unreadable_files(candor_bin, tmp_path):
    scan = tmp_path / "scan.pdf"
    scan.write_bytes(scanned_pdf())
    result = run(candor_bin, "ask", str(scan), "What does it say?")
    assert result.returncode == 2 and "no text layer" in result.stderr
    result = run(candor_bin, "ask", str(tmp_path / "missing.txt"), "What does it say?")
    assert result.returncode == 2 and "cannot read" in result.stderr
    result = run(candor_bin, "ask", "What does it say?")
    assert result.returncode == 2 and "at least one FILE" in result.stderr


def test_summarize_maps_and_reduces_long_documents(candor_bin, tmp_path):
    path = tmp_path / "market.txt"
    text = "\n\n".join(f"On day {i} the village of Orla held a market where farmers sold {i * 3} baskets of apples."
                       for i in range(24))
    path.write_text(text)
    result = run(candor_bin, "summarize", str(path), "--chunk-tokens", "250", "--max-tokens", "40", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["mode"] == "map-reduce" and len(out["parts"]) >= 2 and out["summary"]
    spans = [(p["start_char_index"], p["end_char_index"]) for p in out["parts"]]
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    assert all(a < b <= c for (a, b), (c, _) in pairwise(spans))  # in order, not overlapping
    assert all(p["summary"] for p in out["parts"])
    assert "summarising parts" in result.stderr  # the progress bar
