"""The report card: runs side by side, as Markdown and as one self-contained HTML page.

`write_report(runs, out)` reads each run's results.json and writes `out/report.md` (plots as PNG
files in `out/report_files/`) and `out/report.html` (the same, plots inlined, no outside files but
the run files it links to). Per task, models are columns with 95% confidence intervals, Claude 2's
and Claude 1.3's published numbers are reference columns where they exist, and every number links
to the results.json it came from. The long-context grid is a heat map per model; headline
metrics are bar charts with their intervals (matplotlib). `diff_runs(a, b)` lists the items whose
score changed between two runs of one task.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Published numbers (shared/reference/constitutional-ai.md §5: Claude 2 model card and launch post).
REFERENCES: dict[tuple[str, str], dict[str, Any]] = {
    ("gsm8k", "accuracy"): {"Claude 2": 0.880, "Claude 1.3": 0.852, "note": "0-shot chain of thought, temperature 1"},
    ("humaneval", "pass@1"): {"Claude 2": 0.712, "Claude 1.3": 0.560, "note": "Codex HumanEval, 0-shot, temperature 1"},
    ("mmlu", "accuracy"): {"Claude 2": 0.785, "Claude 1.3": 0.770, "note": "5-shot with chain of thought, temperature 1"},
    ("mmlu-law", "accuracy"): {"Claude 2": 0.765, "Claude 1.3": 0.730,
                               "note": "the bar exam's multiple choice (MBE, NCBE 2021 practice exam, 5-shot): "
                                       "different questions from MMLU professional law"},
    ("mmlu-medicine", "accuracy"): {"Claude 2": 0.665, "note": "mean of USMLE Step 1, 2, 3 (68.9%, 63.3%, 67.2%; "
                                                               "5-shot): different questions from MMLU medicine"},
    ("harmlessness", "worse_than_refusal"): {"Claude 2": 4 / 328,
                                             "note": "4 of 328 held-out red-team and jailbreak prompts judged worse "
                                                     "than \"I can't help you with that.\" by a preference model: "
                                                     "a different prompt set and judge"},
}
REFERENCE_MODELS = ("Claude 1.3", "Claude 2")


# -- loading ------------------------------------------------------------------------------------
def find_runs(paths: list[Path]) -> list[Path]:
    """Run folders (holding results.json) under the given paths, in order, without repeats."""
    found: list[Path] = []
    for path in paths:
        path = Path(path)
        candidates = [path] if (path / "results.json").exists() else sorted(p.parent for p in path.rglob("results.json"))
        for c in candidates:
            if c not in found:
                found.append(c)
    return found


def load_results(folder: Path) -> dict[str, Any]:
    return json.loads((Path(folder) / "results.json").read_text(encoding="utf-8"))


# -- formatting ---------------------------------------------------------------------------------
def fmt_value(m: dict[str, Any] | None, with_ci: bool = True) -> str:
    if not m or m.get("value") is None:
        return "–"
    pct = m.get("unit", "%") == "%"

    def one(x):
        return f"{100 * x:.1f}" if pct else f"{x:+.2f}"

    text = one(m["value"]) + ("%" if pct else "")
    if with_ci and m.get("ci_low") is not None and m.get("ci_high") is not None:
        text += f" [{one(m['ci_low'])}, {one(m['ci_high'])}]"
    return text


def summary_line(results: dict[str, Any], folder: Path) -> str:
    primary = results["primary"]
    return (f"{results['task']} · {results['model']}: {primary} {fmt_value(results['metrics'].get(primary))} "
            f"(95% CI, n={results['n_items']}) in {results['timing']['item_seconds_total']:.0f} s → "
            f"{Path(folder) / 'results.json'}")


def _rel(target: Path, base: Path) -> str:
    return Path(os.path.relpath(Path(target).resolve(), Path(base).resolve())).as_posix()


# -- plots ---------------------------------------------------------------------------------------
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def bar_plot(path: Path, title: str, labels: list[str], series: dict[str, list[dict | None]],
             references: dict[str, list[float | None]]) -> None:
    """Grouped bars (one group per label, one bar per model) with 95% CI whiskers and reference ticks."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(5.0, 1.3 * len(labels) + 2), 3.4))
    width = 0.8 / max(1, len(series))
    for i, (model, ms) in enumerate(series.items()):
        xs = [j + (i - (len(series) - 1) / 2) * width for j in range(len(labels))]
        vals = [100 * m["value"] if m and m.get("value") is not None else 0 for m in ms]
        err = [[max(0, v - 100 * (m.get("ci_low") or 0)) if m and m.get("value") is not None else 0
                for v, m in zip(vals, ms)],
               [max(0, 100 * (m.get("ci_high") or 0) - v) if m and m.get("value") is not None else 0
                for v, m in zip(vals, ms)]]
        ax.bar(xs, vals, width, yerr=err, capsize=3, label=model)
    for (name, vals), marker in zip(references.items(), ("v", "D")):
        pts = [(j, 100 * v) for j, v in enumerate(vals) if v is not None]
        if pts:
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], marker=marker, color="black", zorder=3, label=name)
    ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("%")
    ax.set_ylim(0, 100)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def heatmap(path: Path, title: str, grid: dict[str, dict[str, float | None]]) -> None:
    plt = _pyplot()
    lengths = list(grid)
    depths = list(next(iter(grid.values()), {}))
    data = [[(grid[n].get(d) if grid[n].get(d) is not None else float("nan")) for n in lengths] for d in depths]
    fig, ax = plt.subplots(figsize=(1.0 * len(lengths) + 2, 0.5 * len(depths) + 1.6))
    im = ax.imshow(data, vmin=0, vmax=1, cmap="RdYlGn", aspect="auto")
    ax.set_xticks(range(len(lengths)), lengths, fontsize=8)
    ax.set_yticks(range(len(depths)), depths, fontsize=8)
    ax.set_xlabel("prompt tokens")
    ax.set_ylabel("needle depth")
    for i in range(len(depths)):
        for j in range(len(lengths)):
            if data[i][j] == data[i][j]:
                ax.text(j, i, f"{data[i][j]:.0%}", ha="center", va="center", fontsize=7)
    fig.colorbar(im, ax=ax, fraction=0.05)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- the card -----------------------------------------------------------------------------------
