"""HumanEval: write a Python function from its signature and docstring; pass@1 (and pass@k).

The model is asked to complete the function, with its answer prefilled with the opening of a
Python code block and the function's own header, so a base model continues the body and a chat
model can do the same (over an OpenAI endpoint, which has no prefill, it writes the whole
function in a code block instead; both are read by `program_from`). Generation stops at the end
of the code block or at the next top-level statement, as in the HumanEval paper.

Each program (the function, then the data's `check` tests, then `check(entry_point)`) runs in the
sandbox (candor/evals/sandbox.py): a bubblewrap container with its own PID, network and mount
namespaces, uid 65534, a seccomp filter that denies sockets, time, memory, process and file
limits, and a throwaway tmpfs as its only writable folder. A program that loops forever is killed
at `timeout_s` and fails. Without working isolation the task refuses to start (before generating
anything), unless `candor eval --unsafe-sandbox` or `CANDOR_UNSAFE_SANDBOX=1` allows it.

With `samples` = n > 1 (at `temperature` > 0), pass@k for each k in `k` (k <= n) is the unbiased
estimate 1 - C(n-c, k) / C(n, k) averaged over problems; pass@1 with one greedy sample is the
share of problems solved. Claude 2: 71.2% pass@1, Claude 1.3: 56.0% (0-shot, temperature 1).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

from candor.evals import stats
from candor.evals.models import EvalModel, Prompt
from candor.evals.sandbox import SandboxLimits, require_isolation, run_python
from candor.evals.task import Item, Task, csv_list, opt

STOPS = ["```", "\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#", "\nassert "]
INSTRUCTION = "Complete the following Python function. Reply with the whole function in one Python code block."
PREFILL_INSTRUCTION = ("Write a Python function that does what its docstring says, with a complete and correct body, "
                       "in one Python code block.")


@dataclass
class HumanEvalConfig:
    samples: int = opt(1, "answers per problem (n); pass@k needs n >= k")
    k: str = opt("1", "comma-separated k values for pass@k (each <= samples)")
    temperature: float = opt(0.0, "sampling temperature; with samples > 1 use e.g. 0.8")
    max_tokens: int = opt(384, "most tokens per answer")
    timeout_s: float = opt(10.0, "wall-clock seconds a program may run before it is killed")
    memory_mb: int = opt(1024, "address-space limit of a program, MiB")


_FENCE = re.compile(r"```[ \t]*(?:python|py|Python)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)


def program_from(prompt: str, answer: str, entry_point: str) -> str:
    """The function to test: the code block of the answer when it defines the function itself
    (with the prompt's imports and helpers before it), else the prompt followed by the answer as
    the function's body."""
    blocks = _FENCE.findall(answer)
    code = blocks[0] if blocks else answer
    for block in blocks:
        if re.search(rf"^\s*def {re.escape(entry_point)}\s*\(", block, re.MULTILINE):
            code = block
            break
    defined = re.search(rf"def {re.escape(entry_point)}\s*\(", code)
    if defined:  # a block may run on into tests or examples: keep up to the next top-level statement
        cuts = [code.find(stop, defined.end()) for stop in STOPS[1:]]
        code = code[: min([c for c in cuts if c > 0], default=len(code))]
    if re.search(rf"^\s*def {re.escape(entry_point)}\s*\(", code, re.MULTILINE):
        header = prompt[: prompt.find(f"def {entry_point}")]
        if code.lstrip().startswith(header.strip()[:40]) and header.strip():
            return code  # the block repeats the prompt's own imports
        return header + code
    return prompt + code


def test_program(program: str, test: str, entry_point: str) -> str:
    return f"{program}\n\n{test}\n\ncheck({entry_point})\n"


class HumanEval(Task):
    name = "humaneval"
    description = "HumanEval: Python functions from docstrings, run against unit tests in a sandbox"
    Config = HumanEvalConfig
    primary = "pass@1"

    def load(self) -> list[Item]:
        rows = self.data.jsonl("humaneval", "HumanEval.jsonl.gz")
        return [Item(r["task_id"].replace("/", "-"), {"prompt": r["prompt"], "test": r["test"],
                                                       "entry_point": r["entry_point"]},
                     f"humaneval/HumanEval.jsonl.gz#{i}") for i, r in enumerate(rows)]

    def ks(self) -> list[int]:
        ks = sorted({int(k) for k in csv_list(self.config.k)} | {1})
        return [k for k in ks if k <= self.config.samples]

    async def prepare(self, model: EvalModel) -> None:
        """Fail before generating anything when the sandbox cannot isolate programs here."""
        self.resolved["sandbox"] = await asyncio.to_thread(require_isolation)

    def prompt(self, item: Item, model: EvalModel) -> Prompt:
        """With a prefill, the function's header opens the answer's code block and the model writes
        on from the docstring (showing it a header with no body first invites it to copy that);
        without one, the header is in the request."""
        code = item.data["prompt"]
        if model.supports_prefill:
            return Prompt.user(PREFILL_INSTRUCTION, prefill=f"```python\n{code.rstrip()}")
        return Prompt.user(f"{INSTRUCTION}\n\n```python\n{code}```")

    async def check(self, item: Item, answer: str) -> dict[str, Any]:
        program = program_from(item.data["prompt"], answer, item.data["entry_point"])
        limits = SandboxLimits(timeout_s=self.config.timeout_s, cpu_s=int(self.config.timeout_s) + 1,
                               memory_mb=self.config.memory_mb)
        result = await asyncio.to_thread(run_python, test_program(program, item.data["test"],
                                                                  item.data["entry_point"]), limits)
        return {"status": result.status, "error": result.stderr.strip().splitlines()[-1:] or None,
                "sandbox_layers": result.layers, "run_seconds": result.seconds}

    async def run(self, model: EvalModel, item: Item, seed: int) -> dict[str, Any]:
        prompt = self.prompt(item, model)
        samples, tokens_in, tokens_out = [], 0, 0
        for i in range(self.config.samples):
            c = await model.generate(prompt, max_tokens=self.config.max_tokens, temperature=self.config.temperature,
                                     stop=STOPS, seed=seed + i)
            tokens_in += c.input_tokens
            tokens_out += c.output_tokens
            outcome = await self.check(item, c.text)
            outcome["error"] = outcome["error"][0] if outcome["error"] else None
            samples.append({"answer": c.text, "stop_reason": c.stop_reason, **outcome})
        return {"prompt": prompt.text(), "answer": samples[0]["answer"], "samples": samples,
                "input_tokens": tokens_in, "output_tokens": tokens_out, **self.score(samples)}

    def score(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        n, c = len(samples), sum(s["status"] == "passed" for s in samples)
        passk = {f"pass@{k}": stats.pass_at_k(n, c, k) for k in self.ks()}
        return {"passed": c, "n": n, **passk, "score": passk["pass@1"]}

    def aggregate(self, records):
        metrics = {f"pass@{k}": stats.share([r[f"pass@{k}"] for r in records],
                                            help=f"problems solved within {k} of {self.config.samples} samples")
                   for k in self.ks()}
        statuses = [s["status"] for r in records for s in r.get("samples", [])]
        metrics["timeout"] = stats.share([float(s == "timeout") for s in statuses], higher_is_better=False,
                                         help="programs killed at the time limit")
        layers = next((s["sandbox_layers"] for r in records for s in r.get("samples", [])), [])
        return {"metrics": metrics, "extra": {"sandbox_layers": layers}}
