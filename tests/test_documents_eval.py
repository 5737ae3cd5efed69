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
