"""The `candor` command, driven as a subprocess as a user would."""

import json
import os
import subprocess

import pytest


def run(candor_bin, *args, stdin=None, env=None, check=False):
    result = subprocess.run([*candor_bin, *args], check=False, input=stdin, capture_output=True, text=True, timeout=300,
                            env={**os.environ, **(env or {})})
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_models_table_lists_registry_with_prices_and_presence(candor_bin):
    out = run(candor_bin, "models", check=True).stdout
    header, _, *rows = out.splitlines()
    for column in ("name", "weights", "adapter", "context", "max out", "$/MTok in", "$/MTok out", "present"):
        assert column in header
    instant = next(r for r in rows if r.startswith("candor-instant "))
    assert "1.63" in instant and "5.51" in instant and "8,192" in instant and instant.rstrip().endswith("yes")
    flagship = next(r for r in rows if r.startswith("candor-2 "))
    assert "11.02" in flagship and "32.68" in flagship and flagship.rstrip().endswith("no")


def test_models_json(candor_bin):
    records = json.loads(run(candor_bin, "models", "--json", check=True).stdout)
    assert {r["name"] for r in records} >= {"candor-instant", "candor-2"}


def test_complete_json_reports_stop_reason_and_usage(candor_bin):
    out = run(candor_bin, "complete", "What is the capital of France?", "--temperature", "0",
              "--max-tokens", "40", "--json", check=True).stdout
    result = json.loads(out)
    assert result["model"] == "candor-instant"
    assert result["stop_reason"] in ("end_turn", "max_tokens")
    assert result["usage"]["input_tokens"] > 5 and 0 < result["usage"]["output_tokens"] <= 40
    assert result["text"] and not result["text"].startswith(" ")


def test_complete_stop_sequence_and_max_tokens(candor_bin):
    stopped = json.loads(run(candor_bin, "complete", "Count from 1 to 20 with commas.", "--temperature", "0",
                             "--stop", "12", "--stop", "never-appears", "--max-tokens", "60", "--json",
                             check=True).stdout)
    assert stopped["stop_reason"] == "stop_sequence" and stopped["stop_sequence"] == "12"
    assert "12" not in stopped["text"] and "11" in stopped["text"]
    capped = json.loads(run(candor_bin, "complete", "Write a long essay about rivers.", "--temperature", "0",
                            "--max-tokens", "3", "--json", check=True).stdout)
    assert capped["stop_reason"] == "max_tokens" and capped["usage"]["output_tokens"] == 3


def test_complete_streams_plain_text(candor_bin):
    result = run(candor_bin, "complete", "Say hello.", "--temperature", "0", "--max-tokens", "8",
                 "--system", "You are friendly.", "--seed", "3", "--top-p", "0.9", "--top-k", "40", check=True)
    assert result.stdout.strip()
    assert "ready in" in result.stderr  # the load progress line


@pytest.mark.parametrize("args, message", [
    (["--model", "claude-9"], "known models: candor-2, candor-2-remote, candor-base, candor-base-cai"),
    (["--temperature", "1.5"], "temperature: range: 0..1"),
    (["--top-p", "2"], "top_p: range: 0..1"),
    (["--top-k", "-3"], "top_k: must be >= 0"),
    (["--max-tokens", "0"], "max_tokens: must be >= 1"),
    (["--max-tokens", "99999"], "99999 > 4096"),
])
def test_bad_input_exits_2_naming_the_field(candor_bin, args, message):
    result = run(candor_bin, "complete", "hi", *args)
    assert result.returncode == 2
    assert message in result.stderr


def test_empty_prompt_is_refused(candor_bin):
    result = run(candor_bin, "complete", "   ")
    assert result.returncode == 2 and "non-empty" in result.stderr


def test_missing_flagship_weights_name_the_setting(candor_bin, tmp_path):
    result = run(candor_bin, "complete", "hi", "--model", "candor-2", env={"CANDOR_FLAGSHIP_GGUF": ""})
    assert result.returncode == 1 and "CANDOR_FLAGSHIP_GGUF" in result.stderr
    missing = tmp_path / "absent.gguf"
    result = run(candor_bin, "complete", "hi", "--model", "candor-2", env={"CANDOR_FLAGSHIP_GGUF": str(missing)})
    assert result.returncode == 1 and str(missing) in result.stderr


def test_chat_repl_commands_and_transcript(candor_bin, tmp_path):
    transcript = tmp_path / "chat.md"
    script = "\n".join([
        "What is 2+2?",
        "/system You answer in one short sentence.",
        "/system",
        "Name a colour \\",
        "that is warm.",
        "/model claude-9",
        f"/save {transcript}",
        "/reset",
        '"""', "first line", "second line", '"""',
        "/exit",
    ]) + "\n"
    result = run(candor_bin, "chat", "--temperature", "0", "--max-tokens", "24", stdin=script, check=True)
    err = result.stderr
    assert "(system prompt set)" in err and "system: You answer in one short sentence." in err
    assert "known models:" in err  # a bad /model is reported and the chat goes on
    assert err.count("tokens/s") == 3  # stats after each of the three answers
    text = transcript.read_text()
    assert "**System:**" in text and "You answer in one short sentence." in text
    assert "What is 2+2?" in text and "Name a colour \nthat is warm." in text
    assert text.count("**Assistant:**") == 2  # saved before /reset and the third question


def test_purge_clears_old_moderation_text_with_old_conversations(candor_bin, tmp_path):
    import datetime as dt

    from candor.store import Store
    from candor.store.models import ModerationEvent, utcnow

    url = f"sqlite:///{tmp_path / 'purge.db'}"
    store = Store(url)
    store.upgrade()
    with store.session() as s:
        s.add_all([ModerationEvent(stage="input", action="block", category="weapons", score=0.9, threshold=0.5, text="old request",
                                   created_at=utcnow() - dt.timedelta(days=40)),
                   ModerationEvent(stage="input", action="flag", category="crime", score=0.7, threshold=0.5, text="new request")])
    result = run(candor_bin, "purge", "--days", "30", env={"CANDOR_DATABASE_URL": url}, check=True)
    assert "the text of 1 moderation decisions" in result.stdout
    with store.session() as s:
        kept = {e.category: e.text for e in s.query(ModerationEvent)}
    assert kept == {"weapons": None, "crime": "new request"}  # the decision stays, its old text goes
    store.dispose()
