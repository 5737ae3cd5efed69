"""The line between training and evaluation prompts, kept explicit and checkable.

Every prompt the alignment pipeline trains on is recorded by a short hash of its normalised text
in a file under version control (`candor/data/alignment/train-prompts.txt`). Evaluation prompts —
AdvBench, HarmBench, XSTest, the harmlessness templates' requests and the held-out hh-rlhf rows —
are hashed the same way from the data folder, and training data generation drops any prompt that
is one of them; a test checks the committed file against the evaluation sets.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable
from pathlib import Path

_SPACE = re.compile(r"\s+")
TRAIN_FILE = Path(__file__).resolve().parent.parent / "data" / "alignment" / "train-prompts.txt"


def prompt_hash(text: str) -> str:
    """16 hex digits of SHA-256 over the lower-cased, whitespace-collapsed text."""
    return hashlib.sha256(_SPACE.sub(" ", text.strip().lower()).encode("utf-8")).hexdigest()[:16]


def eval_prompts(data_dir: str | Path | None = None) -> dict[str, list[str]]:
    """The prompts of every evaluation set that is present, by set name."""
    from candor.cai import hh
    from candor.evals.data import Data, DataNotFoundError

    data = Data(data_dir)
    found: dict[str, list[str]] = {}

    def add(name, fn):
        try:
            found[name] = fn()
        except DataNotFoundError:
            pass

    add("advbench", lambda: [r["goal"] for r in data.csv("advbench", "harmful_behaviors.csv")])
    add("harmbench", lambda: [r["Behavior"] for r in data.csv("harmbench", "harmbench_behaviors_text_all.csv")])
    add("xstest", lambda: [r["prompt"] for r in data.csv("xstest", "xstest_prompts.csv")])
    for subset in hh.SUBSETS:
        add(f"hh-rlhf {subset} holdout",
            lambda subset=subset: [m[0].content for _, row in hh.split_rows(subset, "holdout", data_dir)
                                   if (m := hh.parse_transcript(row["chosen"])) and m[0].role == "user"])
    return found


def eval_hashes(data_dir: str | Path | None = None) -> frozenset[str]:
    return _eval_hashes(str(data_dir) if data_dir else None)


def is_eval_prompt(text: str, data_dir: str | Path | None = None) -> bool:
    return prompt_hash(text) in eval_hashes(data_dir)


@functools.lru_cache(maxsize=8)
def _eval_hashes(data_dir: str | None) -> frozenset[str]:
    return frozenset(prompt_hash(p) for prompts in eval_prompts(data_dir).values() for p in prompts)


def without_eval_prompts(prompts: Iterable[str], data_dir: str | Path | None = None) -> tuple[list[str], int]:
    """`prompts` minus any evaluation prompt, and how many were dropped."""
    items = list(prompts)
    banned = eval_hashes(data_dir)
    kept = [p for p in items if prompt_hash(p) not in banned]
    return kept, len(items) - len(kept)


def read_train_hashes(path: Path = TRAIN_FILE) -> dict[str, str]:
    """hash → the source it was recorded under ("# source" lines head each group)."""
    out: dict[str, str] = {}
    source = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line.startswith("#"):
            source = line.lstrip("# ").strip()
        elif line:
            out[line] = source
    return out


def write_train_hashes(groups: dict[str, Iterable[str]], path: Path = TRAIN_FILE) -> int:
    """Record the prompts each training source used (hashes only; the text stays in the data)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["# Prompts Candor's shipped adapters were trained on: 16 hex digits of SHA-256 over the",
             "# lower-cased, whitespace-collapsed prompt (candor.cai.splits.prompt_hash), grouped by source.",
             "# No evaluation prompt may appear here (tests/test_cai_judged.py)."]
    n = 0
    for source, prompts in groups.items():
        hashes = sorted({prompt_hash(p) for p in prompts})
        lines += ["", f"# {source}", *hashes]
        n += len(hashes)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return n


def prompts_of(path: str | Path) -> list[str]:
    """The prompts a training data file used: `prompt` fields (judged pairs, revisions, feedback)
    or the user turns of `messages`."""
    import json

    out: list[str] = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        if row.get("prompt"):
            out.append(str(row["prompt"]))
        out += [m["content"] for m in row.get("messages") or [] if m.get("role") == "user"]
    return out


def hh_training_prompts(helpful: int, harmless: int, data_dir: str | Path | None = None) -> dict[str, list[str]]:
    """Every user turn of the hh-rlhf conversations `candor train sft --helpful/--harmless` takes."""
    from candor.cai import hh

    groups: dict[str, list[str]] = {}
    for subset, n in (("helpful-base", helpful), ("harmless-base", harmless)):
        if n:
            convs = hh.conversations(subset, "chosen", "train", None if n < 0 else n, data_dir)
            groups[f"hh-rlhf {subset} chosen (SFT), user turns"] = [m.content for c in convs for m in c
                                                                    if m.role == "user"]
    return groups
