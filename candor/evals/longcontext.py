"""Long context: find a needle in a haystack, across context lengths and positions in the document.

A document of filler prose (generated here from a fixed, seeded bank of plain sentences, so no
data set is needed) hides one sentence, "The special magic number for <city> is <7 digits>.",
at a relative depth (0 = the start, 1 = the end). The model is asked for the number, its answer
prefilled with "The special magic number for <city> is", and scores 1 when the digits appear in
what it writes. The grid is every length in `lengths` that fits the model's context window
(with room for the answer) times every depth in `depths`; lengths are in tokens of the whole
prompt, measured with the model's own tokenizer where it has one (else estimated at 4 characters
per token). Lengths that do not fit are listed as skipped. The 100K-token cell exists only for a
model whose window allows it (Claude 2 was launched with 100K).

With `path=documents` the haystack goes through Candor's document path instead (in process only):
it is a document and the question the user's text, so lengths beyond the window (10K, 50K, 100K,
200K tokens) are answered from retrieved passages, exactly as the API would; each record also says
whether retrieval put the needle into the prompt.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from candor.errors import InvalidRequestError
from candor.evals import stats
from candor.evals.models import EvalModel, Prompt
from candor.evals.task import Item, Task, csv_list, opt

CITIES = ["Lisbon", "Oslo", "Nairobi", "Quito", "Hanoi", "Tbilisi", "Montevideo", "Reykjavik", "Dakar", "Perth",
          "Valparaiso", "Tallinn", "Windhoek", "Cusco", "Bergen", "Da Nang", "Accra", "Ljubljana", "Hobart", "Split"]
_SUBJECTS = ["The old lighthouse keeper", "A quiet village baker", "The river ferry", "Our neighbour's garden",
             "The morning train", "A travelling musician", "The town library", "An orchard on the hill",
             "The harbour market", "A retired teacher", "The weather in spring", "A small bookshop",
             "The local football club", "A family of ducks", "The mountain path", "An evening choir"]
_VERBS = ["seems to remember", "slowly changes", "often talks about", "quietly reflects", "carefully keeps",
          "never forgets", "happily shares", "gently follows", "always returns to", "patiently waits for"]
_OBJECTS = ["the smell of fresh bread", "the sound of distant bells", "a map drawn by hand", "the colour of autumn",
            "letters from faraway friends", "the rhythm of the tides", "a recipe for plum jam", "the first snow",
            "the names of old ships", "a song about the sea", "the long summer evenings", "a box of postcards"]
_ENDINGS = ["and nobody minds.", "as the years go by.", "which makes everyone smile.", "without any hurry.",
            "in the usual way.", "even on rainy days.", "before the sun goes down.", "like it always has."]


@dataclass
class LongContextConfig:
    lengths: str = opt("1024,2048,4096,8192,16384,32768,100000,max",
                       "comma-separated prompt lengths in tokens ('max': the model's window less room for the "
                       "answer); those beyond the window are skipped")
    depths: str = opt("0,0.25,0.5,0.75,1", "comma-separated needle positions, 0 (start) to 1 (end)")
    repeats: int = opt(1, "needles per (length, depth) cell, each a different city and number")
    max_tokens: int = opt(16, "most tokens for the answer")
    path: str = opt("prompt", "'prompt': the haystack in the prompt (lengths up to the window); 'documents': the "
                    "haystack as a document through the document path (retrieval beyond the window; in process)")


@dataclass
class LongContextDocumentsConfig(LongContextConfig):
    lengths: str = opt("10000,50000,100000,200000", "comma-separated document lengths in tokens")
    path: str = opt("documents", "see long-context; here the haystack goes through the document path")


def filler(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} {rng.choice(_ENDINGS)}"
            for _ in range(n)]


def needle_for(item_id: str, seed: int) -> tuple[str, str]:
    rng = random.Random(f"{seed}:{item_id}")
    return rng.choice(CITIES), str(rng.randrange(1_000_000, 10_000_000))


def build(sentences: list[str], depth: float, city: str, number: str) -> Prompt:
    at = round(depth * len(sentences))
    body = sentences[:at] + [f"The special magic number for {city} is {number}."] + sentences[at:]
    text = ("Read the document below and answer the question after it.\n\n<document>\n" + " ".join(body) +
            f"\n</document>\n\nWhat is the special magic number for {city} mentioned in the document?")
    return Prompt.user(text, prefill=f"The special magic number for {city} is")


class LongContext(Task):
    name = "long-context"
    description = "Needle in a haystack: recall over context lengths and positions"
    Config = LongContextConfig
    primary = "recall"

    async def prepare(self, model: EvalModel) -> None:
        if self.config.path not in ("prompt", "documents"):
            raise InvalidRequestError(f"must be 'prompt' or 'documents', got {self.config.path!r}", field="path")
        if self.config.path == "documents" and getattr(model, "loaded", None) is None:
            raise InvalidRequestError("path=documents runs in process (the document path is Candor's own)",
                                      field="path")
        window = model.context_window
        room = self.config.max_tokens + 16
        names = csv_list(self.config.lengths)
        wanted = sorted({int(x) for x in names if x != "max"} | ({window - room} if "max" in names and window else set()))
        self.resolved["context_window"] = window
        documents = self.config.path == "documents"  # retrieval: no length is too long
        self.resolved["lengths"] = [n for n in wanted if documents or window is None or n + room <= window]
        self.resolved["skipped_lengths"] = [n for n in wanted if n not in self.resolved["lengths"]]
        self.resolved["tokens_per_sentence"] = await self._tokens_per_sentence(model)
        self._sentences: dict[int, list[str]] = {}

    async def _tokens_per_sentence(self, model: EvalModel) -> float:
        sample = filler(200)
        base = await model.count_tokens(build([], 0.5, "Oslo", "1234567"))
        full = await model.count_tokens(build(sample, 0.5, "Oslo", "1234567"))
        if base is None or full is None:
            return sum(len(s) + 1 for s in sample) / 4 / len(sample)  # no tokenizer: ~4 characters a token
        return (full - base) / len(sample)

    def load(self) -> list[Item]:
        items = []
        for length in self.resolved.get("lengths", []):
            # Deepest needle first: each prompt then shares the longest prefix with the one before,
            # which engines that keep their cache (the embedded one does) need not evaluate again.
            for depth in sorted({float(d) for d in csv_list(self.config.depths)}, reverse=True):
                for r in range(self.config.repeats):
                    items.append(Item(f"len{length}-depth{depth:g}-{r}", {"length": length, "depth": depth},
                                      "generated"))
        return items

    async def haystack(self, model: EvalModel, length: int, seed: int) -> list[str]:
        """Filler sentences so the whole prompt is just under `length` tokens."""
        if length in self._sentences:
            return self._sentences[length]
        per = self.resolved["tokens_per_sentence"] or 20.0
        n = max(1, int((length - 120) / per))
        pool = filler(n + 200, seed)
        for _ in range(6):  # measure and correct (the estimate is close; tokenizers merge at boundaries)
            got = await model.count_tokens(build(pool[:n], 0.5, "Oslo", "1234567"))
            if got is None or length - 40 <= got <= length:
                break
            n = max(1, min(len(pool), n + int((length - 20 - got) / per)))
        self._sentences[length] = pool[:n]
        return pool[:n]

    async def run(self, model: EvalModel, item: Item, seed: int) -> dict[str, Any]:
        length, depth = item.data["length"], item.data["depth"]
        city, number = needle_for(item.id, seed)
        prompt = build(await self.haystack(model, length, seed), depth, city, number)
        extra: dict[str, Any] = {}
        if self.config.path == "documents":
            prompt, extra = await self.through_documents(model, prompt, city)
        c = await model.generate(prompt, max_tokens=self.config.max_tokens, temperature=0.0, stop=["\n"])
        answer = c.text.removeprefix(prompt.prefill)
        found = number in answer.replace(",", "").replace(" ", "")
        return {"prompt": f"[{length}-token haystack, needle at depth {depth:g}] {prompt.messages[0]['content'][-120:]}",
                "answer": c.text, "target": number, "length": length, "depth": depth,
                "prompt_tokens": c.input_tokens, "score": float(found), **extra}

    async def through_documents(self, model: EvalModel, prompt: Prompt, city: str) -> tuple[Prompt, dict[str, Any]]:
        """The same haystack and question, placed by the document path (whole or retrieved)."""
        from candor.chat.render import Message
        from candor.documents.blocks import DocumentInput
        from candor.documents.extract import from_text
        from candor.documents.place import place

        text = prompt.messages[0]["content"]
        haystack = text[text.index("<document>\n") + 11:text.index("\n</document>")]
        question = f"What is the special magic number for {city} mentioned in the document?"
        doc = DocumentInput(0, 0, from_text(haystack), None, None, False)
        turns = [Message("user", question), Message("assistant", prompt.prefill)]
        placed, placements = await place(model.loaded, turns, None, [doc],  # type: ignore[attr-defined]
                                         self.config.max_tokens)
        needle = next(s for s in haystack.split(". ") if s.startswith("The special magic number"))
        return (Prompt(tuple({"role": m.role, "content": m.content} for m in placed)),
                {"mode": placements[0].mode, "retrieved": float(needle in placed[0].content)})

    def aggregate(self, records):
        lengths = sorted({r["length"] for r in records})
        depths = sorted({r["depth"] for r in records})
        grid = {str(n): {f"{d:g}": stats.mean([r["score"] for r in records if r["length"] == n and r["depth"] == d])
                         for d in depths} for n in lengths}
        metrics = {"recall": stats.share([r["score"] for r in records], help="needles found, whole grid")}
        if any("retrieved" in r for r in records):
            metrics["retrieval"] = stats.share([r.get("retrieved", 0.0) for r in records],
                                               help="needles that retrieval put into the prompt")
        for n in lengths:
            metrics[f"recall@{n}"] = stats.share([r["score"] for r in records if r["length"] == n],
                                                 help=f"needles found in {n}-token prompts")
        return {"metrics": metrics, "extra": {"grid": grid, "lengths": lengths, "depths": depths,
                                              "skipped_lengths": self.resolved.get("skipped_lengths", []),
                                              "context_window": self.resolved.get("context_window")}}


class LongContextDocuments(LongContext):
    """The same needles through the document path, at lengths beyond the embedded model's window."""

    name = "long-context-documents"
    description = "Needle in a haystack through the document path: retrieval beyond the window"
    Config = LongContextDocumentsConfig
    in_process_only = True
