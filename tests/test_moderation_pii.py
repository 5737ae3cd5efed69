"""Personal data: detection of each kind (and of look-alikes that are not), redaction of answers as
they stream and of stored conversations."""

from __future__ import annotations

import pytest

from candor.engine.base import Finish, TextDelta, Usage
from candor.errors import InvalidRequestError
from candor.moderation.pii import find, luhn_ok, redact, redact_stream, redact_targets

TEXT = ("Mail jane.doe@example.co.uk or call +44 20 7946 0958 or (415) 555-2671. Card 4111 1111 1111 1111, "
        "SSN 123-45-6789, NI AB 12 34 56 C. I live at 1600 Pennsylvania Avenue NW, and 221B Baker Street, Apt 2.")


def test_each_kind_is_found():
    kinds = [(f.kind, f.text) for f in find(TEXT)]
    assert kinds == [("email", "jane.doe@example.co.uk"), ("phone", "+44 20 7946 0958"), ("phone", "(415) 555-2671"),
                     ("card", "4111 1111 1111 1111"), ("national_id", "123-45-6789"),
                     ("national_id", "AB 12 34 56 C"), ("address", "1600 Pennsylvania Avenue NW"),
                     ("address", "221B Baker Street, Apt 2")]


@pytest.mark.parametrize("text", [
    "Card 4111 1111 1111 1112 fails the Luhn check.",
    "SSN 000-12-3456 and 666-12-3456 and 123-00-4567 were never issued.",
    "Order 12345678 shipped on 2024-05-06 at 10:30; it weighs 3.14159 kg.",
    "In 1969, 600 million people watched; version 1.2.3 came later.",
    "Write to support at example dot com.",
    "He walked 3 long roads home.",
])
def test_look_alikes_are_not_found(text):
    assert find(text) == []


def test_luhn():
    assert luhn_ok("79927398713") and not luhn_ok("79927398710")


def test_redact_replaces_each_finding_with_its_kind():
    assert redact(TEXT) == ("Mail [EMAIL] or call [PHONE] or [PHONE]. Card [CARD], SSN [NATIONAL_ID], NI [NATIONAL_ID]. "
                            "I live at [ADDRESS], and [ADDRESS].")
    assert redact(TEXT, ("email",)).startswith("Mail [EMAIL] or call +44 20 7946 0958")


async def test_stream_redaction_catches_numbers_split_across_deltas():
    answer = "Sure! You can reach our office at (415) 555-2671 any weekday, or write to jane.doe@example.com. " * 3

    async def events():
        for i in range(0, len(answer), 7):  # cut anywhere, inside the number and the address too
            yield TextDelta(answer[i:i + 7])
        yield Finish("end_turn", Usage(5, 50))

    out = [e async for e in redact_stream(events())]
    text = "".join(e.text for e in out if isinstance(e, TextDelta))
    assert text == redact(answer) and "555" not in text and "@" not in text
    assert isinstance(out[-1], Finish)


def test_redact_targets_setting():
    assert redact_targets({"CANDOR_PII_REDACT": "answers, stored"}) == {"answers", "stored"}
    assert redact_targets({}) == set()
    with pytest.raises(InvalidRequestError, match="CANDOR_PII_REDACT"):
        redact_targets({"CANDOR_PII_REDACT": "usage"})


async def test_answers_are_redacted_in_serving(monkeypatch):
    from test_moderation import PARAMS, ScriptedEngine, hub_with

    from candor.moderation.policy import Modes
    from candor.serving.generation import start_generation

    monkeypatch.setenv("CANDOR_PII_REDACT", "answers")
    engine = ScriptedEngine("Her number is (415) 555-2671 and her e-mail is jane.doe@example.com, as listed.")
    hub = hub_with(engine, Modes())  # moderation off, redaction on
    assert hub.moderator is not None
    gen = await start_generation(hub, "scripted", [{"role": "user", "content": "How do I reach Jane?"}], None, PARAMS)
    text, finish = await gen.collect()
    assert text == "Her number is [PHONE] and her e-mail is [EMAIL], as listed." and finish.stop_reason == "end_turn"
    monkeypatch.delenv("CANDOR_PII_REDACT")
    assert hub_with(engine, Modes()).moderator is None  # nothing asked for: no moderator at all


def test_stored_conversations_are_redacted(tmp_path):
    from candor.moderation.records import redact_stored
    from candor.store import Store
    from candor.store.models import ChatMessage, Conversation, User

    store = Store(f"sqlite:///{tmp_path / 'p.db'}")
    store.upgrade()
    with store.session() as session:
        user = User(username="ann", pseudonym="u-1")
        session.add(user)
        session.flush()
        conv = Conversation(user_id=user.id)
        session.add(conv)
        session.flush()
        session.add_all([ChatMessage(conversation_id=conv.id, role="user", content="I'm at ann@example.org"),
                         ChatMessage(conversation_id=conv.id, role="assistant", content="Noted, thanks.")])
    assert redact_stored(store) == 1
    with store.session() as session:
        contents = sorted(m.content for m in session.query(ChatMessage))
    assert contents == ["I'm at [EMAIL]", "Noted, thanks."]
    store.dispose()
