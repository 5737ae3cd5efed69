"""Human preferences from the chat page: votes, ratings, the leaderboard, and the DPO export.

Elo: every model starts at 1000; votes are replayed in order with K = 32; "tie" and "both bad"
count as draws (both bad says nothing about which was better). Ratings become pairs when the
same question has a thumbs-up answer and a thumbs-down answer (regenerations are siblings).
"""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select

from candor.chat.render import render
from candor.store import Store
from candor.store.models import ChatMessage, Conversation, Rating, Vote
from candor.web.conversations import history

CHOICES = ("a", "b", "tie", "both_bad")


def leaderboard(store: Store) -> list[dict[str, Any]]:
    with store.session() as s:
        votes = list(s.scalars(select(Vote).where(Vote.choice.is_not(None)).order_by(Vote.voted_at, Vote.id)))
    elo: dict[str, float] = defaultdict(lambda: 1000.0)
    stats: dict[str, dict[str, int]] = defaultdict(lambda: {"votes": 0, "wins": 0, "losses": 0, "draws": 0})
    for v in votes:
        a, b = v.model_a, v.model_b
        score_a = {"a": 1.0, "b": 0.0}.get(v.choice or "", 0.5)
        for model, mine in ((a, score_a), (b, 1.0 - score_a)):
            st = stats[model]
            st["votes"] += 1
            st["wins" if mine == 1 else "losses" if mine == 0 else "draws"] += 1
        if a != b:
            expected_a = 1.0 / (1.0 + 10 ** ((elo[b] - elo[a]) / 400))
            elo[a] += 32 * (score_a - expected_a)
            elo[b] -= 32 * (score_a - expected_a)
    rows = []
    for model, st in stats.items():
        decided = st["wins"] + st["losses"]
        rows.append({"model": model, **st, "win_rate": round(st["wins"] / decided, 4) if decided else None,
                     "elo": round(elo[model], 1)})
    return sorted(rows, key=lambda r: -r["elo"])


def prompt_text(s, conv: Conversation, user_turn: ChatMessage) -> str:
    """The conversation up to the answers, rendered by the chat renderer (Human/Assistant), as
    the training pipeline renders it."""
    return render(history(s, conv, user_turn), conv.system).text


def export_pairs(store: Store) -> Iterator[dict[str, Any]]:
    """Preference pairs in the prompt/chosen/rejected form TRL's DPO trainer reads. Answers start
    with a space, as the model writes them after "Assistant:"."""
    with store.session() as s:
        for v in s.scalars(select(Vote).where(Vote.choice.in_(("a", "b"))).order_by(Vote.id)):
            chosen, rejected = (v.answer_a, v.answer_b) if v.choice == "a" else (v.answer_b, v.answer_a)
            won, lost = (v.model_a, v.model_b) if v.choice == "a" else (v.model_b, v.model_a)
            yield {"prompt": v.prompt, "chosen": " " + chosen.strip(), "rejected": " " + rejected.strip(),
                   "source": "vote", "vote_id": v.id, "model_chosen": won, "model_rejected": lost,
                   "comment": v.comment, "created_at": v.created_at.isoformat()}
        rated = s.execute(select(Rating, ChatMessage).join(ChatMessage, Rating.message_id == ChatMessage.id)
                          .order_by(Rating.id)).all()
        by_question: dict[int, dict[int, list]] = defaultdict(lambda: {1: [], -1: []})
        for rating, message in rated:
            if message.parent_id is not None:
                by_question[message.parent_id][rating.value].append((rating, message))
        for question_id, groups in by_question.items():
            question = s.get(ChatMessage, question_id)
            conv = s.get(Conversation, question.conversation_id) if question is not None else None
            if question is None or conv is None:
                continue
            prompt = prompt_text(s, conv, question)
            for (up, good), (down, bad) in itertools.product(groups[1], groups[-1]):
                yield {"prompt": prompt, "chosen": " " + good.content.strip(), "rejected": " " + bad.content.strip(),
                       "source": "rating", "rating_ids": [up.id, down.id], "model_chosen": good.model,
                       "model_rejected": bad.model, "comment": "; ".join(c for c in (up.comment, down.comment) if c)
                       or None, "created_at": max(up.created_at, down.created_at).isoformat()}


def write_jsonl(store: Store, out) -> int:
    n = 0
    for pair in export_pairs(store):
        out.write(json.dumps(pair, ensure_ascii=False) + "\n")
        n += 1
    return n
