"""The moderation classifiers' labelled examples, read from the public data sets and Candor's own
files, and the fixed train / validation / test split committed as ids.

Input examples (request -> harmful or not, and a category when harmful):
- harmful: AdvBench behaviours, HarmBench standard and contextual behaviours (the request alone;
  copyright behaviours left out), XSTest's 200 unsafe contrast prompts, and Candor's own red-team
  requests (candor/data/alignment/red-team-requests.txt and, by category,
  candor/data/moderation/harmful-requests.txt);
- harmless: XSTest's 250 safe prompts, the first human turn of hh-rlhf helpful-base rows, Candor's
  own safe-but-edgy requests and imperative-style harmless requests (candor/data/moderation/), and
  exam questions that speak of harm (`EXAM_HARM` words: murder, robbery, drug abuse, attacks) from
  MMLU (test and dev) and TruthfulQA: law hypotheticals, history, ethics and psychology, safe
  contexts the classifier flagged two times in three before it learned from them;
- both: Candor's contrast requests (candor/data/moderation/contrast-requests.txt), safe requests
  that sound alarming and harmful ones sharing their words, of the kinds XSTest describes;
- only when asked (`long_requests`, `candor moderation train --long-requests`): Candor's long everyday
  requests (candor/data/moderation/long-requests.txt, 80-220 words). Two trainings with them were
  measured and not shipped (README, Moderation): each flagged more short safe requests.

Output examples (request, answer -> the answer gives harmful help or not):
- harmful: AdvBench's target answers to its behaviours ("Sure, here is ...") and its harmful strings;
- harmless: a harmful request paired with one of Candor's written refusals, and hh-rlhf helpful-base
  first answers to their (harmless) requests. (hh-rlhf harmless-base answers labelled by the rule
  judge were tried and left out: too many of its "compliance" labels there are apologies.)

An example's id is `source:hash` (hash: candor.cai.splits.prompt_hash of the text), so the split
file holds no text. Splits are drawn per source from the hash (70/15/15; XSTest 50/15/35 so that a
larger part of its safe prompts is held out for the false-flag measure) and committed; `candor
moderation train --resplit` redraws them; `--extend-splits` adds examples new since the split was
drawn (from their hash), leaving every existing assignment as it is. Nothing is copied into the repository.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from candor.cai.splits import prompt_hash
from candor.errors import CandorError
from candor.moderation import categories as cats

DATA = Path(__file__).resolve().parent.parent / "data" / "moderation"
ALIGNMENT = DATA.parent / "alignment"
SPLITS_FILE = DATA / "splits.json"
SPLITS = ("train", "validation", "test")
FRACTIONS = {"xstest": (0.50, 0.15)}  # (train, validation) shares; the rest is test
DEFAULT_FRACTIONS = (0.70, 0.15)


@dataclass(frozen=True)
class Example:
    id: str
    source: str
    text: str  # the request (input) or the answer (output)
    label: int  # 1: harmful
    category: str | None = None
    prompt: str = ""  # output examples: the request the answer replies to
    kind: str = ""  # the source's own type (XSTest's prompt type, HarmBench's functional category)
    follows: str = ""  # output examples: the input example (request) whose split this one takes


# Words that make an exam question about harm (a safe context for words the harmful requests use).
EXAM_HARM = re.compile(r"\b(?:kill|killing|shoot|shot|destroy|steal|stealing|beat|execute|attack|bomb|explode|slash|"
                       r"eradicate|murder|poison|weapon|gun|drug|hack|terror|violence|assault|rob|theft|fraud|"
                       r"suicide|abuse)\w*", re.IGNORECASE)
EXAM_MAX_CHARS = 1100  # read whole by the input check (candor.moderation.classifier.WINDOW_CHARS)


def exam_questions(data) -> list[Example]:
    """MMLU's and TruthfulQA's questions that speak of harm, as harmless examples (kind: the MMLU
    subject or "truthfulqa")."""
    from candor.evals.mmlu import read_questions

    out = []
    for path in sorted(data.glob("mmlu", "test/*_test.csv*")) + sorted(data.glob("mmlu", "dev/*_dev.csv*")):
        subject = path.name.split("_test.csv")[0].split("_dev.csv")[0]
        out += [Example("", "mmlu", q["question"].strip(), 0, kind=subject) for q in read_questions(path)]
    out += [Example("", "truthfulqa", row["Question"].strip(), 0, kind="truthfulqa")
            for row in data.csv("truthfulqa", "TruthfulQA.csv")]
    return [e for e in out if EXAM_HARM.search(e.text) and len(e.text) <= EXAM_MAX_CHARS]


def own_lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")]


def everyday_held_out() -> list[str]:
    """Everyday one-liners never trained on, the false-flag check for ordinary chat (tests and
    benchmarks/moderation.py): nothing in `input_examples` reads this file."""
    return own_lines(DATA / "everyday-held-out.txt")


def long_held_out() -> list[str]:
    """Long everyday requests never trained on (6-12 sentences each): the false-flag check for
    requests read in many parts (benchmarks/moderation_one_pass.py)."""
    return own_lines(DATA / "long-held-out.txt")


def long_harmful_held_out() -> list[Example]:
    """Long harmful requests never trained on (an ask buried in everyday context): the recall check
    for requests read in many parts. Lines are "category<TAB>request"."""
    out = []
    for line in own_lines(DATA / "long-harmful-held-out.txt"):
        category, text = line.split("\t", 1)
        out.append(Example(f"candor-long-harmful:{prompt_hash(text)}", "candor-long-harmful", text.strip(), 1,
                           category, kind="long"))
    return out


FRESH_FILES = {"fresh": DATA / "fresh-held-out.txt", "fresh-2": DATA / "fresh-held-out-2.txt",
               "fresh-3": DATA / "fresh-held-out-3.txt", "fresh-4": DATA / "fresh-held-out-4.txt",
               "fresh-5": DATA / "fresh-held-out-5.txt", "fresh-6": DATA / "fresh-held-out-6.txt",
               "fresh-7": DATA / "fresh-held-out-7.txt", "fresh-8": DATA / "fresh-held-out-8.txt"}
FRESH_SETS = tuple(FRESH_FILES)


def fresh_file(name: str = "fresh") -> Path:
    if name not in FRESH_FILES:
        raise ValueError(f"no fresh held-out set {name!r}: {', '.join(FRESH_SETS)}")
    return FRESH_FILES[name]


def fresh_held_out(name: str = "fresh") -> list[Example]:
    """A fresh held-out set (`FRESH_FILES`), evaluation only: nothing in `input_examples` reads these
    files. Each file's header says when, by whom and against what it was written (the card's
    `FRESH_ABOUT` says how often it has been read). Lines are "label<TAB>type<TAB>request", label
    "safe" or a harm category."""
    out = []
    for line in own_lines(fresh_file(name)):
        label, kind, text = line.split("\t", 2)
        harmful = label != "safe"
        out.append(Example(f"candor-{name}:{prompt_hash(text)}", f"candor-{name}", text.strip(), int(harmful),
                           label if harmful else None, kind=kind))
    return out


def _first_turn(transcript: str) -> tuple[str, str] | None:
    from candor.cai.hh import parse_transcript

    messages = parse_transcript(transcript)
    if len(messages) >= 2 and messages[0].role == "user" and messages[1].role == "assistant":
        return messages[0].content, messages[1].content
    return None


def input_examples(data_dir: str | Path | None = None, *, hh_limit: int = 1200,
                   long_requests: bool = False) -> list[Example]:
    """Every input example, deduplicated on normalised text (first source wins). Categories of
    prompts whose set has none come from the keyword rules, else are left None (the trainer fills
    them with the nearest labelled neighbour)."""
    from candor.evals.data import Data

    data = Data(data_dir)
    out: list[Example] = []
    for row in data.csv("advbench", "harmful_behaviors.csv"):
        out.append(Example("", "advbench", row["goal"], 1, cats.keyword_category(row["goal"])))
    for row in data.csv("harmbench", "harmbench_behaviors_text_all.csv"):
        if row["FunctionalCategory"] not in ("standard", "contextual"):
            continue
        text, semantic = row["Behavior"], row["SemanticCategory"]
        category = cats.HARMBENCH.get(semantic)
        if semantic in cats.HARMBENCH_REFINED:
            found = cats.keyword_category(text)
            if found not in (None, "crime", "violence"):
                category = found
        out.append(Example("", "harmbench", text, 1, category, kind=row["FunctionalCategory"]))
    for row in data.csv("xstest", "xstest_prompts.csv"):
        harmful = row["label"] == "unsafe"
        category = (cats.XSTEST.get(row["type"]) or cats.keyword_category(row["prompt"])) if harmful else None
        out.append(Example("", "xstest", row["prompt"], int(harmful), category, kind=row["type"]))
    for text in own_lines(ALIGNMENT / "red-team-requests.txt"):
        out.append(Example("", "candor-red-team", text, 1, cats.keyword_category(text)))
    for line in own_lines(DATA / "harmful-requests.txt"):
        category, text = line.split("\t", 1)
        out.append(Example("", "candor-harmful", text.strip(), 1, category))
    for text in own_lines(ALIGNMENT / "safe-edgy-requests.txt"):
        out.append(Example("", "candor-safe-edgy", text, 0))
    for line in own_lines(DATA / "contrast-requests.txt"):
        label, kind, text = line.split("\t", 2)
        harmful = label != "safe"
        out.append(Example("", "candor-contrast", text.strip(), int(harmful), label if harmful else None, kind=kind))
    for text in own_lines(DATA / "benign-requests.txt"):
        out.append(Example("", "candor-benign", text, 0))
    for line in own_lines(DATA / "long-requests.txt") if long_requests else []:
        label, text = line.split("\t", 1)
        harmful = label != "safe"
        out.append(Example("", "candor-long", text.strip(), int(harmful), label if harmful else None, kind="long"))
    helpful = 0
    for row in data.jsonl("hh-rlhf", "helpful-base/test.jsonl.gz"):
        turn = _first_turn(row["chosen"])
        if turn and helpful < hh_limit:
            out.append(Example("", "hh-helpful", turn[0], 0))
            helpful += 1
    out += exam_questions(data)
    return _dedup(out)


def output_examples(data_dir: str | Path | None = None, *, hh_limit: int = 600, seed: int = 0) -> list[Example]:
    """(request, answer) examples for the output head; `text` is the answer."""
    from candor.evals.data import Data

    data = Data(data_dir)
    refusals = own_lines(DATA / "refusals.txt")
    rng = random.Random(seed)
    out: list[Example] = []
    for row in data.csv("advbench", "harmful_behaviors.csv"):
        category = cats.keyword_category(row["goal"])
        out.append(Example("", "advbench-target", row["target"], 1, category, prompt=row["goal"]))
        out.append(Example("", "refusal", rng.choice(refusals), 0, category, prompt=row["goal"]))
    try:
        for row in data.csv("advbench", "harmful_strings.csv"):
            out.append(Example("", "advbench-string", row["target"], 1, cats.keyword_category(row["target"])))
    except CandorError:
        pass
    for row in data.csv("harmbench", "harmbench_behaviors_text_all.csv"):
        if row["FunctionalCategory"] == "standard":
            out.append(Example("", "refusal", rng.choice(refusals), 0, None, prompt=row["Behavior"]))
    helpful = 0
    for row in data.jsonl("hh-rlhf", "helpful-base/test.jsonl.gz"):
        turn = _first_turn(row["chosen"])
        if turn and helpful < hh_limit:
            out.append(Example("", "hh-helpful-answer", turn[1], 0, prompt=turn[0]))
            helpful += 1
    return _dedup(out, key=lambda e: e.prompt + "\n" + e.text)


def _dedup(examples: Iterable[Example], key=lambda e: e.text) -> list[Example]:
    seen: set[str] = set()
    out = []
    for e in examples:
        h = prompt_hash(key(e))
        if h in seen or not e.text.strip():
            continue
        seen.add(h)
        out.append(replace(e, id=f"{e.source}:{h}"))
    return out


def draw_splits(examples: Iterable[Example]) -> dict[str, str]:
    """id -> split, drawn from the id's hash (stable, independent of the order of the data)."""
    out = {}
    for e in examples:
        if e.follows:  # takes its request's split (see split)
            continue
        train, val = FRACTIONS.get(e.source, DEFAULT_FRACTIONS)
        u = int(e.id.rsplit(":", 1)[1][:8], 16) / 0xFFFFFFFF
        out[e.id] = "train" if u < train else "validation" if u < train + val else "test"
    return out