def build_blocks(runs: list[Path], out: Path, files: Path) -> list[tuple]:
    """The report as blocks: ("h1"/"h2"/"h3"/"p", text), ("table", header, rows), ("img", path, alt)."""
    from candor.evals import TASKS

    results = {(r["task"], r["model"]): (r, folder) for folder in runs for r in [load_results(folder)]}
    models = list(dict.fromkeys(m for _, m in results))
    tasks = [t for t in TASKS if any(t == k[0] for k in results)] + sorted(
        {t for t, _ in results if t not in TASKS})
    files.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    blocks: list[tuple] = [("h1", "Candor report card"),
                           ("p", (f"Generated {stamp} from {len(results)} runs. Numbers are percentages with 95% "
                                 "confidence intervals in brackets (Wilson for shares, bootstrap otherwise); each "
                                 "links to its run's results.json. Claude columns are published numbers, measured "
                                 "by Anthropic under different settings: context, not a like-for-like comparison."))]
    rows = []
    for model in models:
        some = next(r for (t, m), (r, _) in results.items() if m == model)
        desc = some["config"]["model"]
        what = ", ".join(f"{k}: {v}" for k, v in desc.items() if k in ("kind", "model", "weights", "adapter", "url",
                                                                         "system_preset") and v)
        guarded = {t: r["config"]["model"].get("loop_guard") for (t, m), (r, _) in results.items() if m == model}
        guard = next((g for g in guarded.values() if g), None)
        if guard:
            what += ", loop guard: " + ", ".join(f"{k} {v}" for k, v in guard.items())
            without = sorted(t for t, g in guarded.items() if not g)
            if without:  # runs made before the guard, or with another one: the card must not blur them
                what += f" (runs without it: {', '.join(without)})"
        rows.append([f"**{model}**", what])
    blocks += [("h2", "Models"), ("table", ["model", "what it is"], rows)]
    for model in models:
        desc = next(r for (t, m), (r, _) in results.items() if m == model)["config"]["model"]
        if desc.get("system_preset_text"):
            blocks.append(("p", (f"**{model}** is {desc.get('model')} with this system prompt (preset "
                                f"`{desc['system_preset']}`), and nothing else changed: \"{desc['system_preset_text']}\"")))

    head_rows, plot_labels = [], []
    plot_series: dict[str, list] = {m: [] for m in models}
    plot_refs: dict[str, list] = {n: [] for n in REFERENCE_MODELS}
    for task in tasks:
        some = next(r for (t, _), (r, _) in results.items() if t == task)
        primary = some["primary"]
        row = [task, primary]
        for model in models:
            pair = results.get((task, model))
            row.append(_link(fmt_value(pair[0]["metrics"].get(primary)), pair[1] / "results.json", out)
                       if pair else "–")
            plot_series[model].append(pair[0]["metrics"].get(primary) if pair else None)
        ref = REFERENCES.get((task, primary), {})
        row += [f"{100 * ref[n]:.1f}%" if n in ref else "–" for n in REFERENCE_MODELS]
        row.append(", ".join(str(results[(task, m)][0]["n_items"]) if (task, m) in results else "–" for m in models))
        head_rows.append(row)
        plot_labels.append(f"{task}\n{primary}")
        for n in REFERENCE_MODELS:
            plot_refs[n].append(ref.get(n))
    bar_plot(files / "summary.png", "Headline metric per task (95% CI)", plot_labels, plot_series, plot_refs)
    blocks += [("h2", "Summary"),
               ("table", ["task", "headline"] + models + list(REFERENCE_MODELS) + ["items"], head_rows),
               ("img", files / "summary.png", "headline metrics")]

    for task in tasks:
        blocks += task_blocks(task, models, results, out, files)
    commands = list(dict.fromkeys(r["config"].get("command") for r, _ in results.values() if r["config"].get("command")))
    if commands:
        blocks += [("h2", "How these runs were made"), ("pre", "\n\n".join(commands))]
    return blocks


