"""Moderation policy: what a deployment (and a key) does with the classifiers' scores.

Modes, separately for requests (input) and answers (output): `off`, `flag` (allow and record) or
`block`. The deployment's modes come from the settings; a policy file (data, replaceable per
deployment) holds per-category thresholds, per-key and per-user overrides, and the decline
messages, which name the constitution principle that applies and offer a safe alternative.

CANDOR_MODERATION          off | flag | block for both stages (default off)
CANDOR_MODERATION_INPUT    the same for requests only (overrides CANDOR_MODERATION)
CANDOR_MODERATION_OUTPUT   the same for answers only
CANDOR_MODERATION_POLICY   a policy TOML file (default candor/data/moderation/policy.toml)
CANDOR_MODERATION_HEADS    a heads file (default candor/data/moderation/heads.npz)
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from candor.config import env
from candor.errors import InvalidRequestError
from candor.moderation.categories import CATEGORIES, PRINCIPLE

Mode = Literal["off", "flag", "block"]
MODES = ("off", "flag", "block")
POLICY_FILE = Path(__file__).resolve().parent.parent / "data" / "moderation" / "policy.toml"


def _mode(value: str, where: str) -> Mode:
    value = value.strip().lower()
    if value not in MODES:
        raise InvalidRequestError(f"must be one of {', '.join(MODES)}, got {value!r}", field=where)
    return value  # type: ignore[return-value]


@dataclass(frozen=True)
class Modes:
    input: Mode = "off"
    output: Mode = "off"

    @property
    def any(self) -> bool:
        return self.input != "off" or self.output != "off"


def modes_from_env(values: dict[str, str] | None = None) -> Modes:
    """The deployment's modes from the settings (`values` stands in for the environment in tests)."""
    def get(name: str) -> str | None:
        return values.get(name) if values is not None else env(name)

    both = _mode(get("CANDOR_MODERATION") or "off", "CANDOR_MODERATION")
    return Modes(_mode(get("CANDOR_MODERATION_INPUT") or both, "CANDOR_MODERATION_INPUT"),
                 _mode(get("CANDOR_MODERATION_OUTPUT") or both, "CANDOR_MODERATION_OUTPUT"))


@dataclass(frozen=True)
class Decision:
    """What moderation did about one request or answer (recorded and counted)."""

    stage: Literal["input", "output"]
    action: Literal["allow", "flag", "block"]
    flagged: bool
    category: str | None  # the most likely category when flagged
    score: float  # P(harmful)
    threshold: float