def write_splits(inputs: list[Example], outputs: list[Example], path: Path = SPLITS_FILE) -> None:
    doc = {"about": "moderation train/validation/test ids (source:hash of normalised text), "
                    "see candor/moderation/dataset.py",
           "input": _by_split(draw_splits(inputs)), "output": _by_split(draw_splits(outputs))}
    _save(doc, path)


def _save(doc: dict, path: Path) -> None:
    path.write_text(json.dumps(doc, indent=0, sort_keys=True) + "\n", encoding="utf-8")


def extend_splits(inputs: list[Example], outputs: list[Example], path: Path = SPLITS_FILE) -> dict[str, int]:
    """Add the examples `path` does not hold yet, each drawn from its hash as `draw_splits` would;
    no existing assignment changes (what was held out stays held out). Returns how many were added."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    added = {}
    for kind, examples in (("input", inputs), ("output", outputs)):
        known = {i for ids in doc[kind].values() for i in ids}
        new = draw_splits(e for e in examples if e.id not in known)
        for i, s in new.items():
            doc[kind][s].append(i)
        doc[kind] = {s: sorted(ids) for s, ids in doc[kind].items()}
        added[kind] = len(new)
    _save(doc, path)
    return added


def _by_split(assigned: dict[str, str]) -> dict[str, list[str]]:
    return {s: sorted(i for i, v in assigned.items() if v == s) for s in SPLITS}


def read_splits(kind: str, path: Path = SPLITS_FILE) -> dict[str, str]:
    """id -> split for `kind` ("input" or "output")."""
    if not path.is_file():
        raise CandorError(f"{path} is missing: run `candor moderation train --resplit` to draw the splits")
    doc = json.loads(path.read_text(encoding="utf-8"))
    return {i: s for s, ids in doc[kind].items() for i in ids}


def split(examples: list[Example], kind: str, path: Path = SPLITS_FILE) -> dict[str, list[Example]]:
    """Examples by split; an example the split file does not know is reported, never guessed. An
    example that `follows` a request takes that request's input split."""
    assigned = read_splits(kind, path)
    if any(e.follows for e in examples):
        requests = read_splits("input", path)
        assigned.update({e.id: requests[e.follows] for e in examples if e.follows in requests})
    out: dict[str, list[Example]] = {s: [] for s in SPLITS}
    unknown = [e.id for e in examples if e.id not in assigned]
    if unknown:
        raise CandorError(f"{len(unknown)} {kind} examples are not in {path} (e.g. {unknown[0]}): the data "
                          "differs from the data the split was drawn on; `candor moderation train --resplit` "
                          "draws a new split")
    for e in examples:
        out[assigned[e.id]].append(e)
    return out


def held_out_items(asked: dict[str, tuple[str, str]], path: Path = SPLITS_FILE) -> set[str]:
    """The eval items (candor.evals.judge_labels.requests: item id -> (prompt as asked, the request
    alone)) whose request the input classifier never trained on (its validation or test split)."""
    held = {i for i, s in read_splits("input", path).items() if s != "train"}

    def source(item: str) -> str:
        return "xstest" if item.startswith("xstest") else item.split("-", 1)[0]

    return {item for item, (_, core) in asked.items() if f"{source(item)}:{prompt_hash(core)}" in held}
