"""DPO data: AI-labelled pairs and chat-page votes become rendered prompt/chosen/rejected rows."""

from __future__ import annotations

import json

from candor.chat.render import Message, render
from candor.train.dpo import DPOSettings, build_pairs, pair_from_row


def test_feedback_rows_and_exported_votes(tmp_path):
    rendered = render([Message("user", "Hi"), Message("assistant", "Hello"), Message("user", "Joke?")]).text
    vote = {"prompt": rendered, "chosen": " A pun.", "rejected": " No.", "source": "vote"}
    assert pair_from_row(vote) == (rendered, " A pun.\n\nHuman:", " No.\n\nHuman:")
    plain = pair_from_row({"prompt": "Joke?", "chosen": "A pun.", "rejected": "No.", "confidence": 0.9})
    assert plain == (render([Message("user", "Joke?")]).text, " A pun.\n\nHuman:", " No.\n\nHuman:")
    assert pair_from_row({"prompt": "x", "chosen": "same", "rejected": "same"}) is None

    feedback, votes = tmp_path / "f.jsonl", tmp_path / "v.jsonl"
    rows = [{"prompt": "Q1?", "chosen": "good", "rejected": "bad", "confidence": 0.9},
            {"prompt": "Q2?", "chosen": "good", "rejected": "bad", "confidence": 0.51},  # too unsure
            {"prompt": "Q1?", "chosen": "good", "rejected": "bad", "confidence": 0.8}]  # duplicate
    feedback.write_text("".join(json.dumps(r) + "\n" for r in rows))
    votes.write_text(json.dumps(vote) + "\n")
    pairs, stats = build_pairs(DPOSettings(data=[str(feedback)], votes=[str(votes)], min_confidence=0.55),
                               log=lambda m: None)
    assert stats["low_confidence_dropped"] == 1 and stats["dedup"]["exact_duplicates"] == 1
    assert [p["prompt"] for p in pairs] == [render([Message("user", "Q1?")]).text, rendered]
