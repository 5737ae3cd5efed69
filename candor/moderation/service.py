"""Moderation at serving time: checks a request before the model sees it and an answer while it
grows, applies the policy, and reports every decision to the recorders (store, metrics).

Serving holds one `Moderator` per server (candor.serving.generation reads it from the hub). A
blocked request never reaches the engine: the caller gets the policy's decline message as the
answer. A blocked answer stops generating: the text already checked stays, the decline note is
appended, and the stop reason is `refusal` (as Anthropic's API reports a classifier's stop).
Streamed text is released only after the check that covers it, so the part of an answer that
crossed the threshold is never sent.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from candor.engine.base import Event, Finish, TextDelta, Usage
from candor.moderation.classifier import Classifier, Heads, InputScore
from candor.moderation.policy import Decision, Modes, Policy, load_policy, modes_from_env

log = logging.getLogger(__name__)

RECENT_REQUESTS = 32  # request scores kept for the output check that follows the input check

# The request being served, set by the API's edge middleware so decisions name it.
REQUEST_ID: ContextVar[str | None] = ContextVar("candor_request_id", default=None)


@dataclass(frozen=True)
class Judged:
    """One decision with who and what it was about, as handed to the recorders."""

    decision: Decision
    request_id: str | None
    key_id: int | None
    user_id: int | None
    model: str
    text: str  # the text judged (recorders keep it only under the retention rules)


Recorder = Callable[[Judged], Awaitable[None] | None]


def caller_of(gate: Any) -> Any:
    """The KeyContext behind a generation's gate (both the API's RequestGate and the chat page's
    PageGate expose it as `caller`); None when there is no gate (CLI, evals)."""
    return getattr(gate, "caller", None) if gate is not None else None


def request_text(messages: Iterable[Any]) -> str:
    """What the input classifier reads: the last user turn (where a new request is made)."""
    last = ""
    for m in messages:
        role = m.get("role") if isinstance(m, Mapping) else getattr(m, "role", None)
        content = m.get("content") if isinstance(m, Mapping) else getattr(m, "content", "")
        if role == "user":
            last = content if isinstance(content, str) else str(content)
    return last


class Moderator:
    def __init__(self, policy: Policy, classifier: Classifier, redact_answers: bool = False):
        self.policy = policy
        self.classifier = classifier
        self.redact_answers = redact_answers  # CANDOR_PII_REDACT=answers (candor.moderation.pii)
        self.recorders: list[Recorder] = []
        # start with a quick read where the heads carry one that fits the policy (the shipped heads have none)
        self.quick = policy.quick_read_fits(classifier.heads.quick_read)
        # Each request is read once: the input check's score of its parts is the output check's
        # context too (a few recent requests, by text; check_input runs just before watch).
        self._scores: OrderedDict[tuple[str, bool], InputScore] = OrderedDict()
        self._scores_lock = threading.Lock()
        # The output check's own reading of a request (stock MiniLM), started beside the input check when
        # answers are moderated too: both are one thread each and the engine has not started yet, so the
        # second one is nearly free (27 ms of a 200-word-piece request's time to first token).
        self._prompt_vectors: OrderedDict[str, asyncio.Task[np.ndarray]] = OrderedDict()

    @classmethod
    def from_settings(cls, modes: Modes | None = None, heads_path: str | Path | None = None,
                      policy_path: str | Path | None = None) -> Moderator | None:
        """The deployment's moderator, or None when every mode (deployment, keys, users) is off.
        A missing heads file raises here, at start, naming the path."""
        from candor.config import env
        from candor.moderation.pii import redact_targets

        modes = modes or modes_from_env()
        redact_answers = "answers" in redact_targets()
        if not modes.any and not redact_answers and not has_overrides(policy_path):
            return None  # nothing to moderate: the classifier is not loaded
        heads = Heads.load(Path(heads_path or env("CANDOR_MODERATION_HEADS") or _default_heads()))
        policy = load_policy(heads, policy_path, modes)
        overrides = list(policy.keys.values()) + list(policy.users.values())
        if not modes.any and not redact_answers and not any(m.any for m in overrides):
            return None
        return cls(policy, Classifier(heads), redact_answers)

    def redact(self, events: AsyncGenerator[Event, None]) -> AsyncGenerator[Event, None]:
        """`events` with personal data redacted from the answer, when the deployment asks for it."""
        if not self.redact_answers:
            return events
        from candor.moderation.pii import redact_stream

        return redact_stream(events)

    async def _emit(self, decision: Decision, caller: Any, model: str, text: str) -> None:
        event = Judged(decision, REQUEST_ID.get(), getattr(caller, "key_id", None), getattr(caller, "user_id", None),
                       model, text)
        for recorder in self.recorders:
            try:
                result = recorder(event)
                if asyncio.iscoroutine(result):
                    await result
            except Exception:  # a failing recorder must not turn into an answer nobody moderated
                log.exception("moderation recorder failed")

    async def request_score(self, text: str, parts: bool = True) -> InputScore:
        """The classifier's `request_score` of `text`, computed once for the input and the output check."""
        key = (text, parts)
        with self._scores_lock:
            if key in self._scores:
                self._scores.move_to_end(key)
                return self._scores[key]
        score = await asyncio.to_thread(self.classifier.request_score, text, parts, self.quick and parts)
        with self._scores_lock:
            self._scores[key] = score
            while len(self._scores) > RECENT_REQUESTS:
                self._scores.popitem(last=False)
        return score

    async def check_input(self, messages: Iterable[Any], caller: Any, model: str) -> Decision | None:
        """The decision on a request, or None when input moderation is off for this caller."""
        mode = self.policy.modes_for(caller).input
        if mode == "off":
            return None
        text = request_text(messages)
        if not text.strip():
            return None
        if self.output_mode(caller) != "off":
            self._start_prompt_vector(text)
        score = await self.request_score(text, self.policy.read_parts)
        decision = self.policy.decide_input(score, mode)
        if decision.flagged:
            await self._emit(decision, caller, model, text)
        return decision

    def output_mode(self, caller: Any) -> str:
        return self.policy.modes_for(caller).output

    def _start_prompt_vector(self, text: str) -> None:
        """Begin the output check's embedding of request `text` in a thread of its own (`_prompt_vector`
        takes it up); kept for a few recent requests."""
        if text in self._prompt_vectors:
            return
        task = asyncio.create_task(asyncio.to_thread(lambda: self.classifier.embed_answers([text])[0]))
        task.add_done_callback(lambda t: t.cancelled() or t.exception())  # a failure surfaces where it is awaited
        self._prompt_vectors[text] = task
        while len(self._prompt_vectors) > RECENT_REQUESTS:
            self._prompt_vectors.popitem(last=False)

    async def _prompt_vector(self, text: str) -> np.ndarray:
        """The output check's embedding of request `text`: the one `check_input` started, or started now."""
        self._start_prompt_vector(text)
        return await self._prompt_vectors.pop(text)

    async def watch(self, events: AsyncIterator[Event], messages: list[Any], caller: Any, model: str,
                    count_tokens: Callable[[str], Awaitable[int]], input_tokens: int) -> AsyncIterator[Event]:
        """`events` with the answer checked as it grows (`Policy.next_check`: early at first, then every
        `check_every_chars`); text is held back until the check that covers it passed. On a block: close the engine's stream (stops generating),
        append the decline note, finish with stop reason `refusal`."""
        mode = self.output_mode(caller)
        prompt = request_text(messages)
        score = await self.request_score(prompt)
        context = (await self._prompt_vector(prompt), score)  # as Classifier.request_context
        top = score.top  # the category a block names
        window = self.policy.window_chars
        released, pending = "", ""
        flagged_once = False

        async def check(answer: str) -> Decision:
            p = await asyncio.to_thread(self.classifier.score_output, context, answer[-window:])
            return self.policy.decide_output(p, top, mode)  # type: ignore[arg-type]

        try:
            async for event in events:
                decision: Decision | None
                if isinstance(event, TextDelta):
                    pending += event.text
                    if len(released) + len(pending) < self.policy.next_check(len(released)):
                        continue
                    decision = await check(released + pending)
                elif isinstance(event, Finish):
                    decision = await check(released + pending) if pending.strip() else None
                else:
                    yield event
                    continue
                if decision is not None and decision.flagged and not flagged_once:
                    flagged_once = True
                    await self._emit(decision, caller, model, released + pending)
                if decision is not None and decision.action == "block":
                    note = ("\n\n" if released.strip() else "") + self.policy.message(decision)
                    output_tokens = await count_tokens(released) if released else 0
                    used = event.usage.input_tokens if isinstance(event, Finish) else input_tokens
                    yield TextDelta(note)
                    yield Finish("refusal", Usage(used, output_tokens))
                    return
                if pending:
                    yield TextDelta(pending)
                    released, pending = released + pending, ""
                if isinstance(event, Finish):
                    yield event
                    return
        finally:
            await events.aclose()  # type: ignore[attr-defined]


def has_overrides(policy_path: str | Path | None = None) -> bool:
    """Whether the policy file names keys or users (whose modes may turn moderation on)."""
    import tomllib

    from candor.config import env
    from candor.moderation.policy import POLICY_FILE

    path = Path(policy_path or env("CANDOR_MODERATION_POLICY") or POLICY_FILE)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return True  # let load_policy report the problem
    return bool(doc.get("keys") or doc.get("users"))


def _default_heads() -> Path:
    from candor.moderation.classifier import HEADS_FILE

    return HEADS_FILE
