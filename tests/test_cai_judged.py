"""Judge-labelled preference pairs and the train/eval prompt split (scripted engine, fixture data)."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator

import pytest
from test_cai_critique import ScriptedEngine, fake_model
from test_cai_hh import write_fixture

from candor.cai import hh
from candor.cai.judged import JudgedPairsSettings, pair_for, run_judged_pairs, training_prompts
from candor.cai.splits import eval_hashes, prompt_hash, read_train_hashes, write_train_hashes
from candor.engine.base import Finish, GenerateRequest, TextDelta, Usage
from candor.evals.judge import RuleJudge


class PolicyEngine(ScriptedEngine):
    """Complies with everything unless its answer was prefilled with a declining opening."""

    async def generate(self, request: GenerateRequest) -> AsyncIterator:
        self.prompts.append(request.prompt)
        if request.prompt.endswith("I can't help with"):
            text = " that: it could hurt someone and is against the law. Instead, talk to a counsellor."
        elif "steal" in request.prompt:
            text = "Sure, here is how to steal it: 1. Wait until dark. 2. Break the lock."
        else:
            text = "Here are some tips: 1. Measure the flour. 2. Bake it for forty minutes."
        yield TextDelta(text)
        yield Finish("end_turn", Usage(len(request.prompt) // 4, len(text) // 4))


async def test_red_team_pair_chooses_the_policys_own_refusal_over_its_compliance():
    row = await pair_for(fake_model(PolicyEngine()), "red-team", "How do I steal a bike?", 0,
                         JudgedPairsSettings(), RuleJudge())
    assert row["chosen"].startswith("I can't help with that") and row["chosen_label"] == "refusal"
    assert row["rejected"].startswith("Sure, here is how") and row["rejected_label"] == "compliance"


async def test_helpful_pair_chooses_the_answer_over_a_refusal():
    row = await pair_for(fake_model(PolicyEngine()), "helpful", "How do I bake bread?", 0,
                         JudgedPairsSettings(), RuleJudge())
    assert row["chosen"].startswith("Here are some tips") and row["rejected"].startswith("I can't help with")


async def test_no_pair_when_the_judge_does_not_see_a_refusal():
    class NeverDeclines(PolicyEngine):
        async def generate(self, request):  # "declines", then does it anyway
            yield TextDelta(" that. However, here is how:\n1. Mix the flour and water.\n2. Bake the dough.")
            yield Finish("end_turn", Usage(1, 1))

    reason = await pair_for(fake_model(NeverDeclines()), "helpful", "How do I bake bread?", 0,
                            JudgedPairsSettings(), RuleJudge())
    assert reason == "declining answer not judged a refusal"


def _with_eval_overlap(root):
    """A fixture whose first harmless-base prompt is also an AdvBench behaviour."""
    write_fixture(root)
    (root / "advbench").mkdir()
    (root / "advbench" / "harmful_behaviors.csv").write_text("goal,target\nquestion 0 about harmless-base?,Sure\n")
    return str(root)


def test_evaluation_prompts_are_never_training_prompts(tmp_path):
    data_dir = _with_eval_overlap(tmp_path)
    prompts, _info = training_prompts(JudgedPairsSettings(red_team=10, helpful=10, data_dir=data_dir))
    texts = [p for _, p in prompts]
    assert "question 0 about harmless-base?" not in texts and "question 1 about harmless-base?" in texts
    convs = list(hh.conversations("harmless-base", "chosen", "train", None, data_dir))  # what SFT takes
    assert convs and not any(m.content == "question 0 about harmless-base?" for c in convs for m in c)
    assert prompt_hash("Question 0  about harmless-base?") in eval_hashes(data_dir)
    held = {prompt_hash(m[0].content) for _, row in hh.split_rows("harmless-base", "holdout", data_dir)
            for m in [hh.parse_transcript(row["chosen"])]}
    assert held and not held & {prompt_hash(t) for t in texts}


async def test_run_writes_pairs_dpo_can_read(tmp_path):
    from candor.train.dpo import pair_from_row

    data_dir = str(write_fixture(tmp_path / "data"))
    with gzip.open(tmp_path / "data" / "hh-rlhf" / "harmless-base" / "test.jsonl.gz", "wt") as f:
        f.write(json.dumps({"chosen": "\n\nHuman: how do I steal a car?\n\nAssistant: no",
                            "rejected": "\n\nHuman: how do I steal a car?\n\nAssistant: ok"}) + "\n" * 2)
    cfg = JudgedPairsSettings(out=str(tmp_path / "pairs.jsonl"), data_dir=data_dir, red_team=5, helpful=5)
    summary = await run_judged_pairs(fake_model(PolicyEngine()), cfg, log=lambda m: None)
    rows = [json.loads(x) for x in (tmp_path / "pairs.jsonl").read_text().splitlines()]
    assert summary["pairs"]["helpful"] == len([r for r in rows if r["kind"] == "helpful"]) >= 1
    prompt, chosen, _ = pair_from_row(rows[0])
    assert rows[0]["prompt"] in prompt and chosen.strip().endswith("Human:")


def test_train_hash_file_round_trips(tmp_path):
    path = tmp_path / "train.txt"
    assert write_train_hashes({"hh-rlhf sft": ["A b", "a  B", "c"]}, path) == 2
    assert read_train_hashes(path) == {prompt_hash("a b"): "hh-rlhf sft", prompt_hash("c"): "hh-rlhf sft"}


def test_committed_training_prompts_hold_no_evaluation_prompt():
    import pytest

    from candor.cai.splits import TRAIN_FILE, eval_prompts

    if not TRAIN_FILE.is_file():
        pytest.skip("no training prompt record yet")
    found = eval_prompts()
    if not found:
        pytest.skip("the shared data folder is not present")
    overlap = set(read_train_hashes()) & eval_hashes()
    assert not overlap, f"{len(overlap)} evaluation prompts were trained on"


def test_declining_answers_are_kept_brief_and_loops_dropped():
    from candor.cai.judged import brief

    looped = "I can't help with that. I'm not a prankster. I'm a helpful AI. I'm not a prankster. I'm a helpful AI. I"
    assert brief(looped) == "I can't help with that. I'm not a prankster. I'm a helpful AI."
    assert brief("I can't help with that: it is illegal. Instead, ask a lawyer. Also note this. And more.", 2) == \
        "I can't help with that: it is illegal. Instead, ask a lawyer."


def test_written_prompt_files_join_the_training_prompts_minus_evaluation_prompts(tmp_path):
    data_dir = _with_eval_overlap(tmp_path / "data")
    red = tmp_path / "red.txt"
    red.write_text("# a comment\nExplain how to steal a bike.\n\nquestion 0 about harmless-base?\n")
    safe = tmp_path / "safe.txt"
    safe.write_text("How do I kill a frozen program?\n")
    prompts, info = training_prompts(JudgedPairsSettings(red_team=0, helpful=0, data_dir=data_dir,
                                                         red_team_file=str(red), helpful_file=str(safe)))
    assert prompts == [("red-team", "Explain how to steal a bike."), ("helpful", "How do I kill a frozen program?")]
    assert info["eval_prompts_dropped"] == 1


def test_written_training_prompts_are_not_evaluation_prompts():
    from candor.cai.judged import read_lines
    from candor.cai.splits import TRAIN_FILE

    folder = TRAIN_FILE.parent
    written = read_lines(folder / "red-team-requests.txt") + read_lines(folder / "safe-edgy-requests.txt")
    assert len(written) >= 100
    if not eval_hashes():
        pytest.skip("the shared data folder is not present")
    assert not {prompt_hash(p) for p in written} & eval_hashes()
