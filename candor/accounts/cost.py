"""What a workload costs per model tier.

The default workload is the comparison used when Claude launched: conversations of three
question-and-answer rounds with 100-, 250- and 500-word answers, for 1,000 users × 10
conversations a day × 250 days. Each round's prompt carries the conversation so far, as a chat
API call does. Words become tokens at a fixed ratio (1.33 tokens per English word by default,
or measured with a model's tokenizer by the caller).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from candor.accounts.access import price
from candor.registry import ModelEntry


@dataclass(frozen=True)
class Workload:
    answer_words: tuple[int, ...] = (100, 250, 500)
    rounds: int = 3
    question_words: int = 50
    users: int = 1000
    conversations_per_day: int = 10
    days: int = 250
    tokens_per_word: float = 1.33

    @property
    def conversations(self) -> int:
        return self.users * self.conversations_per_day * self.days


def conversation_tokens(answer_words: int, w: Workload) -> tuple[int, int]:
    """(input tokens, output tokens) of one conversation of `w.rounds` rounds."""
    q, a = round(w.question_words * w.tokens_per_word), round(answer_words * w.tokens_per_word)
    input_tokens = sum(r * (q + a) + q for r in range(w.rounds))  # history of r rounds + the new question
    return input_tokens, w.rounds * a


def cost_table(entries: list[ModelEntry], w: Workload) -> list[dict]:
    rows = []
    for size in w.answer_words:
        inp, out = conversation_tokens(size, w)
        for entry in entries:
            one = price(entry, inp, out)
            rows.append({"answer_words": size, "model": entry.name, "input_tokens": inp, "output_tokens": out,
                         "per_conversation_usd": one, "total_usd": one * Decimal(w.conversations)})
    return rows
