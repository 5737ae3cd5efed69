"""The doc-qa eval through the document path with the real model: whole and retrieved documents."""

from __future__ import annotations

import json
import subprocess


def test_doc_qa_eval_scores_answers_citations_and_retrieval(candor_bin, tmp_path):
    result = subprocess.run([*candor_bin, "eval", "doc-qa", "--model", "candor-instant", "--out", str(tmp_path),
                             "-o", "lengths=300,9000", "-o", "questions=2", "-o", "max_tokens=30"],
                            capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, result.stderr
    out = json.loads((tmp_path / "candor-instant" / "doc-qa" / "results.json").read_text())
    metrics = out["metrics"]
    assert {"answer", "citation", "retrieval", "answer@300", "citation@9000"} <= set(metrics)
    assert out["extra"]["modes"] == {"300": "whole", "9000": "retrieved"}
    assert metrics["retrieval"]["value"] == 1.0  # every fact reached the prompt
    records = [json.loads(line) for line in (tmp_path / "candor-instant" / "doc-qa" / "items.jsonl").open()]
    records = [r.get("record", r) for r in records]
    for r in records:  # a citation counts only when its verbatim text holds the fact
        assert r["cited_score"] == float(any(r["target"] in t for t in r["cited"]))
        assert r["score"] == float(r["target"].lower() in r["answer"].lower())


def test_long_context_through_the_document_path_goes_beyond_the_window(candor_bin, tmp_path):
    result = subprocess.run([*candor_bin, "eval", "long-context", "--model", "candor-instant", "--out", str(tmp_path),
                             "-o", "path=documents", "-o", "lengths=9000", "-o", "depths=0,1"],
                            capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, result.stderr
    out = json.loads((tmp_path / "candor-instant" / "long-context" / "results.json").read_text())
    assert out["extra"]["lengths"] == [9000] and out["extra"]["skipped_lengths"] == []  # over the 8K window
    records = [json.loads(line) for line in (tmp_path / "candor-instant" / "long-context" / "items.jsonl").open()]
    records = [r.get("record", r) for r in records]
    assert {r["mode"] for r in records} == {"retrieved"}
    assert all(r["prompt_tokens"] < 8192 for r in records)
    assert out["metrics"]["retrieval"]["value"] == 1.0  # the needle reached the prompt at both ends
    for r in records:
        assert r["score"] == float(r["target"] in r["answer"].replace(",", "").replace(" ", ""))
