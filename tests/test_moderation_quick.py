"""The quick read (candor.moderation.classifier.QuickRead): a 3-layer first pass that would let plainly
safe requests through without the full read. Measured and not shipped (README, Moderation), so these
test its logic with a made-up one: the shipped heads read every request in full, a cleared request is
never read in full, the guards that turn it off (a policy that acts on less evidence, `quick_read =
false`, parts not read), its storage, and the training forms `candor moderation quick-read` learns from."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from candor.errors import InvalidRequestError
from candor.moderation import dataset as ds
from candor.moderation import quick_read as qr
from candor.moderation.categories import CATEGORIES
from candor.moderation.classifier import (
    HEADS_FILE,
    Classifier,
    Heads,
    InputScore,
    ModerationUnavailableError,
    QuickRead,
)
from candor.moderation.policy import Modes, load_policy
from candor.moderation.service import Moderator


@pytest.fixture(scope="module")
def heads() -> Heads:
    return Heads.load(HEADS_FILE)


def made_up(heads: Heads, below: float = 0.01) -> QuickRead:
    """A quick read with no encoder updates and a constant perceptron, chosen under the packaged policy."""
    policy = load_policy(heads, modes=Modes())
    dim = heads.harm_w1.shape[0]
    return QuickRead(layers=3, lora={}, scale=1.0, w1=np.zeros((dim, 4), np.float32), b1=np.zeros(4, np.float32),
                     w2=np.zeros(4, np.float32), b2=-5.0, clear_below=(below,) * 4,
                     thresholds={**policy.input_thresholds, "output": policy.output_threshold})


def test_the_shipped_heads_read_every_request_in_full(heads):
    assert heads.quick_read is None
    assert not Moderator(load_policy(heads, modes=Modes("block", "off")), Classifier(heads)).quick


def test_a_policy_acting_on_less_evidence_reads_every_request_in_full(heads, tmp_path):
    """The quick read's thresholds hold only for policy thresholds at or above those it was chosen
    under: a deployment that lowers one (or turns parts or the quick read off) gets the full read."""
    quick = replace(heads, quick_read=made_up(heads))
    messages = '[messages]\ndefault = "No ({principle})."\n'
    custom = tmp_path / "policy.toml"
    for body, fits in [("", True), ("[input.thresholds]\nweapons = 0.9\n", True),
                       ("[input.thresholds]\nweapons = 0.1\n", False), ("[input.thresholds]\ndefault = 0.2\n", False),
                       ('[input.thresholds]\n"self-harm" = 0.1\n', False), ("[output]\nthreshold = 0.1\n", False),
                       ("[input]\nquick_read = false\n", False), ("[input]\nread_parts = false\n", False)]:
        custom.write_text(body + messages)
        policy = load_policy(quick, custom, Modes("block", "off"))
        assert policy.quick_read_fits(quick.quick_read) is fits, body
        assert Moderator(policy, Classifier(quick)).quick is fits, body
    assert not load_policy(heads, modes=Modes()).quick_read_fits(None)
    custom.write_text('[input]\nquick_read = "yes"\n' + messages)
    with pytest.raises(InvalidRequestError, match="input.quick_read must be true or false"):
        load_policy(heads, custom)


def test_a_cleared_request_is_not_read_in_full(heads):
    """Logic only: the requests the quick read scores under their length's threshold never reach the full read."""
    read = replace(made_up(heads), clear_below=(0.01, 0.02, 0.03, 0.04))
    clf = Classifier(replace(heads, quick_read=read))
    read_in_full: list[str] = []

    def embed(texts):
        read_in_full.extend(texts)
        return np.zeros((len(texts), heads.harm_w1.shape[0]), np.float32)

    long = " ".join(["We planted tomatoes and beans this spring."] * 20)  # over 128 word pieces
    probs = {"plain": 0.005, "unsure": 0.02, "also plain": 0.0, long: 0.035}
    scores = clf.request_scores(list(probs), embed=embed, quick=True,
                                quick_probs=lambda texts: np.array([probs[t] for t in texts]))
    assert read_in_full == ["unsure"]  # 0.02 is over a short request's 0.01; 0.035 under a long one's 0.04
    assert [s.cleared for s in scores] == [True, False, True, True]
    assert scores[0] == InputScore(0.005, {c: 0.0 for c in CATEGORIES}, "", cleared=True)
    assert read.limit(32) == 0.01 and read.limit(33) == 0.02 and read.limit(129) == 0.04
    read_in_full.clear()
    clf.request_scores(list(probs), embed=embed)  # without `quick`: all read in full (the long one in parts too)
    assert set(probs) <= set(read_in_full)


def test_the_quick_read_travels_in_the_heads_file(heads, tmp_path):
    quick = made_up(heads)
    replace(heads, quick_read=quick).save(tmp_path / "h.npz")
    again = Heads.load(tmp_path / "h.npz").quick_read
    assert again is not None and again.clear_below == quick.clear_below and again.thresholds == quick.thresholds
    assert again.lengths == quick.lengths and np.array_equal(again.w1, quick.w1) and again.b2 == quick.b2
    for bad in (replace(quick, thresholds={"output": 0.5}), replace(quick, clear_below=(0.1,))):
        replace(heads, quick_read=bad).save(tmp_path / "bad.npz")
        with pytest.raises(ModerationUnavailableError, match="quick read"):
            Heads.load(tmp_path / "bad.npz")


def test_training_forms_are_seeded_and_keep_their_labels():
    examples = [ds.Example(str(i), "t", f"safe request number {i}.", 0) for i in range(20)]
    examples += [ds.Example("h", "t", "how do i build a pipe bomb", 1, "weapons")]
    longs = ["I have a garden. It has tomatoes in it. I water it daily. What should I plant next to them?"]
    one, two = (qr.augmented(examples, longs, "validation", seed=0) for _ in range(2))
    assert one == two
    assert {i.form for i in one} == {"plain", "long", "wrapped", "run", "inserted"}
    for item in one:
        assert item.harmful == int("pipe bomb" in item.text), item
    # each range of lengths gets the lowest score of its harmful requests the full read flags
    harmful, safe = qr.Item("a", 1, "plain"), qr.Item("b", 0, "plain")
    limits = qr.clear_below(np.array([0.3, 0.1, 0.05, 0.4, 0.2]), [10, 20, 20, 300, 300],
                            [harmful, harmful, safe, harmful, harmful], [True, True, True, True, False], (32, 128))
    assert limits == (0.1, 0.1, 0.4)  # (32, 128] has none: the lowest of all
    assert qr.measured(np.array([0.05, 0.3]), np.array([0.1, 0.1]), [harmful, safe], [True, False]) == {
        "plain": {"lost": 1, "flagged_harmful": 1, "safe_cleared": 0.0, "safe": 1}}
