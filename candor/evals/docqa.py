"""Document QA with citations, through the document path the API uses (candor.documents).

Each length gets one generated document (seeded filler prose from the long-context task plus
project-written facts such as "The budget of the Juniper Fund is 48 thousand euros.", one per
question, at seeded positions), so nothing comes from a data set. A question about each fact is
asked with the document in a `document`-style input with citations on: the document goes in
whole when it fits the window, else its passages are retrieved. Three scores per question: the
fact was in the prompt (retrieval), the answer contains it, and a citation's `cited_text`
contains it. Runs in process only (the document path lives in the server, not in a remote API).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from candor.chat.render import Message
from candor.documents.blocks import DocumentInput
from candor.documents.cite import citer_for
from candor.documents.extract import from_text
from candor.documents.place import place
from candor.errors import InvalidRequestError
from candor.evals import stats
from candor.evals.longcontext import filler
from candor.evals.models import EvalModel, Prompt
from candor.evals.task import Item, Task, csv_list, opt

ENTITIES = ["the Juniper Fund", "the Harbor Project", "the Northgate clinic", "the Amber Line ferry",
            "the Kestrel observatory", "the Willow Street bakery", "the Granite Bay school", "the Lantern theatre",
            "the Orchard Hill farm", "the Silver Creek mill", "the Copper Road museum", "the Maple Court library"]
NAMES = ["Ingrid Halvorsen", "Tomasz Wojcik", "Amara Okafor", "Lucia Ferreira", "Kenji Watanabe", "Elif Demir"]


def fact_for(k: int, seed: int) -> tuple[str, str, str]:
    """(fact sentence, question, the value the answer must contain)."""
    rng = random.Random(f"docqa:{seed}:{k}")
    entity = ENTITIES[k % len(ENTITIES)]
    kind = k % 3
    if kind == 0:
        value = f"{rng.randrange(12, 99)} thousand euros"
        return f"The budget of {entity} is {value}.", f"What is the budget of {entity}?", value
    if kind == 1:
        value = str(rng.randrange(1890, 2020))
        return f"{entity[0].upper()}{entity[1:]} opened in {value}.", f"In which year did {entity} open?", value
    value = rng.choice(NAMES)
    return f"The director of {entity} is {value}.", f"Who is the director of {entity}?", value


@dataclass
class DocQAConfig:
    lengths: str = opt("2000,20000", "comma-separated document lengths in tokens; those over the window are retrieved")
    questions: int = opt(6, "questions (facts) per document length")
    max_tokens: int = opt(40, "most tokens for an answer")


class DocQA(Task):
    name = "doc-qa"
    description = "Questions about a long document, answered through retrieval with citations"
    Config = DocQAConfig
    primary = "answer"
    in_process_only = True

    async def prepare(self, model: EvalModel) -> None:
        if getattr(model, "loaded", None) is None:
            raise InvalidRequestError("doc-qa runs in process (the document path is Candor's own); "
                                      "drop --endpoint", field="model")
        self._docs: dict[int, str] = {}

    def load(self) -> list[Item]:
        return [Item(f"len{n}-q{k}", {"length": int(n), "fact": k}, "generated")
                for n in csv_list(self.config.lengths) for k in range(self.config.questions)]

    async def document(self, model: EvalModel, length: int, seed: int) -> str:
        if length not in self._docs:
            count = model.loaded.engine.count_tokens  # type: ignore[attr-defined]
            sentences = filler(max(10, length // 14), seed)
            while await count(" ".join(sentences)) < length:
                sentences += filler(50, seed + len(sentences))
            rng = random.Random(f"docqa-positions:{seed}:{length}")
            for k in range(self.config.questions):
                sentences.insert(rng.randrange(len(sentences) + 1), fact_for(k, seed)[0])
            self._docs[length] = " ".join(sentences)
        return self._docs[length]

    async def run(self, model: EvalModel, item: Item, seed: int) -> dict[str, Any]:
        loaded = model.loaded  # type: ignore[attr-defined]
        length, k = item.data["length"], item.data["fact"]
        _fact, question, value = fact_for(k, seed)
        doc = DocumentInput(0, 0, from_text(await self.document(model, length, seed)), "Report", None, True)
        messages, placements = await place(loaded, [Message("user", question)], None, [doc], self.config.max_tokens)
        prompt = Prompt(tuple({"role": m.role, "content": m.content} for m in messages))
        c = await model.generate(prompt, max_tokens=self.config.max_tokens, temperature=0.0)
        citer = citer_for(placements)
        cited = [ct["cited_text"] for seg in (citer.segments(c.text) if citer else []) for ct in seg.citations]
        return {"prompt": question, "answer": c.text, "target": value, "length": length,
                "mode": placements[0].mode, "cited": cited, "prompt_tokens": c.input_tokens,
                "retrieved": float(value in messages[0].content), "score": float(value.lower() in c.text.lower()),
                "cited_score": float(any(value in t for t in cited))}

    def aggregate(self, records):
        metrics = {
            "answer": stats.share([r["score"] for r in records], help="answers that contain the fact"),
            "citation": stats.share([r["cited_score"] for r in records],
                                    help="answers with a citation whose cited text contains the fact"),
            "retrieval": stats.share([r["retrieved"] for r in records], help="facts that were in the prompt"),
        }
        for n in sorted({r["length"] for r in records}):
            mine = [r for r in records if r["length"] == n]
            metrics[f"answer@{n}"] = stats.share([r["score"] for r in mine], help=f"answers, {n}-token document")
            metrics[f"citation@{n}"] = stats.share([r["cited_score"] for r in mine],
                                                   help=f"correct citations, {n}-token document")
        return {"metrics": metrics, "extra": {"modes": {str(r["length"]): r["mode"] for r in records}}}