@dataclass
class Policy:
    modes: Modes
    input_thresholds: dict[str, float]  # per category, resolved
    output_threshold: float
    messages: dict[str, str]
    read_parts: bool = True  # the input check reads each sentence too (Classifier.request_score)
    quick_read: bool = True  # a quick read in the heads file may clear requests (the shipped heads have none)
    check_every_chars: int = 120
    first_check_chars: int = 16  # the first check comes this early, then each at twice the last (`next_check`)
    window_chars: int = 1000
    keys: dict[str, Modes] = field(default_factory=dict)
    users: dict[str, Modes] = field(default_factory=dict)
    principle_titles: dict[str, str] = field(default_factory=dict)

    def modes_for(self, key: Any = None) -> Modes:
        """The deployment's modes, replaced by a key's (by prefix) or its user's entry."""
        if key is not None:
            prefix, user = getattr(key, "prefix", None), getattr(key, "username", None)
            if prefix and prefix in self.keys:
                return self.keys[prefix]
            if user and user in self.users:
                return self.users[user]
        return self.modes

    def quick_read_fits(self, quick) -> bool:
        """Whether the input check may start with `quick` (a QuickRead, or None): the policy asks for
        it and reads parts, as the full read it was chosen against did, and acts on no less evidence
        than the thresholds it was chosen under (a lower threshold flags requests it would let through)."""
        if quick is None or not self.quick_read or not self.read_parts:
            return False
        chosen = quick.thresholds
        return (self.output_threshold >= chosen["output"] - 1e-9 and all(
            self.input_thresholds.get(c, self.input_thresholds["default"]) >= chosen.get(c, chosen["default"]) - 1e-9
            for c in ("default", *CATEGORIES)))

    def decide_input(self, score, mode: Mode) -> Decision:
        threshold = self.input_thresholds.get(score.top, self.input_thresholds["default"])
        flagged = score.harmful >= threshold
        action = "allow" if not flagged or mode == "off" else mode
        return Decision("input", action, flagged, score.top if flagged else None, score.harmful, threshold)

    def decide_output(self, probability: float, category: str | None, mode: Mode) -> Decision:
        flagged = probability >= self.output_threshold
        action = "allow" if not flagged or mode == "off" else mode
        return Decision("output", action, flagged, category if flagged else None, probability, self.output_threshold)

    def next_check(self, checked: int) -> int:
        """The answer length (characters) at which the next output check is due, `checked` characters
        having passed one. The first check comes at `first_check_chars` and each next one at twice the
        last until `check_every_chars`, then at each multiple of it: the reader gets the first words
        after a few tokens instead of a whole stretch, and every check the plain schedule makes is still
        made (text is only released once checked, so a stretch of 120 held back the first words about
        0.4 s; benchmarks/moderation_ttft.py)."""
        due = self.first_check_chars
        while due <= checked and due < self.check_every_chars:
            due *= 2
        return due if due < self.check_every_chars else (checked // self.check_every_chars + 1) * self.check_every_chars

    def message(self, decision: Decision) -> str:
        """The decline text for a blocked request (or the note ending a stopped answer)."""
        category = decision.category or "default"
        if decision.stage == "output":
            template = self.messages.get("output", self.messages["default"])
        else:
            template = self.messages.get(category, self.messages["default"])
        principle = PRINCIPLE.get(category, "harm")
        return template.format(principle=self.principle_titles.get(principle, principle).lower())


def load_policy(heads, path: str | Path | None = None, modes: Modes | None = None) -> Policy:
    """The policy file (default: the packaged one, or CANDOR_MODERATION_POLICY) resolved against
    `heads` (whose validation-chosen thresholds stand in for "model")."""
    path = Path(path or env("CANDOR_MODERATION_POLICY") or POLICY_FILE)
    if not path.is_file():
        raise InvalidRequestError(f"moderation policy file {path} does not exist", field="CANDOR_MODERATION_POLICY")
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise InvalidRequestError(f"{path}: {exc}", field="CANDOR_MODERATION_POLICY") from exc

    def threshold(value: Any, where: str, model: float) -> float:
        if value == "model":
            return model
        if isinstance(value, (int, float)) and 0.0 < float(value) <= 1.0:
            return float(value)
        raise InvalidRequestError(f'{path}: {where} must be "model" or a number in (0, 1], got {value!r}',
                                  field="CANDOR_MODERATION_POLICY")

    raw = doc.get("input", {}).get("thresholds", {})
    unknown = set(raw) - set(CATEGORIES) - {"default"}
    if unknown:
        raise InvalidRequestError(f"{path}: unknown categories {sorted(unknown)} in input.thresholds; known: "
                                  f"{', '.join(CATEGORIES)}", field="CANDOR_MODERATION_POLICY")
    default = threshold(raw.get("default", "model"), "input.thresholds.default", heads.input_threshold)
    thresholds = {"default": default, **{c: threshold(v, f"input.thresholds.{c}", heads.input_threshold)
                                         for c, v in raw.items() if c != "default"}}
    out = doc.get("output", {})
    messages = doc.get("messages", {})
    if "default" not in messages:
        raise InvalidRequestError(f"{path}: [messages] needs a default", field="CANDOR_MODERATION_POLICY")

    def overrides(section: str) -> dict[str, Modes]:
        base = modes or modes_from_env()
        return {name: Modes(_mode(v.get("input", base.input), f"{section}.{name}.input"),
                            _mode(v.get("output", base.output), f"{section}.{name}.output"))
                for name, v in doc.get(section, {}).items()}

    def count(section: dict, name: str, default: int) -> int:
        value = section.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidRequestError(f"{path}: output.{name} must be a whole number of characters of at least 1, "
                                      f"got {value!r}", field="CANDOR_MODERATION_POLICY")
        return value

    read_parts = doc.get("input", {}).get("read_parts", True)
    if not isinstance(read_parts, bool):
        raise InvalidRequestError(f"{path}: input.read_parts must be true or false, got {read_parts!r}",
                                  field="CANDOR_MODERATION_POLICY")
    quick_read = doc.get("input", {}).get("quick_read", True)
    if not isinstance(quick_read, bool):
        raise InvalidRequestError(f"{path}: input.quick_read must be true or false, got {quick_read!r}",
                                  field="CANDOR_MODERATION_POLICY")
    return Policy(modes=modes or modes_from_env(), input_thresholds=thresholds, read_parts=read_parts,
                  quick_read=quick_read,
                  output_threshold=threshold(out.get("threshold", "model"), "output.threshold", heads.output_threshold),
                  messages=messages, check_every_chars=count(out, "check_every_chars", 120),
                  first_check_chars=count(out, "first_check_chars", 16),
                  window_chars=count(out, "window_chars", 1000), keys=overrides("keys"), users=overrides("users"),
                  principle_titles=_titles())


def _titles() -> dict[str, str]:
    try:
        from candor.constitution import load_constitution

        return {p.id: p.title or p.id for p in load_constitution().principles}
    except (OSError, InvalidRequestError):  # a deployment's unreadable constitution: fall back to the ids
        return {}
