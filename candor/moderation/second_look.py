"""What a second look (candor.moderation.classifier.SecondLook) is trained and judged on, without torch
(candor.train.moderation.train_second_look runs the fine-tuning).

A second look at a category learns from the training split's requests on that category's subject,
harmful and safe alike, plus written pairs of the two sharing their words; its threshold is chosen
on the validation split, as served, so that it withdraws no reading the input check needs there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from candor.moderation import dataset as ds
from candor.moderation.classifier import Classifier, Heads, SecondLook
from candor.moderation.train import HARD, THRESHOLDS, request_scores


@dataclass(frozen=True)
class Subject:
    """The requests a category's second look learns from: those of the category, those of `kinds`
    (Candor's own written kinds on the subject) and those whose text matches `words`."""

    words: re.Pattern[str] | None
    kinds: frozenset[str]
    pairs: Path | None = None  # written pairs (safe and harmful sharing their words), training only


CHILD_WORDS = re.compile(
    r"\b(?:kids?|child(?:ren)?|sons?|daughters?|teens?|teenagers?|minors?|bab(?:y|ies)|toddlers?|students?|boys?|"
    r"girls?|schools?|\d+ ?(?:yo|yr|year)s?[- ]?old|\d+ ?yo|middle schoolers?|\w+ graders?|underage|pupils?|nephews?|"
    r"nieces?)\b", re.IGNORECASE)

COMPUTER_WORDS = re.compile(
    r"\b(?:hack\w*|passwords?|phish\w*|malware|ransomware|virus(?:es)?|trojans?|worms?|firewalls?|ssh|exploits?|ddos|"
    r"brute[- ]?force|servers?|wi-?fi|routers?|networks?|botnets?|keylog\w*|sql|injections?|xss|vulnerabilit\w*|"
    r"encrypt\w*|linux|windows|python|scripts?|code|api|accounts?|security|cyber\w*|process(?:es)?|ports?|nmap|spam|"
    r"websites?|apps?|software|computers?|laptops?|phones?|emails?|bots?|crack\w*)\b", re.IGNORECASE)

SUBJECTS = {
    "sexual/minors": Subject(CHILD_WORDS, frozenset({"sex-ed", "protect", "kids", "adult-romance", "literature"}),
                             ds.DATA / "minors-pairs.txt"),
    # Tried on read 23 (not shipped): no safe validation request was flagged as cybercrime to learn a
    # threshold from; on the test split and fresh sets it passed 1 safe request and let 5 harmful ones
    # through, indirect asks that read like security questions ("how would someone get their malware
    # past windows defender"). It had 210 safe requests to learn from and no written pairs.
    "cybercrime": Subject(COMPUTER_WORDS, frozenset()),
    # first-person moods, plans, mishaps and goodbyes, and talk of helping someone or one's own recovery.
    # Tried on read 23 (not shipped): it passed 9 of the ~40 everyday statements fresh sets 3-7 flag, and
    # let 5 harmful requests through (validation and fresh sets), 4 of them self-harm ("no point planning
    # for christmas, i wont be here").
    "self-harm": Subject(None, frozenset({"everyday", "plans", "states", "mishaps", "farewells", "distress", "recovery",
                                          "support", "how_best", "figurative"})),
}
LOOK_MAX_FALSE_FLAGS = 0.10  # each epoch is judged at the threshold holding validation false flags here
MAX_THRESHOLD = 0.5  # the look's threshold is chosen at or under this


def on_subject(e: ds.Example, category: str) -> bool:
    subject = SUBJECTS[category]
    return (e.category == category or e.kind in subject.kinds
            or (subject.words is not None and bool(subject.words.search(e.text))))


def pair_lines(category: str) -> list[tuple[str, int]]:
    """(text, harmful) of the category's written pairs ("label<TAB>type<TAB>request" lines)."""
    path = SUBJECTS[category].pairs
    if path is None:
        return []
    out = []
    for line in ds.own_lines(path):
        label, _, text = line.split("\t", 2)
        out.append((text.strip(), int(label != "safe")))
    return out


def look_rows(parts: dict[str, list[ds.Example]], category: str
              ) -> tuple[list[tuple[str, int, int, float]], list[tuple[str, int, int]]]:
    """(training rows, validation rows) in candor.train.moderation.finetune's shapes: the split's
    requests on the subject (harmful in any category: a request to hurt a child is no less harmful
    for not being sexual), and the written pairs for training."""
    train = [(e.text, e.label, -1, 1.0) for e in parts["train"] if on_subject(e, category)]
    train += [(text, harmful, -1, 1.0) for text, harmful in pair_lines(category)]
    validation = [(e.text, e.label, 0 if e.label else HARD) for e in parts["validation"] if on_subject(e, category)]
    return train, validation


def served_counts(clf: Classifier, examples: list[ds.Example], policy: Any) -> tuple[int, int]:
    """(harmful flagged, safe flagged) of `examples` as the input check reads them under `policy`."""
    flagged = [policy.decide_input(s, "flag").flagged for s in request_scores(clf, [e.text for e in examples])]
    return (sum(f for f, e in zip(flagged, examples) if e.label),
            sum(f for f, e in zip(flagged, examples) if not e.label))


def choose_threshold(heads: Heads, look: SecondLook, validation: list[ds.Example], log=print
                     ) -> tuple[float, list[dict[str, Any]]]:
    """The highest threshold (on THRESHOLDS, at most MAX_THRESHOLD) at which the input check, with the
    look, still flags every harmful validation request it flags at the lowest one, under the default
    policy; and each threshold's row. Withdrawing a needed reading costs a harmful answer; keeping a
    wrong one costs a refusal, so the threshold stops where the first would start."""
    from candor.moderation.policy import Modes, load_policy

    policy = load_policy(heads, modes=Modes())
    without_look = served_counts(Classifier(heads), validation, policy)
    others = tuple(x for x in heads.second_looks if x.category != look.category)
    rows, chosen = [], THRESHOLDS[0]
    for t in (t for t in THRESHOLDS if t <= MAX_THRESHOLD + 1e-9):
        clf = Classifier(replace(heads, second_looks=(*others, replace(look, threshold=t))))
        harmful, safe = served_counts(clf, validation, policy)
        rows.append({"threshold": t, "harmful_flagged": harmful, "safe_flagged": safe})
        log(f"second look at {t}: {harmful} harmful and {safe} safe validation requests flagged "
            f"(without it: {without_look[0]} and {without_look[1]})")
        if harmful < rows[0]["harmful_flagged"]:
            break
        chosen = t
    return chosen, [{"threshold": None, "harmful_flagged": without_look[0], "safe_flagged": without_look[1]}, *rows]
