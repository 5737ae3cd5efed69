"""Evaluations: the same tasks for any model Candor can reach, and the report card that compares them.

    candor eval gsm8k humaneval --model candor-instant --limit 20
    candor eval all --model candor-instant --model candor-instant+hhh --report docs/report
    candor eval mmlu --model claude-2.1 --endpoint https://api.anthropic.com --api anthropic
    candor report runs/evals --out report/       # Markdown + self-contained HTML
    candor report --diff runs/a/gsm8k runs/b/gsm8k

One file per eval family (gsm8k, humaneval, mmlu, truthfulqa, bbq, harmlessness, overrefusal,
longcontext, docqa, formats), each with a small config dataclass; task.py holds what they share,
models.py the model interface (in process or over an Anthropic/OpenAI-compatible API),
runner.py the resumable runner, sandbox.py the code sandbox, judge.py the refusal judge,
data.py where data sets are found, report.py the report card.
"""

from __future__ import annotations

import importlib

# name -> "module:Class"; imported on use so `candor --help` stays fast.
TASKS = {
    "gsm8k": "gsm8k:GSM8K",
    "humaneval": "humaneval:HumanEval",
    "mmlu": "mmlu:MMLU",
    "mmlu-law": "mmlu:MMLULaw",
    "mmlu-medicine": "mmlu:MMLUMedicine",
    "truthfulqa-mc1": "truthfulqa:TruthfulQAMC1",
    "bbq": "bbq:BBQ",
    "harmlessness": "harmlessness:Harmlessness",
    "harmlessness-direct": "harmlessness:HarmlessnessDirect",
    "harmlessness-jailbreak": "harmlessness:HarmlessnessJailbreak",
    "over-refusal": "overrefusal:OverRefusal",
    "long-context": "longcontext:LongContext",
    "long-context-documents": "longcontext:LongContextDocuments",
    "doc-qa": "docqa:DocQA",
    "formats": "formats:Formats",
}


def task_class(name: str):
    from candor.errors import InvalidRequestError

    if name not in TASKS:
        raise InvalidRequestError(f"unknown task {name!r}; known: {', '.join(TASKS)} (or 'all')", field="task")
    module, cls = TASKS[name].split(":")
    return getattr(importlib.import_module(f"candor.evals.{module}"), cls)