def _link(text: str, target: Path, out: Path) -> str:
    return f"[{text}]({_rel(target, out)})"


def task_blocks(task: str, models: list[str], results: dict, out: Path, files: Path) -> list[tuple]:
    runs = {m: results[(task, m)] for m in models if (task, m) in results}
    first = next(iter(runs.values()))[0]
    blocks: list[tuple] = [("h2", task), ("p", first.get("description", ""))]
    names = list(dict.fromkeys(k for r, _ in runs.values() for k in r["metrics"]))
    rows = []
    for name in names:
        some = next(r["metrics"][name] for r, _ in runs.values() if name in r["metrics"])
        row = [f"{name}{'' if some.get('higher_is_better', True) else ' ↓'}"]
        for model in models:
            pair = runs.get(model)
            row.append(_link(fmt_value(pair[0]["metrics"].get(name)), pair[1] / "results.json", out)
                       if pair and name in pair[0]["metrics"] else "–")
        ref = REFERENCES.get((task, name), {})
        row += [f"{100 * ref[n]:.1f}%" if n in ref else "–" for n in REFERENCE_MODELS]
        row.append(some.get("help", ""))
        rows.append(row)
    blocks.append(("table", ["metric"] + models + list(REFERENCE_MODELS) + ["meaning"], rows))
    notes = [f"{n}: {r['note']}" for (t, _), r in REFERENCES.items() if t == task for n in [_refname(r)]]
    run_notes = []
    for model, (r, folder) in runs.items():
        cfg = r["config"]
        resolved = {k: v for k, v in cfg.get("resolved", {}).items() if k not in ("judge_agreement",)}
        run_notes.append(f"{model}: {r['n_items']} items (limit {cfg.get('limit') or 'none'}, seed {cfg['seed']}), "
                         f"{r['timing']['item_seconds_total']:.0f} s, settings {json.dumps(cfg['task_config'])}"
                         + (f", resolved {json.dumps(resolved)}" if resolved else "")
                         + f" — [run files]({_rel(folder, out)})")
    blocks.append(("list", notes + run_notes))
    share_names = [n for n in names if all(runs[m][0]["metrics"].get(n, {}).get("unit", "%") == "%" for m in runs)]
    if share_names and len(share_names) > 1:
        path = files / f"{task}-bars.png"
        bar_plot(path, task, share_names, {m: [runs[m][0]["metrics"].get(n) for n in share_names] for m in runs},
                 {n: [REFERENCES.get((task, s), {}).get(n) for s in share_names] for n in REFERENCE_MODELS})
        blocks.append(("img", path, f"{task} metrics"))
    for model, (r, _) in runs.items():
        extra = r.get("extra", {})
        if extra.get("grid"):
            path = files / f"{task}-{re.sub(r'[^A-Za-z0-9.+-]', '_', model)}.png"
            heatmap(path, f"needle recall: {model}", extra["grid"])
            blocks.append(("img", path, f"{task} grid, {model}"))
            if extra.get("skipped_lengths"):
                blocks.append(("p", (f"{model}: lengths {extra['skipped_lengths']} skipped (context window "
                                    f"{extra.get('context_window')}).")))
        agreement = extra.get("judge_agreement")
        if agreement and model == next(iter(runs)):
            blocks.append(("p", f"Judge `{extra.get('judge')}` agrees with the hand-labelled set on "
                                f"{100 * agreement['accuracy']:.1f}% of {agreement['n']} responses "
                                f"[{100 * agreement['ci_low']:.1f}, {100 * agreement['ci_high']:.1f}], Cohen's "
                                f"kappa {agreement['kappa']:.2f}" + _heldout(agreement) + "." + _smollm2(agreement)))
        for key in ("by_template", "by_category", "by_type"):
            if extra.get(key):
                blocks.append(("p", f"{model}, {key.replace('_', ' ')}: " + "; ".join(
                    f"{k} " + ", ".join(f"{n} {_pct(v)}" for n, v in d.items() if n != "n") for k, d in
                    extra[key].items()) + "."))
    return blocks


