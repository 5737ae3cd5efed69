"""The serving model's own answers to the moderation requests, judged, as output-head examples.

The output head first learned harmful help from AdvBench's one-line targets ("Sure, here is ...")
against Candor's written refusals. On the answers the default model really gives it agreed with
the hand labels 0.731 of the time, missed half of the harmful ones (lists of steps) and stopped 15
of 250 answers to XSTest's safe prompts (garbled or merely dark ones). So the head also learns from
the answers it will read in service: the default model answers every moderation request (greedy,
as the report's harmlessness runs ask), the project's rule judge (candor.evals.judge) labels each,
and an answer is harmful help when its request is harmful and the judge calls it *compliance*
(on a safe request no answer is). Serving checks an answer as it grows, every
`check_every_chars`, so each answer is also kept cut at those points, judged again there.

An answer takes its request's split (`Example.follows`): the answer to a held-out request is held
out too, and nothing needs adding to splits.json. Answers are cached in
$CANDOR_HOME/moderation/answers-<model>-<weights checksum>-<max tokens>[-guarded].jsonl, one row per
request (generated once: 22 minutes for 2,025 requests on 2 cores; rerunning adds only missing
ones; `-guarded` when the model decodes with the loop guard).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from pathlib import Path

from candor.cai.splits import prompt_hash
from candor.moderation.dataset import Example

SOURCE = "policy-answer"
HH_LIMIT = 300  # hh-rlhf helpful requests answered (of the 1,200 read): the rest add little but time


# Exam questions: safe, answered by the input check alone. Long requests: added for the input check's
# reading of long requests sentence by sentence; leaving them out keeps the output head's data as it was.
UNANSWERED = {"mmlu", "truthfulqa", "candor-long"}


def answered_requests(inputs: Iterable[Example], hh_limit: int = HH_LIMIT) -> list[Example]:
    """The requests the model answers: every input example but the exam questions and the hh-rlhf
    ones past `hh_limit`."""
    out, hh = [], 0
    for e in inputs:
        if e.source in UNANSWERED:
            continue
        if e.source == "hh-helpful":
            hh += 1
            if hh > hh_limit:
                continue
        out.append(e)
    return out


def cut_points(answer: str, every: int = 120, most: int = 3) -> list[str]:
    """The answer as the growing-answer check sees it: its first `every`, 2x`every`, ...
    characters (at most `most` - 1 of them) and the whole answer."""
    cuts = [answer[:n] for n in range(every, len(answer), every)][: most - 1]
    return cuts + [answer]


def judged_examples(requests: list[Example], answers: dict[str, str], every: int = 120) -> list[Example]:
    """Output examples from the model's answers: label 1 where the request is harmful and the rule
    judge calls the (cut) answer compliance."""
    from candor.evals.judge import RuleJudge

    judge = RuleJudge()
    out, seen = [], set()
    for request in requests:
        answer = answers.get(request.id, "").strip()
        if not answer:
            continue
        for text in cut_points(answer, every):
            h = prompt_hash(request.text + "\n" + text)
            if h in seen:
                continue
            seen.add(h)
            harmful = bool(request.label) and judge.judge(request.text, text, request.text, harmful=True).label == "compliance"
            out.append(Example(f"{SOURCE}:{h}", SOURCE, text, int(harmful), request.category if harmful else None,
                               prompt=request.text, kind=request.source, follows=request.id))
    return out


def cache_file(model: str, checksum: str, max_tokens: int, guarded: bool = False) -> Path:
    """Where `model`'s answers are kept; answers decoded with the loop guard are kept apart (the
    guard changes what the model writes)."""
    from candor.config import settings

    guard = "-guarded" if guarded else ""
    return settings().home / "moderation" / f"answers-{model}-{checksum[:12]}-{max_tokens}{guard}.jsonl"


def read_cache(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    rows = (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return {r["id"]: r["answer"] for r in rows}


async def _answer_all(model, requests: list[Example], max_tokens: int, path: Path, concurrency: int, log) -> None:
    from candor.cai.critique import generate
    from candor.chat.render import Message
    from candor.chat.service import ChatParams

    gate = asyncio.Semaphore(concurrency)  # the engine decodes up to its slot count in one batch
    done = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        async def one(request: Example) -> None:
            nonlocal done
            async with gate:
                text, _ = await generate(model, [Message("user", request.text)], None,
                                         ChatParams(max_tokens=max_tokens, temperature=0.0))
            f.write(json.dumps({"id": request.id, "answer": text}, ensure_ascii=False) + "\n")
            f.flush()
            done += 1
            if done % 100 == 0:
                log(f"answered {done} of {len(requests)} requests")

        await asyncio.gather(*(one(r) for r in requests))


def policy_answers(requests: list[Example], model_name: str = "candor-instant", max_tokens: int = 96,
                   concurrency: int = 8, log=print) -> dict[str, str]:
    """request id -> the model's greedy answer, from the cache, generating the missing ones."""
    from candor.engine.hub import EngineHub, repetition_guard
    from candor.registry import load_registry

    registry = load_registry()
    entry = registry.get(model_name)
    path = cache_file(model_name, entry.sha256 or "unchecked", max_tokens, repetition_guard(entry).active)
    answers = read_cache(path)
    missing = [r for r in requests if r.id not in answers]
    if missing:
        log(f"{model_name} answers {len(missing)} moderation requests (cached in {path})")
        hub = EngineHub(registry)

        async def run() -> None:
            try:
                await _answer_all(await hub.get(model_name), missing, max_tokens, path, concurrency, log)
            finally:
                await hub.close()

        asyncio.run(run())
        answers = read_cache(path)
    return {r.id: answers[r.id] for r in requests if r.id in answers}
