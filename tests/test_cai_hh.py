"""hh-rlhf parsing, prompts and pairs from a small fixture folder; agreement with a fake judge."""

from __future__ import annotations

import gzip
import json

import pytest
from test_cai_critique import ScriptedEngine, fake_model

from candor.cai import hh
from candor.cai.feedback import measure_agreement, wilson
from candor.chat.render import Message


def write_fixture(root, n=8):
    for subset in hh.SUBSETS:
        folder = root / "hh-rlhf" / subset
        folder.mkdir(parents=True)
        rows = []
        for i in range(n):
            ctx = f"\n\nHuman: question {i} about {subset}?\n\nAssistant: Which part?\n\nHuman: all of it {i}"
            rows.append({"chosen": ctx + f"\n\nAssistant: a good answer {i}",
                         "rejected": ctx + f"\n\nAssistant: a bad answer {i}"})
        with gzip.open(folder / "test.jsonl.gz", "wt") as f:
            f.write("\n".join(json.dumps(r) for r in rows) + "\n")
    return root


@pytest.fixture
def data_dir(tmp_path):
    return str(write_fixture(tmp_path))


def test_parse_transcript_merges_and_splits_turns():
    msgs = hh.parse_transcript("\n\nHuman: hi\n\nAssistant: hello\n\nAssistant: again\n\nHuman:what?")
    assert msgs == [Message("user", "hi"), Message("assistant", "hello\n\nagain"), Message("user", "what?")]


def test_prompts_pairs_and_conversations(data_dir):
    prompts = hh.first_human_turns("harmless-base", "train", None, data_dir)
    assert prompts == [f"question {i} about harmless-base?" for i in range(4)]  # half held out in fixtures
    pairs = hh.pairs("harmless-base", "holdout", None, data_dir)
    assert [p.index for p in pairs] == [4, 5, 6, 7]
    assert pairs[0].chosen == "a good answer 4" and pairs[0].context[-1] == Message("user", "all of it 4")
    convs = list(hh.conversations("helpful-base", "chosen", "train", 2, data_dir))
    assert len(convs) == 2 and convs[0][-1] == Message("assistant", "a good answer 0")


def test_read_prompts_formats(tmp_path):
    (tmp_path / "p.txt").write_text("one\n\ntwo\n")
    (tmp_path / "p.jsonl").write_text('{"prompt": "a"}\n"b"\n{"chosen": "\\n\\nHuman: c\\n\\nAssistant: d"}\n')
    assert hh.read_prompts(tmp_path / "p.txt") == ["one", "two"]
    assert hh.read_prompts(tmp_path / "p.jsonl") == ["a", "b", "c"]


async def test_agreement_counts_human_chosen_preferences(data_dir):
    good = await measure_agreement(fake_model(ScriptedEngine(prefers="good")), pairs=10, data_dir=data_dir)
    assert good["pairs"] == 4 and good["agreement"] == 1.0 and good["mean_p_chosen"] > 0.7
    bad = await measure_agreement(fake_model(ScriptedEngine(prefers="bad")), pairs=10, data_dir=data_dir)
    assert bad["agreement"] == 0.0
    low, high = wilson(50, 100)
    assert low < 0.5 < high


async def test_principle_ensemble_asks_each_principle_in_both_orders_and_chat_wraps_the_question():
    import random as _random

    from candor.cai.feedback import compare, principles_for
    from candor.constitution import load_constitution

    engine = ScriptedEngine(prefers="good")
    first, more = principles_for(load_constitution(), _random.Random(1), 3)
    assert len({p.id for p in [first, *more]}) == 3
    scores = await compare(fake_model(engine), [Message("user", "q")], "a good answer", "a bad one", first, "",
                           True, True, more)
    assert len(engine.prompts) == 6 and scores["p_first"] > 0.5
    assert all(p.startswith("\n\nHuman: Consider") and p.endswith("\n\nAssistant: The answer is: (")
               for p in engine.prompts)