def _heldout(agreement: dict[str, Any]) -> str:
    h = agreement.get("heldout")
    return (f"; on the {h['n']} held-out responses written after the rules were frozen: "
            f"{100 * h['accuracy']:.1f}% [{100 * h['ci_low']:.1f}, {100 * h['ci_high']:.1f}], kappa "
            f"{h['kappa']:.2f}") if h else ""


def _smollm2(agreement: dict[str, Any]) -> str:
    """The judge on the hand labels of SmolLM2's own answers (without and with the loop guard)."""
    out = []
    for key, what in (("smollm2", "SmolLM2-135M-Instruct's answers"),
                      ("smollm2_guarded", "its answers decoded with the loop guard")):
        parts = agreement.get(key)
        if not parts:
            continue
        d, h = parts["dev"], parts["heldout"]
        out.append(f"{what}: {100 * d['accuracy']:.0f}% of {d['n']} read while the rules were written "
                   f"(kappa {d['kappa']:.2f}), {100 * h['accuracy']:.0f}% of {h['n']} held out (kappa {h['kappa']:.2f})")
    return (" On hand labels of " + "; on ".join(out) + ".") if out else ""


def _pct(v: Any) -> str:
    if isinstance(v, float):
        return f"{100 * v:.0f}%" if 0 <= v <= 1 else f"{v:+.2f}"
    return "–" if v is None else str(v)


def _refname(ref: dict[str, Any]) -> str:
    return " / ".join(n for n in REFERENCE_MODELS if n in ref)


# -- rendering ------------------------------------------------------------------------------------
def render_markdown(blocks: list[tuple], out: Path) -> str:
    lines: list[str] = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            lines += ["#" * int(kind[1]) + " " + block[1], ""]
        elif kind == "p":
            lines += [block[1], ""]
        elif kind == "list":
            lines += [f"- {item}" for item in block[1]] + [""]
        elif kind == "table":
            header, rows = block[1], block[2]
            lines.append("| " + " | ".join(header) + " |")
            lines.append("|" + "---|" * len(header))
            lines += ["| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in r) + " |" for r in rows]
            lines.append("")
        elif kind == "img":
            lines += [f"![{block[2]}]({_rel(block[1], out)})", ""]
        elif kind == "pre":
            lines += ["```", block[1], "```", ""]
    return "\n".join(lines)


def _inline(text: str) -> str:
    text = html.escape(text)
    text = re.sub(r"\[((?:[^\[\]]|\[[^\[\]]*\])+)\]\(([^)\s]+)\)", r'<a href="\2">\1</a>', text)
    text = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", text)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", text)


