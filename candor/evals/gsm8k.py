"""GSM8K: grade-school maths word problems, few-shot chain of thought, exact match on the final number.

Each question follows `shots` worked examples (written for Candor, not taken from GSM8K) given as
earlier turns of the conversation, each ending "The answer is N." The model's final number is the
one after its last "The answer is" (or "####"); failing that, the last number it wrote. An answer
without any number scores 0 and is counted under `no_number`. Numbers compare by value, with
commas, currency signs and trailing zeros ignored ("1,000" = "1000.00"). The gold number is the one
after "#### " in the data's `answer`.

Claude 2's 88.0% (Claude 1.3: 85.2%) was 0-shot chain of thought at temperature 1; this task is
few-shot at temperature 0 by default, so compare with care.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from candor.evals import stats
from candor.evals.models import EvalModel, Prompt
from candor.evals.task import Item, Task, opt

EXEMPLARS = [
    ("A baker makes 24 muffins. She sells 15 of them and then bakes 10 more. How many muffins does she have now?",
     ("She starts with 24 muffins and sells 15, leaving 24 - 15 = 9. Then she bakes 10 more, so she has "
     "9 + 10 = 19 muffins. The answer is 19.")),
    ("Tom reads 12 pages a day. How many days does he need to finish a book of 180 pages?",
     "Each day Tom reads 12 pages. A 180-page book takes 180 / 12 = 15 days. The answer is 15."),
    (("A shirt costs $25 and a pair of trousers costs twice as much. How much do two shirts and one pair of "
     "trousers cost together?"),
     ("The trousers cost 2 * 25 = $50. Two shirts cost 2 * 25 = $50. Together that is 50 + 50 = $100. "
     "The answer is 100.")),
    (("A garden has 6 rows of tomato plants with 8 plants in each row. Each plant gives 3 kilograms of "
     "tomatoes. How many kilograms of tomatoes does the garden give?"),
     ("There are 6 * 8 = 48 plants. Each gives 3 kilograms, so the garden gives 48 * 3 = 144 kilograms. "
     "The answer is 144.")),
    (("Maria had 50 stickers. She gave a fifth of them to her brother and 7 to her friend. How many stickers "
     "does she have left?"),
     ("A fifth of 50 is 50 / 5 = 10 stickers for her brother. With 7 for her friend she gave away 10 + 7 = 17. "
     "She has 50 - 17 = 33 left. The answer is 33.")),
    ("A train travels at 80 kilometres per hour for 2.5 hours. How far does it go?",
     "Distance is speed times time: 80 * 2.5 = 200 kilometres. The answer is 200."),
    ("A class of 28 students goes on a trip. Each minibus seats 8 students. How many minibuses are needed?",
     "28 / 8 = 3.5, and half a minibus is not possible, so they need 4 minibuses. The answer is 4."),
    (("Sam earns $12 an hour and works 7 hours on Saturday and 5 hours on Sunday. He spends $30 on a game. "
     "How much money does he have left from the weekend?"),
     ("He works 7 + 5 = 12 hours and earns 12 * 12 = $144. After the game he has 144 - 30 = $114. "
     "The answer is 114.")),
]
INSTRUCTION = "Solve each maths problem step by step, then finish with \"The answer is N.\" where N is a number."

_NUMBER = r"-?[$£€]?\s?\d[\d,]*(?:\.\d+)?"
_STATED = re.compile(r"(?:[Tt]he (?:final )?answer is|####)\s*:?\s*(" + _NUMBER + ")")
_ANY = re.compile(_NUMBER)


@dataclass
class GSM8KConfig:
    shots: int = opt(4, "worked examples before each question (0-8), as earlier conversation turns")
    max_tokens: int = opt(256, "most tokens the model may write per answer")
    temperature: float = opt(0.0, "sampling temperature (0: greedy)")
    last_number_fallback: bool = opt(True, "when no 'The answer is N' is found, use the last number written")


def to_number(text: str) -> Decimal | None:
    cleaned = re.sub(r"[,$£€\s]", "", text).rstrip(".")
    try:
        return Decimal(cleaned).normalize()
    except InvalidOperation:
        return None


def final_number(text: str, fallback: bool = True) -> str | None:
    """The number an answer ends on, as written, or None."""
    stated = _STATED.findall(text)
    if stated:
        return stated[-1].strip()
    if fallback:
        numbers = _ANY.findall(text)
        if numbers:
            return numbers[-1].strip()
    return None


def gold_number(answer: str) -> str:
    return answer.rsplit("####", 1)[-1].strip()


def same_number(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return False
    x, y = to_number(a), to_number(b)
    return x is not None and y is not None and x == y


class GSM8K(Task):
    name = "gsm8k"
    description = "GSM8K test: few-shot chain of thought, exact match on the final number"
    Config = GSM8KConfig
    primary = "accuracy"

    def load(self) -> list[Item]:
        rows = self.data.jsonl("gsm8k", "test.jsonl")
        return [Item(f"gsm8k-{i}", {"question": r["question"], "gold": gold_number(r["answer"])},
                     f"gsm8k/test.jsonl#{i}") for i, r in enumerate(rows)]

    def prompt(self, question: str) -> Prompt:
        turns: list[dict[str, str]] = []
        for q, a in EXEMPLARS[: max(0, min(self.config.shots, len(EXEMPLARS)))]:
            turns += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
        turns.append({"role": "user", "content": question})
        return Prompt(tuple(turns), INSTRUCTION)

    def score(self, item: Item, answer: str) -> dict[str, Any]:
        predicted = final_number(answer, self.config.last_number_fallback)
        return {"predicted": predicted, "score": float(same_number(predicted, item.data["gold"]))}

    async def run(self, model: EvalModel, item: Item, seed: int) -> dict[str, Any]:
        prompt = self.prompt(item.data["question"])
        c = await model.generate(prompt, max_tokens=self.config.max_tokens, temperature=self.config.temperature,
                                 stop=["\n\nQuestion:"], seed=seed)
        return {"prompt": prompt.text(), "answer": c.text, "target": item.data["gold"], "stop_reason": c.stop_reason,
                "input_tokens": c.input_tokens, "output_tokens": c.output_tokens, **self.score(item, c.text)}

    def rescore(self, item, record):
        return self.score(item, record["answer"]) if record.get("answer") is not None else None

    def aggregate(self, records):
        return {"metrics": {
            "accuracy": stats.share([r["score"] for r in records], help="final number equals the reference"),
            "no_number": stats.share([float(r.get("predicted") is None) for r in records], higher_is_better=False,
                                     help="answers with no number at all"),
        }}
