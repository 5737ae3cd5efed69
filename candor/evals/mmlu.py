"""MMLU: four-way multiple choice across 57 subjects, 5-shot, read from the answer letter.

Each question follows the subject's five dev-split exemplars in the classic layout ("The following
are multiple choice questions (with answers) about …", options "A." … "D.", "Answer: X"); the
model's turn is prefilled with "Answer:" and the choice is the letter whose token (" A" … " D")
is likeliest (`scoring`: logprob), or, for a model that reports no log-probabilities, the letter
it writes (generate). Accuracy is over all questions asked, with per-subject figures as extra.

Named subsets stand in for the exams Claude 2 reported:

- `mmlu-law`: professional_law, for the bar exam's multiple choice (MBE: Claude 2 76.5%, 1.3 73.0%);
- `mmlu-medicine`: professional_medicine and college_medicine, for the medical licensing exam
  (USMLE Step 1-3: Claude 2 68.9%, 63.3%, 67.2%).

They are different questions from those exams; the published numbers are context, not a match.
Claude 2's MMLU figure (78.5%, Claude 1.3 77.0%) was 5-shot with chain of thought.

Both layouts of the data are read: the original (no header, answer letter) and the re-export in
the shared data folder (header row, answer index 0-3).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from candor.evals import stats
from candor.evals.data import read_rows
from candor.evals.models import EvalModel, Prompt
from candor.evals.task import (
    LETTERS,
    SCORING_HELP,
    Item,
    Task,
    choose,
    csv_list,
    opt,
    options_block,
    resolve_scoring,
)


@dataclass
class MMLUConfig:
    shots: int = opt(5, "dev-split exemplars before each question (0-5)")
    scoring: str = opt("auto", SCORING_HELP)
    subjects: str = opt("", "comma-separated subjects (file names without _test.csv); empty: the task's own set")


def read_questions(path: Path) -> list[dict[str, Any]]:
    rows = list(read_rows(path))
    if rows and rows[0][:2] == ["question", "choice0"]:
        rows = rows[1:]
    out = []
    for row in rows:
        if len(row) < 6:
            continue
        answer = row[5].strip()
        index = LETTERS.index(answer) if answer in LETTERS[:4] else int(answer)
        out.append({"question": row[0], "choices": row[1:5], "answer": index})
    return out


def pretty(subject: str) -> str:
    return subject.replace("_", " ")


class MMLU(Task):
    name = "mmlu"
    description = "MMLU test, 57 subjects: 5-shot, answer-letter log-likelihood"
    Config = MMLUConfig
    primary = "accuracy"
    default_subjects: tuple[str, ...] = ()  # empty: every subject found

    def subjects(self) -> list[str]:
        chosen = csv_list(self.config.subjects) or list(self.default_subjects)
        if chosen:
            return chosen
        files = self.data.glob("mmlu", "test/*_test.csv*")
        if not files:
            self.data.find("mmlu", "test/abstract_algebra_test.csv")  # raises with the folder searched
        return sorted({f.name.split("_test.csv")[0] for f in files})

    def load(self) -> list[Item]:
        items = []
        self._shots: dict[str, list[dict[str, Any]]] = {}
        for subject in self.subjects():
            path = self.data.find("mmlu", f"test/{subject}_test.csv")
            try:
                self._shots[subject] = read_questions(self.data.find("mmlu", f"dev/{subject}_dev.csv"))
            except Exception:  # noqa: BLE001 - a subject without dev exemplars runs 0-shot
                self._shots[subject] = []
            for i, q in enumerate(read_questions(path)):
                items.append(Item(f"{subject}-{i}", {**q, "subject": subject}, f"{self.data.source(path)}#{i}"))
        return items

    async def prepare(self, model: EvalModel) -> None:
        self.resolved["scoring"] = await resolve_scoring(self.config.scoring, model)

    def prompt(self, item: Item) -> Prompt:
        subject = item.data["subject"]
        parts = [f"The following are multiple choice questions (with answers) about {pretty(subject)}.\n"]
        for shot in self._shots.get(subject, [])[: self.config.shots]:
            parts.append(f"{shot['question']}\n{options_block(shot['choices'])}\nAnswer: {LETTERS[shot['answer']]}\n")
        parts.append(f"{item.data['question']}\n{options_block(item.data['choices'])}")
        if self.resolved.get("scoring") == "generate":
            parts.append("Reply with the letter of the correct answer only.")
        return Prompt.user("\n".join(parts), prefill="Answer:")

    async def run(self, model: EvalModel, item: Item, seed: int) -> dict[str, Any]:
        prompt = self.prompt(item)
        picked = await choose(model, prompt, 4, self.resolved["scoring"])
        gold = item.data["answer"]
        return {"prompt": prompt.text(), "answer": picked["answer"], "target": LETTERS[gold],
                "choice": picked["choice"], "logprobs": picked.get("logprobs"), "subject": item.data["subject"],
                "score": float(picked["choice"] == gold)}

    def aggregate(self, records):
        by_subject: dict[str, list[float]] = {}
        for r in records:
            by_subject.setdefault(r["subject"], []).append(r["score"])
        return {"metrics": {
            "accuracy": stats.share([r["score"] for r in records], help="questions answered correctly"),
            "unparsed": stats.share([float(r["choice"] is None) for r in records], higher_is_better=False,
                                    help="answers naming no option (generate scoring only)"),
        }, "extra": {"scoring": self.resolved.get("scoring"),
                     "by_subject": {s: {"accuracy": sum(v) / len(v), "n": len(v)}
                                    for s, v in sorted(by_subject.items())}}}


class MMLULaw(MMLU):
    name = "mmlu-law"
    description = "MMLU professional law (stand-in for the bar exam's multiple choice), 5-shot"
    default_subjects = ("professional_law",)


class MMLUMedicine(MMLU):
    name = "mmlu-medicine"
    description = "MMLU professional and college medicine (stand-in for the medical licensing exam), 5-shot"
    default_subjects = ("professional_medicine", "college_medicine")