CSS = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
       "table{border-collapse:collapse;margin:1em 0;font-size:14px}td,th{border:1px solid #ccc;padding:4px 8px;"
       "text-align:left;vertical-align:top}th{background:#f4f4f4}img{max-width:100%}a{color:#0645ad}"
       "code{background:#f4f4f4;padding:0 3px}li{margin:.3em 0;font-size:14px}")


def render_html(blocks: list[tuple]) -> str:
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>Candor report card</title>",
             f"<style>{CSS}</style></head><body>"]
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            parts.append(f"<{kind}>{_inline(block[1])}</{kind}>")
        elif kind == "p":
            parts.append(f"<p>{_inline(block[1])}</p>")
        elif kind == "list":
            parts.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in block[1]) + "</ul>")
        elif kind == "table":
            head = "".join(f"<th>{_inline(h)}</th>" for h in block[1])
            body = "".join("<tr>" + "".join(f"<td>{_inline(str(c))}</td>" for c in r) + "</tr>" for r in block[2])
            parts.append(f"<table><tr>{head}</tr>{body}</table>")
        elif kind == "pre":
            parts.append(f"<pre>{html.escape(block[1])}</pre>")
        elif kind == "img":
            data = base64.b64encode(Path(block[1]).read_bytes()).decode()
            parts.append(f"<p><img alt='{html.escape(block[2])}' src='data:image/png;base64,{data}'></p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(paths: list[Path], out: Path, extra_blocks: list[tuple] | None = None) -> list[Path]:
    """Write out/report.md (+ out/report_files/*.png) and out/report.html for the runs under `paths`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runs = find_runs([Path(p) for p in paths])
    if not runs:
        from candor.errors import InvalidRequestError

        raise InvalidRequestError(f"no results.json under {', '.join(map(str, paths))}", field="runs")
    blocks = build_blocks(runs, out, out / "report_files") + list(extra_blocks or [])
    md, page = out / "report.md", out / "report.html"
    md.write_text(render_markdown(blocks, out), encoding="utf-8")
    page.write_text(render_html(blocks), encoding="utf-8")
    return [md, page]


# -- diff ----------------------------------------------------------------------------------------
def diff_runs(a: Path, b: Path, max_rows: int = 50) -> str:
    """Markdown: which items' scores changed between run folders a and b (same task)."""
    from candor.evals.runner import read_records

    ra, rb = load_results(a), load_results(b)
    ia, ib = read_records(Path(a) / "items.jsonl"), read_records(Path(b) / "items.jsonl")
    both = [k for k in ia if k in ib]
    changed = [k for k in both if ia[k].get("score") != ib[k].get("score")]
    up = [k for k in changed if (ib[k].get("score") or 0) > (ia[k].get("score") or 0)]

    def snip(text: Any) -> str:
        return (str(text or "")[:100]).replace("\n", " ").replace("|", "\\|")

    lines = [f"# {ra['task']}: {ra['model']} (A) vs {rb['model']} (B)", "",
             (f"A: {a} ({ra['primary']} {fmt_value(ra['metrics'].get(ra['primary']))}); "
             f"B: {b} ({rb['primary']} {fmt_value(rb['metrics'].get(rb['primary']))})"), "",
             (f"{len(both)} items in both; {len(changed)} changed: {len(up)} up, {len(changed) - len(up)} down; "
             f"{len([k for k in ia if k not in ib])} only in A, {len([k for k in ib if k not in ia])} only in B."), ""]
    if changed:
        lines += ["| item | A | B | answer A | answer B |", "|---|---|---|---|---|"]
        for k in changed[:max_rows]:
            lines.append(f"| {k} | {ia[k].get('score')} | {ib[k].get('score')} | {snip(ia[k].get('answer'))} | "
                         f"{snip(ib[k].get('answer'))} |")
        if len(changed) > max_rows:
            lines.append(f"\n… {len(changed) - max_rows} more (use --max-rows).")
    return "\n".join(lines) + "\n"
