"""Document blocks and citations through the official `anthropic` SDK against a real server and
the real embedded model (greedy, short answers)."""

from __future__ import annotations

import base64

import anthropic
import openai
import pytest
from docs_fixtures import encrypted_pdf, pdf
from test_api import running_server

FACTS = ["The lighthouse keeper was named Amelia Thornbury.", "She lit the lamp every evening at nine o'clock.",
         "The island had exactly forty-two goats.", "Ships from Valparaiso arrived every second Tuesday."]
NOTES = " ".join(FACTS)
GREEDY = {"temperature": 0}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from pathlib import Path

    from candor.config import settings

    home = tmp_path_factory.mktemp("home")  # a fresh embeddings cache: the first question really embeds
    shared = settings().models_dir  # the test session's model cache, shared rather than assembled again
    shared.mkdir(parents=True, exist_ok=True)
    (home / "models").symlink_to(Path(shared).resolve())
    with running_server(env={"CANDOR_HOME": str(home)}) as url:
        yield url


def text_doc(data: str, **extra) -> dict:
    return {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": data}, **extra}


def ask(client, *blocks, max_tokens=40, **kw):
    return client.messages.create(model="candor-instant", max_tokens=max_tokens, extra_body=GREEDY,
                                  messages=[{"role": "user", "content": list(blocks)}], **kw)


def test_text_document_answer_cites_a_verbatim_span(client):
    msg = ask(client, text_doc(NOTES, title="Island notes", citations={"enabled": True}),
              {"type": "text", "text": "What was the name of the lighthouse keeper?"})
    answer = "".join(b.text for b in msg.content)
    assert "Amelia Thornbury" in answer
    cited = [c for b in msg.content for c in (b.citations or [])]
    assert cited, msg.content
    for c in cited:
        assert c.type == "char_location" and c.document_index == 0 and c.document_title == "Island notes"
        assert NOTES[c.start_char_index:c.end_char_index] == c.cited_text and c.cited_text in FACTS
    assert any("Amelia Thornbury" in c.cited_text for c in cited)
    report = msg.model_extra["candor"]["documents"][0]
    assert report["mode"] == "whole" and report["kind"] == "text"


def test_pdf_document_cites_pages(client):
    data = base64.b64encode(pdf([["Meadows roll under a grey sky."], FACTS[2:]])).decode()
    msg = ask(client, {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": data},
                       "citations": {"enabled": True}},
              {"type": "text", "text": "How many goats did the island have?"})
    cited = [c for b in msg.content for c in (b.citations or [])]
    assert cited and all(c.type == "page_location" for c in cited)
    assert (cited[0].start_page_number, cited[0].end_page_number) == (2, 3)
    assert cited[0].cited_text == FACTS[2]


def test_content_document_cites_blocks(client):
    msg = ask(client, {"type": "document", "citations": {"enabled": True}, "source": {"type": "content", "content": [
        {"type": "text", "text": "Cats purr when they are content."},
        {"type": "text", "text": "The river Orva floods every April."}]}},
        {"type": "text", "text": "When does the river Orva flood?"})
    cited = [c for b in msg.content for c in (b.citations or [])]
    assert cited and cited[0].type == "content_block_location"
    assert (cited[0].start_block_index, cited[0].end_block_index) == (1, 2)
    assert cited[0].cited_text == "The river Orva floods every April."


def long_document(needle_at: int, paragraphs: int = 600) -> str:
    parts = [f"Meadow paragraph {i} talks about weather, tides and the colour of the distant hills in spring."
             for i in range(paragraphs)]
    parts[needle_at] = "The secret launch code of the observatory is PELICAN-7."
    return "\n\n".join(parts)


def test_long_document_is_retrieved_streamed_with_citations_and_indexed_once(client, server):
    doc = long_document(433)
    question = {"type": "text", "text": "What is the secret launch code of the observatory?"}
    whole = client.messages.count_tokens(model="candor-instant", messages=[
        {"role": "user", "content": [text_doc(doc), question]}]).input_tokens
    assert whole > 8192  # too long for the model's window: it must be retrieved
    with anthropic.Anthropic(api_key=client.api_key, base_url=server, max_retries=0).messages.create(
            model="candor-instant", max_tokens=40, extra_body=GREEDY, stream=True,
            messages=[{"role": "user", "content": [text_doc(doc, citations={"enabled": True}), question]}]) as raw:
        events = list(raw)
    deltas = [e.delta for e in events if e.type == "content_block_delta"]
    citations = [d.citation for d in deltas if d.type == "citations_delta"]
    assert citations and any("PELICAN-7" in c.cited_text for c in citations)
    for c in citations:
        assert doc[c.start_char_index:c.end_char_index] == c.cited_text
    start = events[0].message.model_extra["candor"]["documents"][0]
    assert start["mode"] == "retrieved" and start["index_cached"] is False and start["retrieval"] == "bm25+embeddings"
    assert any(p["start_char_index"] <= doc.index("PELICAN") < p["end_char_index"] for p in start["passages"])
    assert len(start["passages"]) < start["passages_total"]
    usage = next(e for e in events if e.type == "message_delta").usage
    assert usage.input_tokens < 8192 - 40

    with client.messages.stream(model="candor-instant", max_tokens=40, extra_body=GREEDY, messages=[
            {"role": "user", "content": [text_doc(doc, citations={"enabled": True}),
                                         {"type": "text", "text": "Which code launches the observatory?"}]}]) as s:
        final = s.get_final_message()
    again = final.model_extra["candor"]["documents"][0]
    assert again["index_cached"] is True  # the same text is not split or embedded again
    assert any(p["start_char_index"] <= doc.index("PELICAN") < p["end_char_index"] for p in again["passages"])


def test_documents_without_citations_and_token_counts(client):
    msg = ask(client, text_doc(NOTES), {"type": "text", "text": "How many goats did the island have?"})
    assert all(not getattr(b, "citations", None) for b in msg.content) and len(msg.content) == 1
    assert msg.model_extra["candor"]["documents"][0]["mode"] == "whole"
    q = [{"type": "text", "text": "How many goats?"}]
    bare = client.messages.count_tokens(model="candor-instant", messages=[{"role": "user", "content": q}])
    with_doc = client.messages.count_tokens(model="candor-instant",
                                            messages=[{"role": "user", "content": [text_doc(NOTES)] + q}])
    assert with_doc.input_tokens > bare.input_tokens + 30


def test_bad_documents_are_clear_400s(client):
    cases = [
        ({"type": "document", "source": {"type": "url", "url": "https://example.com/x.pdf"}},
         "messages.0.content.0.source.type: url sources are not supported"),
        ({"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                         "data": base64.b64encode(encrypted_pdf()).decode()}}, "encrypted"),
        ({"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                         "data": base64.b64encode(b"%PDF-1.4 broken").decode()}}, "not valid"),
        ({"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "   "}}, "no text"),
    ]
    for block, expected in cases:
        with pytest.raises(anthropic.BadRequestError) as info:
            ask(client, block, {"type": "text", "text": "Summarise."})
        assert expected in info.value.message
    with pytest.raises(anthropic.BadRequestError, match="all documents or on none"):
        ask(client, text_doc("a b c", citations={"enabled": True}), text_doc("d e f"),
            {"type": "text", "text": "Compare."})


def test_openai_file_parts_pdf_and_text(oai):
    data = base64.b64encode(pdf([["Meadows roll under a grey sky."], FACTS[2:]])).decode()
    question = {"type": "text", "text": "How many goats did the island have?"}
    r = oai.chat.completions.create(model="candor-instant", max_tokens=30, temperature=0, messages=[
        {"role": "user", "content": [{"type": "file", "file": {"file_data": f"data:application/pdf;base64,{data}",
                                                              "filename": "island.pdf"}}, question]}])
    answer = r.choices[0].message.content
    assert "42" in answer or "forty-two" in answer
    report = r.model_extra["candor"]["documents"][0]
    assert report["kind"] == "pdf" and report["mode"] == "whole" and report["title"] == "island.pdf"
    notes = base64.b64encode(NOTES.encode()).decode()
    r = oai.chat.completions.create(model="candor-instant", max_tokens=30, temperature=0, messages=[
        {"role": "user", "content": [{"type": "file", "file": {"file_data": notes, "filename": "notes.txt"}},
                                     {"type": "text", "text": "What was the name of the lighthouse keeper?"}]}])
    assert "Amelia" in r.choices[0].message.content
    with pytest.raises(openai.BadRequestError, match="file_data"):
        oai.chat.completions.create(model="candor-instant", max_tokens=5, messages=[
            {"role": "user", "content": [{"type": "file", "file": {}}, question]}])


def test_two_documents_replayed_turns_and_plain_streaming(client):
    pets = "Cats purr when they are content. Dogs wag their tails."
    msg = ask(client, text_doc(pets, title="Pets", citations={"enabled": True}),
              text_doc(NOTES, title="Island notes", citations={"enabled": True}),
              {"type": "text", "text": "What was the name of the lighthouse keeper?"})
    cited = [c for b in msg.content for c in (b.citations or [])]
    assert cited and all(c.document_index == 1 and c.document_title == "Island notes" for c in cited)
    assert [d["index"] for d in msg.model_extra["candor"]["documents"]] == [0, 1]
    # The SDK's own response content, citations and all, sent back as the assistant's turn.
    follow = client.messages.create(model="candor-instant", max_tokens=20, extra_body=GREEDY, messages=[
        {"role": "user", "content": [text_doc(NOTES, citations={"enabled": True}),
                                     {"type": "text", "text": "What was the name of the lighthouse keeper?"}]},
        {"role": "assistant", "content": [b.model_dump() for b in msg.content]},
        {"role": "user", "content": "Thank you. Say goodbye."}])
    assert follow.stop_reason in ("end_turn", "max_tokens") and follow.content
    with client.messages.stream(model="candor-instant", max_tokens=20, extra_body=GREEDY, messages=[
            {"role": "user", "content": [text_doc(NOTES), {"type": "text", "text": "How many goats?"}]}]) as s:
        pieces = list(s.text_stream)
        final = s.get_final_message()
    assert len(pieces) >= 2 and len(final.content) == 1 and not final.content[0].citations  # token by token
    assert final.model_extra["candor"]["documents"][0]["mode"] == "whole"


@pytest.mark.slow
def test_sdk_script_with_a_100k_token_document_and_a_pdf(client):
    """The issue's acceptance script: a 100K-token text document and a PDF, citations on."""
    doc = long_document(3100, paragraphs=4400)
    data = base64.b64encode(pdf([["Meadows roll under a grey sky."], FACTS])).decode()
    assert client.messages.count_tokens(model="candor-instant", messages=[
        {"role": "user", "content": [text_doc(doc), {"type": "text", "text": "x"}]}]).input_tokens >= 100_000
    msg = client.messages.create(model="candor-instant", max_tokens=40, extra_body=GREEDY, timeout=900, messages=[
        {"role": "user", "content": [
            text_doc(doc, title="Log", citations={"enabled": True}),
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": data},
             "title": "Island", "citations": {"enabled": True}},
            {"type": "text", "text": "What is the secret launch code of the observatory?"}]}])
    cited = [c for b in msg.content for c in (b.citations or [])]
    assert any(c.document_index == 0 and "PELICAN-7" in c.cited_text for c in cited), msg.content
    report = msg.model_extra["candor"]["documents"]
    assert report[0]["mode"] == "retrieved" and msg.usage.input_tokens < 8192
