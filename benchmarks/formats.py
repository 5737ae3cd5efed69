"""Parse rate of formatted output with and without grammar constraints, on the embedded model.

    CANDOR_HOME=.candor .venv/bin/python benchmarks/formats.py [--limit N] [--max-tokens 128]
        [--formats json,json-schema,xml,yaml,markdown] [--out results.jsonl]

Each prompt (benchmarks/formats_prompts.py, 40+ per format) is answered by candor-instant through
`stream_chat` at temperature 0, once with the format's grammar and once without, and the answer
is checked by `candor.formats.check_output`: "parsed" means it finished (stop reason end_turn)
and passed the format's real parser and checks; "cut" means max_tokens stopped it first;
"invalid" means it finished but failed to parse (for constrained output that is a bug).
Goal: 100% parsed with constraints.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from formats_prompts import (
    JSON_PROMPTS,
    JSON_SCHEMA_PROMPTS,
    MARKDOWN_PROMPTS,
    SCHEMAS,
    XML_PROMPTS,
    YAML_PROMPTS,
)

from candor import formats
from candor.chat import Message
from candor.chat.service import ChatParams, stream_chat
from candor.engine.base import Finish, TextDelta
from candor.engine.hub import EngineHub
from candor.engine.llama import available_cores
from candor.registry import load_registry

MODEL = "candor-instant"
ROWS = {
    "json": [("json", p, None) for p in JSON_PROMPTS],
    "json-schema": [("json", p, SCHEMAS[name]) for name, p in JSON_SCHEMA_PROMPTS],
    "xml": [("xml", p, None) for p in XML_PROMPTS],
    "yaml": [("yaml", p, None) for p in YAML_PROMPTS],
    "markdown": [("markdown", p, None) for p in MARKDOWN_PROMPTS],
}


@dataclass
class Tally:
    parsed: int = 0
    cut: int = 0
    invalid: int = 0
    tokens: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return self.parsed + self.cut + self.invalid


async def answer(model, prompt: str, grammar: str | None, max_tokens: int) -> tuple[str, Finish, float]:
    params = ChatParams(max_tokens=max_tokens, temperature=0.0, grammar=grammar)
    parts, finish, start = [], None, time.perf_counter()
    async for event in stream_chat(model, [Message("user", prompt)], None, params):
        if isinstance(event, TextDelta):
            parts.append(event.text)
        else:
            finish = event
    assert finish is not None
    return "".join(parts), finish, time.perf_counter() - start


def judge(fmt: str, text: str, finish: Finish, schema: dict | None) -> tuple[str, str]:
    try:
        formats.check_output(fmt, text, finish.stop_reason, schema, finish.usage.output_tokens)
        return "parsed", ""
    except formats.IncompleteOutputError as exc:
        return "cut", exc.message
    except formats.FormatError as exc:
        return "invalid", exc.message


async def run(args, out) -> None:
    hub = EngineHub(load_registry())
    model = await hub.get(MODEL)
    rows = [r.strip() for r in args.formats.split(",") if r.strip()]
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        sys.exit(f"unknown format row(s) {unknown}; choose from {', '.join(ROWS)}")
    results: dict[str, dict[str, Tally]] = {}
    started = time.perf_counter()
    try:
        for row in rows:
            cases = ROWS[row][: args.limit] if args.limit else ROWS[row]
            tallies = results[row] = {"constrained": Tally(), "unconstrained": Tally()}
            for i, (fmt, prompt, schema) in enumerate(cases, 1):
                for mode, tally in tallies.items():
                    grammar = formats.grammar_for(fmt, schema) if mode == "constrained" else None
                    text, finish, seconds = await answer(model, prompt, grammar, args.max_tokens)
                    status, why = judge(fmt, text, finish, schema)
                    setattr(tally, status, getattr(tally, status) + 1)
                    tally.tokens += finish.usage.output_tokens
                    tally.seconds += seconds
                    if status == "invalid" and mode == "constrained":
                        tally.errors.append(f"{prompt!r}: {why}")
                    print(f"[{row} {i}/{len(cases)} {mode}] {status} {finish.usage.output_tokens} tok "
                          f"{seconds:.1f}s {text[:70]!r}", file=sys.stderr, flush=True)
                    if out:
                        out.write(json.dumps({"row": row, "mode": mode, "prompt": prompt, "status": status,
                                              "why": why, "text": text, "stop_reason": finish.stop_reason,
                                              "output_tokens": finish.usage.output_tokens,
                                              "seconds": round(seconds, 3)}) + "\n")
                        out.flush()
            report(results, args, time.perf_counter() - started, file=sys.stderr)  # partial, while running
    finally:
        await hub.close()
    report(results, args, time.perf_counter() - started)


def pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:5.1f}%" if whole else "    -"


def report(results: dict[str, dict[str, Tally]], args, elapsed: float, file=None) -> None:
    file = file or sys.stdout
    print(f"model {MODEL}, temperature 0, max_tokens {args.max_tokens}, {available_cores()} cores, "
          f"{platform.machine()}, {elapsed / 60:.1f} min", file=file)
    print(f"{'format':<12} {'n':>3} | {'constrained parsed':>18} {'cut':>4} {'invalid':>7} {'tok/s':>6} "
          f"{'avg tok':>7} | {'unconstrained parsed':>20} {'cut':>4} {'invalid':>7} {'tok/s':>6}", file=file)
    for row, tallies in results.items():
        c, u = tallies["constrained"], tallies["unconstrained"]
        print(f"{row:<12} {c.n:>3} | {pct(c.parsed, c.n):>18} {c.cut:>4} {c.invalid:>7} "
              f"{c.tokens / max(c.seconds, 1e-9):6.1f} {c.tokens / max(c.n, 1):7.1f} | "
              f"{pct(u.parsed, u.n):>20} {u.cut:>4} {u.invalid:>7} {u.tokens / max(u.seconds, 1e-9):6.1f}", file=file)
    for row, tallies in results.items():
        for error in tallies["constrained"].errors:
            print(f"constrained {row} invalid: {error}", file=file)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="prompts per format (default: all)")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--formats", default=",".join(ROWS), help=f"comma-separated rows of: {', '.join(ROWS)}")
    parser.add_argument("--out", default=None, help="write every answer to this JSONL file")
    args = parser.parse_args()
    with open(args.out, "w") if args.out else contextlib.nullcontext() as out:
        asyncio.run(run(args, out))


if __name__ == "__main__":
    main()
