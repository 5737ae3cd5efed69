"""Formats: how often the model's JSON, XML, YAML and Markdown answers are valid.

The prompts are the API's formatted-output suite (`benchmarks/formats_prompts.py`, 40+ per
format, written for Candor); an installed copy without the repository falls back to the few
prompts below. Each prompt is asked with "Answer with <format> only." appended, at temperature 0,
and checked by the same parsers the API uses for constrained output (`candor.formats.validate`:
json + jsonschema, defusedxml, yaml.safe_load, markdown-it-py). `valid` accepts the whole answer
or its first fenced code block; `valid_strict` only the whole answer; an answer cut by max_tokens
is invalid. With `constrained` = true the format's grammar constrains decoding (in-process models
only), which should give 100% and checks the grammars rather than the model.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from typing import Any

from candor.evals import stats
from candor.evals.data import REPO_ROOT
from candor.evals.models import EvalModel, Prompt
from candor.evals.task import Item, Task, csv_list, opt

NAMES = {"json": "JSON", "xml": "XML", "yaml": "YAML", "markdown": "Markdown"}
FALLBACK = {
    "json": ["Give a JSON object describing a book with title, author and year.",
             "Describe a cat as a JSON object with name, age and color.",
             "Return a JSON object with the capital cities of France, Spain and Italy."],
    "xml": ["Describe a book in XML with its title, author and year.",
            "Write an XML record for a person with name, age and email.",
            "Write an XML list of three fruits."],
    "yaml": ["List three fruits as YAML.", "Write a YAML config for a web server with host and port.",
             "Describe a person in YAML with name, age and city."],
    "markdown": ["Write a shopping list in Markdown.", "Give a Markdown table of three countries and their capitals.",
                 "Write a short guide to making tea, with a heading and numbered steps."],
}
_FENCE = re.compile(r"```[A-Za-z]*[ \t]*\n(.*?)\n?```", re.DOTALL)


@dataclass
class FormatsConfig:
    formats: str = opt("json,xml,yaml,markdown", "comma-separated formats to ask for")
    per_format: int = opt(0, "the first N prompts of each format (0: all); --limit samples across formats instead")
    max_tokens: int = opt(256, "most tokens per answer; a cut answer counts as invalid")
    constrained: bool = opt(False, "constrain decoding with the format's grammar (in-process models only)")


def prompt_suite() -> tuple[dict[str, list[str]], str]:
    """The API issue's prompts when the repository is here, else the fallback; and which."""
    path = REPO_ROOT / "benchmarks" / "formats_prompts.py"
    if path.exists():
        spec = importlib.util.spec_from_file_location("candor_formats_prompts", path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        return {"json": module.JSON_PROMPTS, "xml": module.XML_PROMPTS, "yaml": module.YAML_PROMPTS,
                "markdown": module.MARKDOWN_PROMPTS}, "benchmarks/formats_prompts.py"
    return FALLBACK, "candor/evals/formats.py FALLBACK"


def check(fmt: str, text: str) -> str | None:
    """None when `text` is valid `fmt`, else why not."""
    from candor import formats
    from candor.formats.errors import FormatError

    try:
        formats.validate(fmt, text)
        return None
    except FormatError as exc:
        return exc.message
    except (ValueError, RecursionError) as exc:  # a parser giving up on odd input: invalid, not a failed run
        return f"{type(exc).__name__}: {exc}"


class Formats(Task):
    name = "formats"
    description = "JSON, XML, YAML and Markdown validity of unconstrained answers"
    Config = FormatsConfig
    primary = "valid"

    def load(self) -> list[Item]:
        suite, where = prompt_suite()
        self.resolved["prompts"] = where
        items = []
        for fmt in csv_list(self.config.formats):
            for i, text in enumerate(suite[fmt][: self.config.per_format or None]):
                items.append(Item(f"{fmt}-{i}", {"format": fmt, "prompt": text}, f"{where}#{fmt}-{i}"))
        return items

    def score(self, fmt: str, answer: str, stop_reason: str) -> dict[str, Any]:
        if stop_reason == "max_tokens":
            return {"valid_strict": 0.0, "why": "cut by max_tokens", "score": 0.0}
        strict = check(fmt, answer.strip())
        why = strict
        if strict is not None:
            block = _FENCE.search(answer)
            why = check(fmt, block.group(1)) if block else strict
        return {"valid_strict": float(strict is None), "why": why, "score": float(why is None)}

    async def run(self, model: EvalModel, item: Item, seed: int) -> dict[str, Any]:
        fmt = item.data["format"]
        prompt = Prompt.user(f"{item.data['prompt']}\n\nAnswer with {NAMES[fmt]} only.")
        grammar = None
        if self.config.constrained:
            from candor import formats

            grammar = formats.grammar_for(fmt)
        c = await model.generate(prompt, max_tokens=self.config.max_tokens, temperature=0.0, seed=seed,
                                 grammar=grammar)
        return {"prompt": prompt.text(), "answer": c.text, "format": fmt, "stop_reason": c.stop_reason,
                "input_tokens": c.input_tokens, "output_tokens": c.output_tokens,
                **self.score(fmt, c.text, c.stop_reason)}

    def rescore(self, item, record):
        if record.get("answer") is None:
            return None
        return self.score(item.data["format"], record["answer"], record.get("stop_reason", "end_turn"))

    def aggregate(self, records):
        metrics = {"valid": stats.share([r["score"] for r in records], help="whole answer or its code block parses"),
                   "valid_strict": stats.share([r["valid_strict"] for r in records], help="whole answer parses")}
        for fmt in [f for f in NAMES if any(r["format"] == f for r in records)]:
            metrics[f"valid[{fmt}]"] = stats.share([r["score"] for r in records if r["format"] == fmt],
                                                   help=f"valid {NAMES[fmt]}")
        return {"metrics": metrics, "extra": {"prompts": self.resolved.get("prompts"),
                                              "constrained": self.config.constrained}}
