"""Running one task on one model: resumable, with a progress bar, results as JSON.

A run lives in `OUT/<model label>/<task>/`:

    config.json    the resolved settings: task options, model, seed, limit, data folder
    items.jsonl    one record per item, appended (and flushed) as each finishes
    results.json   metrics with 95% confidence intervals, timing, and the files above

Running the same command again skips the items already in items.jsonl, so an interrupted run
resumes where it stopped (and a larger --limit with the same seed extends it). A run folder
holding a different configuration is refused rather than mixed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from candor import __version__
from candor.errors import CandorError, InvalidRequestError
from candor.evals.models import EvalModel
from candor.evals.task import Item, Task

# What must match for a run folder to be resumed (the limit may change).
IDENTITY = ("task", "task_config", "model", "seed", "store_prompts")


class RunConflictError(CandorError):
    """The run folder holds a run with other settings."""


@dataclass
class RunOptions:
    out: Path
    limit: int | None = None
    seed: int = 1234
    store_prompts: bool = True  # False: keep a hash and the item's source instead of the prompt text
    concurrency: int = 1
    fresh: bool = False  # delete what the folder holds and start over
    rescore: bool = False  # score stored answers again (after a judge changed) without the model
    progress: bool = True
    command: str | None = None  # the command line that started the run, recorded in config.json


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("_") or "model"


def run_dir(out: Path, model_label: str, task_name: str) -> Path:
    return Path(out) / slug(model_label) / task_name


def read_records(path: Path) -> dict[str, dict[str, Any]]:
    """Records by item id; a line cut short by an interruption is ignored."""
    records: dict[str, dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            records[record["id"]] = record
    return records


def _identity(config: dict[str, Any]) -> dict[str, Any]:
    ident = {k: config.get(k) for k in IDENTITY}
    ident["model"] = {k: v for k, v in (ident["model"] or {}).items() if k not in ("context_window",)}
    return ident


def _check_resumable(folder: Path, config: dict[str, Any]) -> None:
    path = folder / "config.json"
    if not path.exists():
        return
    old = _identity(json.loads(path.read_text()))
    new = _identity(config)
    if old != new:
        differ = [k for k in IDENTITY if old.get(k) != new.get(k)]
        raise RunConflictError(f"{folder} holds a run with a different {', '.join(differ)}; use --fresh to "
                               "start it over or another --out folder")


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)


async def run_task(task: Task, model: EvalModel, options: RunOptions) -> dict[str, Any]:
    """Run (or resume) `task` on `model`; returns the results written to results.json."""
    folder = run_dir(options.out, model.label, task.name)
    await task.prepare(model)
    items = task.select(task.load(), options.limit, options.seed)
    if not items:
        raise InvalidRequestError(f"{task.name}: no items to run", field="limit")
    by_id = {item.id: item for item in items}
    config = {
        "task": task.name, "task_config": task.config_dict(), "resolved": task.resolved,
        "model": model.describe(), "seed": options.seed, "limit": options.limit, "n_items": len(items),
        "store_prompts": options.store_prompts, "data": task.data.describe(), "candor_version": __version__,
        "command": options.command,
    }
    if options.fresh and folder.exists():
        for name in ("config.json", "items.jsonl", "results.json"):
            (folder / name).unlink(missing_ok=True)
    _check_resumable(folder, config)
    folder.mkdir(parents=True, exist_ok=True)
    _write_json(folder / "config.json", config)

    items_path = folder / "items.jsonl"
    stored = read_records(items_path)
    if options.rescore and stored:
        _rescore(task, by_id, stored, items_path)
    done = {k: v for k, v in stored.items() if k in by_id}
    todo = [item for item in items if item.id not in done]
    started_at = datetime.now(UTC)
    wall = time.perf_counter()
    bar = _progress(task, model, len(items), len(done), options.progress)
    scores = [r.get("score", 0.0) for r in done.values()]
    if bar is not None:
        bar.set_postfix(score=_fmt(scores))
    lock = asyncio.Lock()
    gate = asyncio.Semaphore(max(1, options.concurrency))

    failed: list[BaseException] = []

    async def one(item: Item, out) -> None:
        async with gate:
            if failed:  # after an error or an interruption, start nothing new
                return
            t0 = time.perf_counter()
            try:
                record = await task.run(model, item, options.seed)
            except InvalidRequestError as exc:  # e.g. a prompt longer than the model's window
                record = {"prompt": None, "answer": None, "score": 0.0, "error": exc.message}
            except BaseException as exc:
                failed.append(exc)
                raise
            record = _finish_record(item, record, time.perf_counter() - t0, options.store_prompts)
        async with lock:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            out.flush()
            done[item.id] = record
            scores.append(record.get("score", 0.0))
            if bar is not None:
                bar.update(1)
                bar.set_postfix(score=_fmt(scores))

    try:
        with items_path.open("a", encoding="utf-8") as out:
            pending = [asyncio.ensure_future(one(item, out)) for item in todo]
            try:
                await asyncio.gather(*pending)
            except BaseException:
                for p in pending:
                    p.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
                raise
    finally:
        if bar is not None:
            bar.close()

    records = [done[item.id] for item in items]
    aggregate = task.aggregate(records)
    item_seconds = sum(r.get("seconds", 0.0) for r in records)
    results = {
        "task": task.name, "model": model.label, "description": task.description, "primary": task.primary,
        "metrics": aggregate["metrics"], "extra": aggregate.get("extra", {}),
        "n_items": len(records), "n_errors": sum(1 for r in records if r.get("error")),
        "timing": {
            "started": started_at.isoformat(timespec="seconds"),
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            "wall_seconds_this_session": round(time.perf_counter() - wall, 2),
            "item_seconds_total": round(item_seconds, 2),
            "items_per_second": round(len(records) / max(item_seconds, 1e-4), 4),
            "input_tokens": sum(r.get("input_tokens", 0) for r in records),
            "output_tokens": sum(r.get("output_tokens", 0) for r in records),
        },
        "config": config, "files": {"config": "config.json", "items": "items.jsonl", "results": "results.json"},
    }
    _write_json(folder / "results.json", results)
    return results


def _finish_record(item: Item, record: dict[str, Any], seconds: float, store_prompts: bool) -> dict[str, Any]:
    record = {"id": item.id, "source": item.source, **record, "seconds": round(seconds, 4)}
    if not store_prompts and record.get("prompt") is not None:
        prompt = record.pop("prompt")
        record["prompt"] = None
        record["prompt_sha256"] = hashlib.sha256(prompt.encode()).hexdigest()
    return record


def _rescore(task: Task, by_id: dict[str, Item], done: dict[str, dict[str, Any]], path: Path) -> None:
    changed = False
    for key, record in list(done.items()):
        new = task.rescore(by_id[key], record) if key in by_id else None
        if new is not None:
            done[key] = {**record, **new}
            changed = True
    if changed:
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in done.values()), encoding="utf-8")
        tmp.replace(path)


def _fmt(scores: list[float]) -> str:
    return f"{100 * sum(scores) / len(scores):.1f}%" if scores else "-"


def _progress(task: Task, model: EvalModel, total: int, initial: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=f"{task.name} · {model.label}", unit="item", file=sys.stderr,
                dynamic_ncols=True, smoothing=0.1)
