"""Anthropic's hh-rlhf preference data: transcripts parsed into messages, prompts and pairs.

The data folder comes from `candor.evals.data` (the `CANDOR_DATA_DIR` setting, `../shared/data`
beside the repository, or `$CANDOR_HOME/data`); nothing is copied into the repository. Only the
test splits are at hand here, so the pipeline holds out the *last* `HOLDOUT` rows of each split
for evaluation and agreement measurements, and trains only on rows before them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from candor.chat.render import Message, validate_messages
from candor.errors import InvalidRequestError

SUBSETS = ("harmless-base", "helpful-base")
HOLDOUT = 300  # last rows of each split, never trained on
_TURN = re.compile(r"\n\n(Human|Assistant):[ ]?")


@dataclass(frozen=True)
class Pair:
    """One human comparison: a shared context and two final assistant answers."""

    context: list[Message]  # ends with the user's turn
    chosen: str
    rejected: str
    index: int


def parse_transcript(text: str) -> list[Message]:
    """`\\n\\nHuman: …\\n\\nAssistant: …` into messages (consecutive same-role turns merged)."""
    parts = _TURN.split("\n\n" + text.lstrip("\n") if not text.startswith("\n\n") else text)
    messages: list[Message] = []
    for role_name, content in zip(parts[1::2], parts[2::2]):
        role = "user" if role_name == "Human" else "assistant"
        content = content.strip()
        if messages and messages[-1].role == role:
            messages[-1] = Message(role, (messages[-1].content + "\n\n" + content).strip())
        else:
            messages.append(Message(role, content))  # type: ignore[arg-type]  # parsed: user or assistant
    return messages


def is_valid(messages: list[Message]) -> bool:
    try:
        validate_messages(messages)
    except InvalidRequestError:
        return False
    return all(m.content for m in messages)


def _rows(subset: str, data_dir: str | Path | None) -> list[dict]:
    if subset not in SUBSETS:
        raise InvalidRequestError(f"unknown hh-rlhf subset {subset!r}; known: {', '.join(SUBSETS)}", field="subset")
    from candor.evals.data import Data

    return Data(data_dir).jsonl("hh-rlhf", f"{subset}/test.jsonl.gz")


def split_rows(subset: str, part: str = "train", data_dir: str | Path | None = None) -> list[tuple[int, dict]]:
    """(index, row) for the training part (all but the last HOLDOUT rows) or the held-out part."""
    rows = list(enumerate(_rows(subset, data_dir)))
    held = min(HOLDOUT, len(rows) // 2)  # small folders (test fixtures) hold out half
    if part == "train":
        return rows[:len(rows) - held]
    if part == "holdout":
        return rows[len(rows) - held:]
    if part == "all":
        return rows
    raise InvalidRequestError(f"part must be train, holdout or all, got {part!r}", field="part")


def _is_eval_prompt(part: str, data_dir: str | Path | None):
    """For the training part, a test for evaluation prompts (hh-rlhf repeats prompts across rows,
    so the held-out rows alone do not keep evaluation prompts out of training); otherwise None."""
    if part != "train":
        return None
    from candor.cai.splits import is_eval_prompt

    return lambda text: is_eval_prompt(text, data_dir)


def conversations(subset: str, which: str = "chosen", part: str = "train", limit: int | None = None,
                  data_dir: str | Path | None = None) -> Iterator[list[Message]]:
    """Whole conversations ending in the chosen (or rejected) assistant answer; from the training
    part, none whose user turns include an evaluation prompt."""
    n = 0
    banned = _is_eval_prompt(part, data_dir)
    for _, row in split_rows(subset, part, data_dir):
        messages = parse_transcript(row[which])
        if not messages or messages[-1].role != "assistant" or not is_valid(messages):
            continue
        if banned and any(banned(m.content) for m in messages if m.role == "user"):
            continue
        yield messages
        n += 1
        if limit is not None and n >= limit:
            return


def first_human_turns(subset: str = "harmless-base", part: str = "train", limit: int | None = None,
                      data_dir: str | Path | None = None) -> list[str]:
    """The opening user message of each transcript: the red-team prompts the paper revises (from
    the training part, never an evaluation prompt)."""
    seen: set[str] = set()
    out: list[str] = []
    banned = _is_eval_prompt(part, data_dir)
    for _, row in split_rows(subset, part, data_dir):
        messages = parse_transcript(row["chosen"])
        if banned and messages and banned(messages[0].content):
            continue
        if messages and messages[0].role == "user" and messages[0].content and messages[0].content not in seen:
            seen.add(messages[0].content)
            out.append(messages[0].content)
            if limit is not None and len(out) >= limit:
                break
    return out


def pairs(subset: str = "harmless-base", part: str = "holdout", limit: int | None = None,
          data_dir: str | Path | None = None) -> list[Pair]:
    """Human comparisons whose two transcripts share everything up to the final answer."""
    out: list[Pair] = []
    for index, row in split_rows(subset, part, data_dir):
        chosen, rejected = parse_transcript(row["chosen"]), parse_transcript(row["rejected"])
        if len(chosen) < 2 or chosen[:-1] != rejected[:-1] or chosen[-1].role != "assistant":
            continue
        if rejected[-1].role != "assistant" or chosen[-1].content == rejected[-1].content:
            continue
        if not is_valid(chosen) or not is_valid(rejected):
            continue
        out.append(Pair(chosen[:-1], chosen[-1].content, rejected[-1].content, index))
        if limit is not None and len(out) >= limit:
            break
    return out


def read_prompts(path: str | Path) -> list[str]:
    """Prompts from a user's file: JSONL with a `prompt` (or hh-rlhf `chosen`) field, or plain
    text with one prompt per line."""
    import json

    path = Path(path)
    if not path.is_file():
        raise InvalidRequestError(f"{path} does not exist", field="prompts")
    text = path.read_text(encoding="utf-8")
    prompts: list[str] = []
    if path.suffix in (".jsonl", ".json"):
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise InvalidRequestError(f"{path}:{n}: not JSON: {exc}", field="prompts") from exc
            if isinstance(row, str):
                prompts.append(row)
            elif "prompt" in row:
                prompts.append(str(row["prompt"]))
            elif "chosen" in row:
                first = parse_transcript(row["chosen"])
                if first:
                    prompts.append(first[0].content)
            else:
                raise InvalidRequestError(f"{path}:{n}: needs a 'prompt' field", field="prompts")
    else:
        prompts = [line.strip() for line in text.splitlines() if line.strip()]
    return [p for p in prompts if p.strip()]
