"""The runner (resume, config, outputs), the report card, --diff, and the CLI's input checks."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from fixtures.evals import data as eval_data
from fixtures.evals.fake_engine import fake_model

from candor.cli import main
from candor.evals import task_class
from candor.evals.data import Data
from candor.evals.report import diff_runs, write_report
from candor.evals.runner import RunConflictError, RunOptions, run_task
from candor.evals.task import make_config

FIXTURES = eval_data.folder()  # written at test time by tests/fixtures/evals/data.py


def gsm8k(**options):
    cls = task_class("gsm8k")
    return cls(make_config(cls.Config, {k: str(v) for k, v in options.items()}), Data(FIXTURES))


def always(text):
    return lambda prompt: text


async def test_results_files_and_resume(tmp_path):
    model = fake_model(always("So 14. The answer is 14."))
    first = await run_task(gsm8k(shots=1), model, RunOptions(out=tmp_path, limit=2, progress=False))
    folder = tmp_path / "fake" / "gsm8k"
    assert {p.name for p in folder.iterdir()} == {"config.json", "items.jsonl", "results.json"}
    config = json.loads((folder / "config.json").read_text())
    assert config["task_config"] == {"shots": 1, "max_tokens": 256, "temperature": 0.0, "last_number_fallback": True}
    assert config["model"]["kind"] == "in-process" and config["seed"] == 1234 and config["limit"] == 2
    saved = json.loads((folder / "results.json").read_text())
    assert saved["metrics"]["accuracy"]["value"] == 0.5 and set(saved["metrics"]["accuracy"]) >= {"ci_low", "ci_high"}
    assert saved["timing"]["items_per_second"] > 0 and first["n_items"] == 2
    record = json.loads((folder / "items.jsonl").read_text().splitlines()[0])
    assert set(record) >= {"id", "source", "prompt", "answer", "score", "seconds"}
    calls = len(model.loaded.engine.calls)
    # A larger limit with the same seed keeps the two items done and asks only the new one.
    again = await run_task(gsm8k(shots=1), model, RunOptions(out=tmp_path, limit=3, progress=False))
    assert len(model.loaded.engine.calls) == calls + 1 and again["n_items"] == 3


async def test_an_interrupted_run_resumes_where_it_stopped(tmp_path):
    seen = []

    def flaky(prompt):
        seen.append(prompt)
        if len(seen) == 2:
            raise RuntimeError("power cut")
        return "The answer is 14."

    with pytest.raises(RuntimeError, match="power cut"):
        await run_task(gsm8k(), fake_model(flaky), RunOptions(out=tmp_path, progress=False))
    lines = (tmp_path / "fake" / "gsm8k" / "items.jsonl").read_text().splitlines()
    assert len(lines) == 1
    model = fake_model(always("The answer is 14."))
    results = await run_task(gsm8k(), model, RunOptions(out=tmp_path, progress=False))
    assert len(model.loaded.engine.calls) == 2 and results["n_items"] == 3


async def test_a_different_config_is_refused_unless_fresh(tmp_path):
    model = fake_model(always("The answer is 14."))
    await run_task(gsm8k(shots=1), model, RunOptions(out=tmp_path, limit=1, progress=False))
    with pytest.raises(RunConflictError, match="task_config"):
        await run_task(gsm8k(shots=2), model, RunOptions(out=tmp_path, limit=1, progress=False))
    result = await run_task(gsm8k(shots=2), model, RunOptions(out=tmp_path, limit=1, fresh=True, progress=False))
    assert result["config"]["task_config"]["shots"] == 2


async def test_prompts_can_be_kept_out_and_answers_rescored(tmp_path):
    model = fake_model(always("The answer is 14."))
    await run_task(gsm8k(), model, RunOptions(out=tmp_path, store_prompts=False, progress=False))
    path = tmp_path / "fake" / "gsm8k" / "items.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert all(r["prompt"] is None and len(r["prompt_sha256"]) == 64 for r in records)
    path.write_text("".join(json.dumps({**r, "score": 0.0}) + "\n" for r in records))
    calls = len(model.loaded.engine.calls)
    results = await run_task(gsm8k(), model, RunOptions(out=tmp_path, store_prompts=False, rescore=True,
                                                        progress=False))
    assert results["metrics"]["accuracy"]["value"] == pytest.approx(1 / 3)
    assert len(model.loaded.engine.calls) == calls


@pytest.fixture
async def two_runs(tmp_path):
    out = tmp_path / "runs"
    for label, text in (("fake-a", "The answer is 14."), ("fake-b", "The answer is 3750.")):
        model = fake_model(always(text), label=label)
        await run_task(gsm8k(), model, RunOptions(out=out, progress=False))
        cls = task_class("long-context")
        task = cls(make_config(cls.Config, {"lengths": "256,512", "depths": "0,1"}), Data(FIXTURES))
        await run_task(task, fake_model(always("1234567"), label=label), RunOptions(out=out, progress=False))
    return out


async def test_report_card_markdown_and_self_contained_html(two_runs, tmp_path):
    md, page = write_report([two_runs], tmp_path / "card")
    text = md.read_text()
    assert "| gsm8k | accuracy |" in text and "fake-a" in text and "fake-b" in text
    assert "88.0%" in text and "85.2%" in text  # Claude 2 and Claude 1.3 reference columns
    assert "(../runs/fake-a/gsm8k/results.json)" in text
    assert (tmp_path / "card" / "report_files" / "long-context-fake-a.png").exists()
    html = page.read_text()
    assert "data:image/png;base64," in html and "src='report_files" not in html
    assert 'href="../runs/fake-b/long-context/results.json"' in html


async def test_diff_lists_changed_items(two_runs):
    text = diff_runs(two_runs / "fake-a" / "gsm8k", two_runs / "fake-b" / "gsm8k")
    assert "3 items in both; 2 changed: 1 up, 1 down" in text
    assert "| gsm8k-1 | 0.0 | 1.0 |" in text
    cli = CliRunner().invoke(main, ["report", "--diff", str(two_runs / "fake-a" / "gsm8k"),
                                    str(two_runs / "fake-b" / "gsm8k")])
    assert cli.exit_code == 0 and "2 changed" in cli.output


def test_cli_checks_input_before_loading_anything():
    runner = CliRunner()
    listed = runner.invoke(main, ["eval", "--list"])
    assert listed.exit_code == 0 and "humaneval:" in listed.output and "timeout_s" in listed.output
    for args, message in ((["eval", "nosuch"], "unknown task 'nosuch'"),
                          (["eval", "gsm8k", "-o", "colour=red"], "no task being run has a setting 'colour'"),
                          (["eval", "gsm8k", "-o", "shots=many"], "shots: expected a int"),
                          (["eval", "gsm8k", "--limit", "nosuch=3"], "unknown task 'nosuch'"),
                          (["eval", "gsm8k", "--limit", "0"], "limit: must be >= 1"),
                          (["eval", "gsm8k", "--model", "nosuch"], "unknown model 'nosuch'"),
                          (["eval", "gsm8k", "--model", "candor-instant+nope"], "unknown system preset"),
                          (["report"], "name at least one run folder")):
        result = runner.invoke(main, args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)


def test_data_folder_setting_and_download(tmp_path, monkeypatch):
    import hashlib

    from candor.errors import CandorError
    from candor.evals import data

    monkeypatch.setenv("CANDOR_DATA_DIR", str(FIXTURES))
    assert Data().roots[0] == FIXTURES
    assert Data().find("humaneval", "HumanEval.jsonl.gz").name == "HumanEval.jsonl.gz"
    with pytest.raises(data.DataNotFoundError, match="candor eval --download xstest"):
        Data(tmp_path).find("xstest", "xstest_prompts.csv")
    # A download from the set's home (here a file:// URL standing in for GitHub) is checked and cached.
    source = FIXTURES / "gsm8k" / "test.jsonl"
    good = data.DataSet("https://example.org", "MIT", {"test.jsonl": source.as_uri()},
                        {"test.jsonl": hashlib.sha256(source.read_bytes()).hexdigest()})
    monkeypatch.setitem(data.SETS, "gsm8k", good)
    folder = data.download("gsm8k", tmp_path, log=lambda message: None)
    assert (folder / "test.jsonl").read_bytes() == source.read_bytes()
    assert len(Data(tmp_path).jsonl("gsm8k", "test.jsonl")) == 3
    monkeypatch.setitem(data.SETS, "gsm8k", data.DataSet("x", "MIT", good.files, {"test.jsonl": "0" * 64}))
    with pytest.raises(CandorError, match="differs from the expected"):
        data.download("gsm8k", tmp_path / "again", log=lambda message: None)


async def test_report_names_a_models_runs_made_without_its_loop_guard(two_runs, tmp_path):
    """A model whose runs differ in decoding (some recorded a loop guard, some none) says which
    runs lack it, whichever run the card reads first."""
    import json

    results = two_runs / "fake-a" / "gsm8k" / "results.json"  # the card reads each run's config there
    data = json.loads(results.read_text())
    data["config"]["model"]["loop_guard"] = {"dry_multiplier": 0.8, "repeat_penalty": 1.1}
    results.write_text(json.dumps(data))
    md, _ = write_report([two_runs], tmp_path / "card")
    row = next(line for line in md.read_text().splitlines() if line.startswith("| **fake-a**"))
    assert "loop guard: dry_multiplier 0.8, repeat_penalty 1.1 (runs without it: long-context)" in row
    assert "loop guard" not in next(line for line in md.read_text().splitlines() if line.startswith("| **fake-b**"))
