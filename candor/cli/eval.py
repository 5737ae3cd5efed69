"""`candor eval TASK… --model NAME`: run evaluations, in process or against an API endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import shlex
import sys
from pathlib import Path

import click

from candor.cli.common import handle_errors
from candor.errors import InvalidRequestError

DEPLOYED_URL = "a local candor serve with moderation on (candor eval --deployed)"
# The data sets each task reads (for --download).
TASK_DATA = {"gsm8k": ["gsm8k"], "humaneval": ["humaneval"], "mmlu": ["mmlu"], "mmlu-law": ["mmlu"],
             "mmlu-medicine": ["mmlu"], "truthfulqa-mc1": ["truthfulqa"], "bbq": ["bbq"],
             "harmlessness": ["advbench", "harmbench"], "over-refusal": ["xstest"], "long-context": [], "formats": [],
             "long-context-documents": [], "doc-qa": []}


def parse_options(pairs: tuple[str, ...], tasks: list[str]) -> dict[str, dict[str, str]]:
    """`KEY=VALUE` applies to every task with that setting, `TASK.KEY=VALUE` to one task (and is
    ignored when that task is not being run, so one set of options serves several commands)."""
    import dataclasses

    from candor.evals import task_class

    per_task: dict[str, dict[str, str]] = {t: {} for t in tasks}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise InvalidRequestError(f"expected KEY=VALUE or TASK.KEY=VALUE, got {pair!r}", field="option")
        target, _, name = key.rpartition(".")
        chosen = [target] if target else tasks
        if target and target not in per_task:
            task_class(target)  # an unknown task name is an error; a known one not being run is skipped
            continue
        takers = [t for t in chosen if name in {f.name for f in dataclasses.fields(task_class(t).Config)}]
        if not takers:
            raise InvalidRequestError(f"no task being run has a setting {name!r} (see candor eval --list)",
                                      field="option")
        for t in takers:
            per_task[t][name] = value
    return per_task


def parse_limits(values: tuple[str, ...], tasks: list[str]) -> dict[str, int | None]:
    """`--limit 20 --limit humaneval=10`: a default for every task and overrides for some."""
    default: int | None = None
    per_task: dict[str, int] = {}
    for value in values:
        name, sep, number = value.rpartition("=")
        if sep and name not in tasks:
            from candor.evals import task_class

            task_class(name)  # unknown names fail; a known task not being run is skipped
        try:
            n = int(number)
        except ValueError:
            raise InvalidRequestError(f"expected N or TASK=N, got {value!r}", field="limit") from None
        if n < 1:
            raise InvalidRequestError(f"must be >= 1, got {n}", field="limit")
        if sep and name in tasks:
            per_task[name] = n
        else:
            default = n
    return {t: per_task.get(t, default) for t in tasks}


def list_tasks() -> None:
    from candor.evals import TASKS, task_class
    from candor.evals.task import config_fields

    for name in TASKS:
        cls = task_class(name)
        click.echo(f"{name}: {cls.description} (headline: {cls.primary})")
        for field, default, help_text in config_fields(cls.Config):
            click.echo(f"    {field} = {default!r}: {help_text}")


@click.command("eval")
@click.argument("tasks", nargs=-1)
@click.option("--model", "models", multiple=True,
              help="Registry name, or NAME+PRESET for a system-prompt variant (e.g. candor-instant+hhh); "
                   "with --endpoint, the remote model's name. Repeat to compare models.")
@click.option("--endpoint", default=None, help="Base URL of an Anthropic- or OpenAI-compatible API.")
@click.option("--api-key", default=None, envvar="CANDOR_EVAL_API_KEY", help="Key for --endpoint.")
@click.option("--api", type=click.Choice(["anthropic", "openai"]), default="anthropic", show_default=True,
              help="Which API the endpoint speaks.")
@click.option("--limit", "limits", multiple=True,
              help="Items per task (a seeded sample): N for every task, TASK=N for one (repeatable).")
@click.option("--seed", type=int, default=1234, show_default=True, help="Sampling of items, shuffles, seeds.")
@click.option("--out", type=click.Path(file_okay=False), default="candor-evals", show_default=True,
              help="Folder for runs: OUT/MODEL/TASK/{config.json,items.jsonl,results.json}.")
@click.option("--data-dir", default=None, help="Data folder (default: $CANDOR_DATA_DIR, ../shared/data, "
                                               "$CANDOR_HOME/data).")
@click.option("-o", "--option", "options", multiple=True, help="Task setting KEY=VALUE or TASK.KEY=VALUE.")
@click.option("--concurrency", type=click.IntRange(min=1), default=None,
              help="Items in flight at once (default 1 in process, 4 for endpoints).")
@click.option("--context-window", type=int, default=None, help="The endpoint model's context window.")
@click.option("--fresh", is_flag=True, help="Start the runs over instead of resuming them.")
@click.option("--rescore", is_flag=True, help="Score stored answers again (after a judge changed).")
@click.option("--no-store-prompts", is_flag=True, help="Store a hash and the item's source, not prompt text.")
@click.option("--report", "report_dir", default=None, help="Also write the report card of these runs here.")
@click.option("--download", is_flag=True, help="Fetch the tasks' data sets into $CANDOR_HOME/data, then exit.")
@click.option("--list", "show_list", is_flag=True, help="List tasks and their settings, then exit.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.option("--unsafe-sandbox", is_flag=True,
              help="Run humaneval's model-written code even where its sandbox cannot isolate it (bubblewrap "
                   "missing or namespaces not allowed): limits only, NOT safe (same as CANDOR_UNSAFE_SANDBOX=1).")
@click.option("--models-file", default=None, help="Extra registry TOML (default: $CANDOR_MODELS_FILE).")
@click.option("--deployed", is_flag=True,
              help="Run through a local `candor serve` with moderation on (CANDOR_MODERATION=block unless set): "
                   "the deployed system, not the raw model; runs land under MODEL@deployed.")
@handle_errors
def eval_command(tasks, models, endpoint, api_key, api, limits, seed, out, data_dir, options, concurrency,
                 context_window, fresh, rescore, no_store_prompts, report_dir, download, show_list, quiet,
                 models_file, unsafe_sandbox, deployed):
    """Run evaluation TASKs (or 'all') on one or more models and write results as JSON."""
    from candor.evals import TASKS, task_class
    from candor.evals.task import make_config

    if unsafe_sandbox:
        import os

        from candor.evals.sandbox import UNSAFE_ENV

        os.environ[UNSAFE_ENV] = "1"  # read by the sandbox at every run; this process is the whole command

    if show_list:
        list_tasks()
        return
    # `all` over an endpoint leaves out the tasks that run Candor's own document path in process
    names = [n for n in TASKS if not (endpoint and getattr(task_class(n), "in_process_only", False))] \
        if "all" in tasks else list(dict.fromkeys(tasks))
    if not names:
        raise InvalidRequestError(f"name at least one task: {', '.join(TASKS)} or all", field="task")
    classes = {name: task_class(name) for name in names}
    if download:
        from candor.evals.data import download as fetch

        for set_name in dict.fromkeys(s for n in names for s in TASK_DATA.get(n, [])):
            click.echo(f"{set_name}: {fetch(set_name, Path(data_dir) if data_dir else None)}")
        return
    per_task = parse_options(options, names)
    limit_of = parse_limits(limits, names)
    configs = {name: make_config(classes[name].Config, per_task[name]) for name in names}  # fail before loading
    label_suffix = ""
    if deployed:
        if endpoint:
            raise InvalidRequestError("--deployed starts its own local server; leave out --endpoint",
                                      field="--deployed")
        from candor.cli.common import make_hub
        from candor.cli.deployed import SUFFIX, deployed_server

        models = models or (make_hub(models_file).registry.default_name(),)
        stack = contextlib.ExitStack()
        click.get_current_context().call_on_close(stack.close)  # the server stops when the command ends
        endpoint, api_key = stack.enter_context(deployed_server(models_file))
        label_suffix, concurrency = SUFFIX, concurrency or 1  # one model, one queue: no gain from more
    hub = None
    if not endpoint:
        from candor.cli.common import make_hub
        from candor.evals.models import split_spec

        hub = make_hub(models_file)
        models = models or (hub.registry.default_name(),)
        for spec in models:
            hub.registry.get(split_spec(spec)[0])  # unknown names fail here
    elif not models:
        raise InvalidRequestError("name the endpoint's model with --model", field="model")
    from candor.evals.runner import RunOptions

    run_options = RunOptions(out=Path(out), limit=None, seed=seed, store_prompts=not no_store_prompts,
                             concurrency=concurrency or (4 if endpoint else 1), fresh=fresh, rescore=rescore,
                             progress=not quiet, command=shlex.join(["candor"] + sys.argv[1:]))
    try:
        folders = asyncio.run(_run_all(names, classes, configs, models, endpoint, api, api_key, context_window,
                                       data_dir, run_options, limit_of, hub, label_suffix))
    except KeyboardInterrupt:
        click.echo("\ninterrupted: run the same command again to resume", err=True)
        sys.exit(130)
    if report_dir:
        from candor.evals.report import write_report

        paths = write_report(folders, Path(report_dir))
        click.echo(f"report: {', '.join(str(p) for p in paths)}")


async def _run_all(names, classes, configs, models, endpoint, api, api_key, context_window, data_dir, run_options,
                   limit_of, hub, label_suffix="") -> list[Path]:
    import dataclasses

    from candor.evals.data import Data
    from candor.evals.models import open_model
    from candor.evals.report import summary_line
    from candor.evals.runner import run_dir, run_task

    folders = []
    try:
        for spec in models:
            model = await open_model(spec, endpoint=endpoint, api=api, api_key=api_key, hub=hub,
                                     context_window=context_window)
            model.label += label_suffix
            if label_suffix:  # the deployed server's port changes from run to run; resuming must not care
                model.describe = functools.partial(dict, model.describe(), url=DEPLOYED_URL)  # type: ignore[method-assign]
            try:
                for name in names:
                    task = classes[name](configs[name], Data(data_dir))
                    results = await run_task(task, model, dataclasses.replace(run_options, limit=limit_of[name]))
                    folder = run_dir(run_options.out, model.label, name)
                    folders.append(folder)
                    click.echo(summary_line(results, folder))
            finally:
                await model.close()
    finally:
        if hub is not None:
            await hub.close()
    return folders
