"""The documents package with real extractors, real BM25 and real MiniLM embeddings."""

from __future__ import annotations

import asyncio

import pytest
from docs_fixtures import docx, docx_bomb, encrypted_pdf, pdf, scanned_pdf

from candor.documents.blocks import DocumentInput, read_documents
from candor.documents.cite import Citer, content_blocks, segments_of
from candor.documents.errors import DocumentError, DocumentTooLargeError
from candor.documents.extract import Limits, extract, from_blocks, from_text
from candor.documents.index import IndexCache
from candor.documents.pack import pack
from candor.documents.passages import split

FACTS = ["The lighthouse keeper was named Amelia Thornbury.", "She lit the lamp every evening at nine o'clock.",
         "The island had exactly forty-two goats.", "Ships from Valparaiso arrived every second Tuesday."]


def filler(n: int, seed: str = "Meadow") -> list[str]:
    return [f"{seed} paragraph {i} talks about weather, tides and the colour of the distant hills in spring."
            for i in range(n)]


def test_pdf_keeps_pages_and_verbatim_text():
    data = pdf([filler(3) + [FACTS[0]], filler(2, "Harbour"), [FACTS[2]]])
    doc = extract(data, "application/pdf")
    assert doc.kind == "pdf" and [u.number for u in doc.units] == [1, 2, 3]
    page3 = doc.units[2]
    assert FACTS[2] in doc.text[page3.start:page3.end]
    passages = split(doc)
    assert [p.unit for p in passages][-1] == 3
    for p in passages:  # every passage lies inside its page, every sentence inside its passage
        unit = next(u for u in doc.units if u.number == p.unit)
        assert unit.start <= p.start < p.end <= unit.end
        assert all(p.start <= s.start < s.end <= p.end for s in p.sentences)
    sentences = [doc.text[s.start:s.end] for p in passages for s in p.sentences]
    assert FACTS[0] in sentences


