"""What every eval family shares: the Task base class, items, config handling and multiple choice.

A task loads its items from the data folder, answers one item at a time through an `EvalModel`
(`run` returns the item's record: prompt, answer, score and details), and turns the records into
metrics with confidence intervals (`aggregate`). Its settings are a small dataclass whose fields
have defaults and help text (`opt`); `candor eval --option key=value` sets them and every run
writes the resolved settings next to its outputs.
"""

from __future__ import annotations

import dataclasses
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from candor.errors import InvalidRequestError
from candor.evals.data import Data
from candor.evals.models import EvalModel, Prompt

LETTERS = "ABCDEFGHIJKLMNOP"


def opt(default: Any, help: str) -> Any:
    """A config field with a default and a help text (shown by `candor eval --list`)."""
    return field(default=default, metadata={"help": help})


@dataclass
class Item:
    id: str
    data: dict[str, Any]
    source: str = ""  # where it came from, e.g. "gsm8k/test.jsonl#12"
    group: str = ""  # items of one group are sampled together (one behaviour in several wrappers)


class Task:
    """Base class of an eval task. Subclasses set name, Config, primary and implement load/run/aggregate."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    Config: ClassVar[type] = object
    primary: ClassVar[str] = "accuracy"  # the headline metric
    metric_help: ClassVar[dict[str, str]] = {}

    def __init__(self, config: Any = None, data: Data | None = None):
        self.config = config if config is not None else self.Config()
        self.data = data or Data()
        self.resolved: dict[str, Any] = {}  # settings decided at run time (e.g. the scoring method used)

    # -- to implement --------------------------------------------------------------------------
    def load(self) -> list[Item]:
        raise NotImplementedError

    async def prepare(self, model: EvalModel) -> None:
        """Decide what depends on the model (log-probs or generation, lengths that fit)."""

    async def run(self, model: EvalModel, item: Item, seed: int) -> dict[str, Any]:
        raise NotImplementedError

    def rescore(self, item: Item, record: dict[str, Any]) -> dict[str, Any] | None:
        """Score a stored answer again without the model (after a judge changed); None: cannot."""
        return None

    def aggregate(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        """{"metrics": {name: stats.metric}, "extra": {...}}"""
        raise NotImplementedError

    # -- shared ---------------------------------------------------------------------------------
    def select(self, items: list[Item], limit: int | None, seed: int) -> list[Item]:
        """A seeded sample of `limit` items (groups kept whole), in data order. A larger limit
        with the same seed keeps every item of a smaller one, so a resumed run can grow."""
        if not limit or limit >= len(items):
            return items
        groups: dict[str, list[Item]] = {}
        for item in items:
            groups.setdefault(item.group or item.id, []).append(item)
        keys = list(groups)
        random.Random(seed).shuffle(keys)
        chosen: set[str] = set()
        count = 0
        for key in keys:
            if count >= limit:
                break
            chosen.add(key)
            count += len(groups[key])
        return [item for item in items if (item.group or item.id) in chosen]

    def config_dict(self) -> dict[str, Any]:
        config = self.config
        return dataclasses.asdict(config) if dataclasses.is_dataclass(config) and not isinstance(config, type) else {}


# -- config from the command line --------------------------------------------------------------
def config_fields(cls: type) -> list[tuple[str, Any, str]]:
    return [(f.name, f.default, f.metadata.get("help", "")) for f in dataclasses.fields(cls)]


def make_config(cls: type, options: dict[str, str]) -> Any:
    """`cls` with `options` (strings from the command line) converted to each field's type."""
    values: dict[str, Any] = {}
    known = {f.name: f for f in dataclasses.fields(cls)}
    for key, raw in options.items():
        f = known.get(key)
        if f is None:
            raise InvalidRequestError(f"unknown option; known: {', '.join(known) or 'none'}", field=key)
        kind: Any = type(f.default)  # the default's type converts the option's string
        try:
            if kind is bool:
                if raw.lower() not in ("1", "0", "true", "false", "yes", "no"):
                    raise ValueError(raw)
                values[key] = raw.lower() in ("1", "true", "yes")
            elif f.default is None:
                values[key] = raw if raw.lower() not in ("", "none") else None
            else:
                values[key] = kind(raw)
        except ValueError:
            raise InvalidRequestError(f"expected a {kind.__name__}, got {raw!r}", field=key) from None
    return cls(**values)


def csv_list(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


# -- multiple choice ---------------------------------------------------------------------------
SCORING_HELP = ("'logprob' reads the answer letter's log-probability (one forward pass), 'generate' asks for "
                "the letter and parses it, 'auto' uses logprob when the model reports log-probabilities")


def options_block(options: Sequence[str]) -> str:
    return "\n".join(f"{LETTERS[i]}. {text}" for i, text in enumerate(options))


async def resolve_scoring(scoring: str, model: EvalModel) -> str:
    if scoring not in ("auto", "logprob", "generate"):
        raise InvalidRequestError(f"must be auto, logprob or generate, got {scoring!r}", field="scoring")
    if scoring == "auto":
        return "logprob" if await model.has_logprobs() else "generate"
    if scoring == "logprob" and not await model.has_logprobs():
        from candor.evals.models import LogprobsUnavailable

        raise LogprobsUnavailable(f"{model.label} reports no log-probabilities, which scoring=logprob needs; "
                                  "use --option scoring=generate to ask for the letter instead")
    return scoring


_LEADING = re.compile(r"^\(?([A-P])(?:[).:,]|\s*$|\s+[-\u2013])")
_STATED = re.compile(r"[Aa]nswer(?:\s+is|:)?\s*:?\s*\(?([A-P])\b")


def parse_letter(text: str, n: int) -> int | None:
    """The option a generated answer picks: "B", "B.", "(B)", "B) …", "Answer: B", "The answer is B".
    A bare capital that starts a sentence ("A lot of…") is not an answer."""
    allowed = LETTERS[:n]
    text = text.strip()
    for pattern in (_LEADING, _STATED):
        match = pattern.search(text)
        if match and match.group(1) in allowed:
            return allowed.index(match.group(1))
    return None


async def choose(model: EvalModel, prompt: Prompt, n: int, scoring: str) -> dict[str, Any]:
    """Ask a multiple-choice question whose prompt ends in a prefill "Answer:".

    Returns {"choice": index or None, "answer": text, "logprobs": {...} (logprob scoring)}."""
    if scoring == "logprob":
        candidates = [f" {LETTERS[i]}" for i in range(n)]
        lp = await model.logprobs(prompt, candidates)
        best = max(range(n), key=lambda i: lp[candidates[i]])
        return {"choice": best, "answer": LETTERS[best],
                "logprobs": {c.strip(): round(v, 4) for c, v in lp.items()}}
    completion = await model.generate(prompt, max_tokens=8, temperature=0.0, stop=["\n"])
    text = completion.text
    if prompt.prefill and text.startswith(prompt.prefill):
        text = text[len(prompt.prefill):]
    return {"choice": parse_letter(text, n), "answer": text.strip()}