def test_pdf_refusals_name_the_problem():
    with pytest.raises(DocumentError, match="encrypted"):
        extract(encrypted_pdf(), "application/pdf")
    with pytest.raises(DocumentError, match="no text layer.*OCR"):
        extract(scanned_pdf(), "application/pdf")
    good = pdf([["Some text."]])
    with pytest.raises(DocumentError, match="not valid"):
        extract(good[: len(good) // 3], "application/pdf")
    with pytest.raises(DocumentError, match="not valid"):
        extract(b"hello, not a pdf", "application/pdf")
    with pytest.raises(DocumentTooLargeError, match="3 pages, over the limit of 2"):
        extract(pdf([["a."], ["b."], ["c."]]), "application/pdf", limits=Limits(max_pages=2))
    with pytest.raises(DocumentTooLargeError) as info:
        extract(good, "application/pdf", limits=Limits(max_bytes=100))
    assert info.value.status_code == 413


def test_docx_text_and_tables_and_zip_bombs():
    doc = extract(docx(["First paragraph.", "Second one."], [["Name", "Age"], ["Ada", "36"]]), None, "cv.docx")
    assert doc.kind == "docx" and doc.text == "First paragraph.\nSecond one.\nName | Age\nAda | 36"
    bomb = docx_bomb(24 * 1024 * 1024)
    with pytest.raises(DocumentTooLargeError, match="inflates .*zip bomb"):
        extract(bomb, "application/vnd.openxmlformats-officedocument.wordprocessingml.document")
    with pytest.raises(DocumentTooLargeError, match="unpack to .*zip bomb"):
        extract(bomb, None, "x.docx", limits=Limits(max_unpacked=10 * 1024 * 1024, max_ratio=10**6))
    with pytest.raises(DocumentError, match="not a valid zip"):
        extract(b"PK\x03\x04broken", None, "x.docx")


def test_html_markdown_csv_text_and_unsupported():
    html = extract(b"<html><head><title>T</title><style>p{}</style></head><body><p>Hello <b>bold</b> world."
                   b"</p><script>evil()</script><table><tr><td>a</td><td>b</td></tr></table></body></html>",
                   "text/html")
    assert html.text == "T\nHello bold world.\na | b"
    md = b"# Title\r\n\r\nSome *text*."
    assert extract(md, None, "notes.md").text == md.decode()  # verbatim, CRLF kept
    assert extract(b'a,b\n1,"2"\n', "text/csv").kind == "csv"
    with pytest.raises(DocumentError, match="CSV could not be parsed"):
        extract(b'a,"b\n', "text/csv")
    with pytest.raises(DocumentError, match="unsupported document type 'image/png'"):
        extract(b"\x89PNG....", "image/png")
    with pytest.raises(DocumentError, match="not valid UTF-8"):
        extract(b"caf\xe9 au lait", "text/plain")
    with pytest.raises(DocumentError, match="no text"):
        from_text("  \n ")
    with pytest.raises(DocumentError, match="binary"):
        extract(b"abc\x00def", "text/plain")


def test_document_blocks_are_validated():
    def read(block, role="user"):
        return read_documents([(role, [block, {"type": "text", "text": "q"}])])

    [d] = read({"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "Hi there."},
                "title": "T", "citations": {"enabled": True}})
    assert d.citations and d.citation_type == "char_location" and d.title == "T"
    with pytest.raises(DocumentError, match=r"messages\.0\.content\.0\.source\.type: url sources are not supported"):
        read({"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}})
    with pytest.raises(DocumentError, match="source.data: is not valid base64"):
        read({"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "%%%"}})
    with pytest.raises(DocumentError, match="only in user messages"):
        read({"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "x"}}, "assistant")
    with pytest.raises(DocumentError, match="image blocks are not supported"):
        read({"type": "document", "source": {"type": "content", "content": [{"type": "image", "source": {}}]}})
    with pytest.raises(DocumentError, match="all documents or on none"):
        read_documents([("user", [
            {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "a"},
             "citations": {"enabled": True}},
            {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "b"}}])])


def _inputs(text: str, citations: bool = True) -> list[DocumentInput]:
    return [DocumentInput(0, 0, from_text(text), "Notes", None, citations)]


def test_retrieval_finds_the_needle_and_the_index_is_cached(tmp_path):
    paragraphs = filler(300)
    paragraphs[217] = "The secret launch code of the observatory is PELICAN-7."
    text = "\n\n".join(paragraphs)
    cache = IndexCache(cache_dir=tmp_path)
    docs = _inputs(text)

    async def count(t: str) -> int:
        return len(t) // 4 + 1

    async def measure(prefixes: dict[int, str]) -> int:
        return sum(len(t) for t in prefixes.values()) // 4 + 20

    placed = asyncio.run(pack(docs, "What is the launch code of the observatory?", 2000, measure, count, cache, 600))
    [pl] = placed
    assert pl.mode == "retrieved" and not pl.cached and 0 < len(pl.passages) < len(pl.index.passages)
    assert any("PELICAN-7" in pl.index.text(p) for p in pl.passages)
    assert pl.index.dense  # the MiniLM encoder was used, not BM25 alone
    embedded = cache.stats.embedded
    assert embedded == len(pl.index.passages)
    again = asyncio.run(pack(docs, "Which code launches the observatory?", 2000, measure, count, cache, 600))
    assert again[0].cached and cache.stats.embedded == embedded  # a second question embeds nothing
    fresh = IndexCache(cache_dir=tmp_path)  # a restarted server reads the vectors back from disk
    asyncio.run(pack(docs, "launch code?", 2000, measure, count, fresh, 600))
    assert fresh.stats.embedded == 0 and fresh.stats.built == 1
    small = asyncio.run(pack(_inputs("A short note."), "q", 2000, measure, count, cache))
    assert small[0].mode == "whole"


def test_citations_are_verbatim_spans_that_support_the_answer():
    from candor.embeddings import encoder

    text = " ".join(filler(3)) + " " + " ".join(FACTS)
    docs = _inputs(text)
    placed = asyncio.run(pack(docs, "q", 10_000, _measure_len, _count_len, IndexCache()))
    citer = Citer(placed, encoder())
    answer = "The keeper was Amelia Thornbury. I like cheese. The island had forty-two goats in total."
    segments = citer.segments(answer)
    assert "".join(s.text for s in segments) == answer
    cited = [s for s in segments if s.citations]
    assert [s.citations[0]["cited_text"] for s in cited] == [FACTS[0], FACTS[2]]
    c = cited[0].citations[0]
    assert c["type"] == "char_location" and text[c["start_char_index"]:c["end_char_index"]] == c["cited_text"]
    assert not segments[1].citations  # "I like cheese." is not in the document
    [wrong] = citer.segments("The island had exactly thirty goats.")
    assert not wrong.citations  # a sentence with a number the document sentence lacks is not supported by it
    [renamed] = citer.segments("The lighthouse keeper was named Amelia Blackwood.")
    assert not renamed.citations  # nor one naming someone the document sentence does not name
    [spelled] = citer.segments("The island had exactly 42 goats.")
    assert spelled.citations[0]["cited_text"] == FACTS[2]  # 42 is what "forty-two" states
    blocks = content_blocks(segments)
    assert "".join(b["text"] for b in blocks) == answer and "citations" not in blocks[1]
    streamed = Citer(placed, encoder())
    pieces = [s for i in range(0, len(answer), 5) for s in streamed.feed(answer[i:i + 5])] + list(streamed.flush())
    assert [(s.text, s.citations) for s in pieces] == [(s.text, s.citations) for s in segments]


def test_content_and_pdf_citation_kinds():
    blocks = from_blocks(["Cats purr when content.", "The river Orva floods every April."])
    d = DocumentInput(0, 0, blocks, None, None, True)
    placed = asyncio.run(pack([d], "q", 10_000, _measure_len, _count_len, IndexCache()))
    [seg] = Citer(placed).segments("The river Orva floods every April.")
    assert seg.citations[0] == {"type": "content_block_location", "cited_text": "The river Orva floods every April.",
                                "document_index": 0, "document_title": None, "file_id": None,
                                "start_block_index": 1, "end_block_index": 2}
    doc = extract(pdf([filler(2), [FACTS[3]]]), "application/pdf")
    d = DocumentInput(0, 0, doc, "Schedule", None, True, "file_abc")
    placed = asyncio.run(pack([d], "q", 10_000, _measure_len, _count_len, IndexCache()))
    [seg] = Citer(placed).segments("Ships from Valparaiso arrived every second Tuesday.")
    c = seg.citations[0]
    assert (c["type"], c["start_page_number"], c["end_page_number"], c["file_id"]) == ("page_location", 2, 3, "file_abc")
    assert c["cited_text"] == FACTS[3]


def test_segments_join_back():
    text = "One. Two!  Three?\n\nFour\n- item\n- item"
    assert "".join(segments_of(text)) == text and len(segments_of(text)) == 6


async def _count_len(t: str) -> int:
    return len(t) // 4 + 1


async def _measure_len(prefixes: dict[int, str]) -> int:
    return sum(len(t) for t in prefixes.values()) // 4 + 20


def test_an_edit_changes_only_nearby_passages_and_reuses_vectors():
    sentences = [f"Line {i} notes that the {['north', 'south', 'east'][i % 3]} field had {i % 7} sheep today."
                 for i in range(400)]
    before = " ".join(sentences)
    after = " ".join(sentences[:200] + ["The secret launch code is PELICAN-7."] + sentences[200:])
    old = {before[p.start:p.end] for p in split(from_text(before))}
    new = [after[p.start:p.end] for p in split(from_text(after))]
    changed = [t for t in new if t not in old]
    assert len(new) > 40 and 1 <= len(changed) <= 4
    cache = IndexCache()
    first, _ = cache.get(from_text(before))
    first.vectors(cache.stats)
    embedded = cache.stats.embedded
    second, hit = cache.get(from_text(after))
    second.vectors(cache.stats)
    assert not hit and cache.stats.embedded - embedded == len(changed)  # only the new passages were embedded


def test_concurrent_questions_about_one_new_document_share_one_index():
    import concurrent.futures

    doc = from_text("\n\n".join(filler(200)))
    cache = IndexCache()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: cache.get(doc), range(4)))
    assert len({id(index) for index, _ in results}) == 1 and cache.stats.built == 1
    assert sorted(hit for _, hit in results) == [False, True, True, True]
    cache.ingest(doc)  # what an upload does after its response: embed now, once
    embedded = cache.stats.embedded
    assert embedded == len(results[0][0].passages)
    cache.ingest(doc)
    assert cache.stats.embedded == embedded
