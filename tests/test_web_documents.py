"""The chat page's attachments: attach (button and drag-and-drop), pages and tokens, cited answers
whose numbers open the quoted passage, "Summarise" with progress, ownership, and deletion with
the conversation and by the retention purge. Real Chromium (Playwright) against a real server on
the embedded model, then in-process requests (TestClient) on the real model; the documents are
written by the tests (docs_fixtures)."""

from __future__ import annotations

import base64
import datetime as dt
import json

import httpx
import pytest
from docs_fixtures import encrypted_pdf, pdf, scanned_pdf
from sqlalchemy import create_engine, func, select, text, update
from stores import backends, fresh_url
from test_api import start_server
from test_web import PASSWORD, browser, candor, page, send, shot, sign_in, wait_idle  # noqa: F401 (fixtures)

FACTS = ["The lighthouse keeper was named Amelia Thornbury.", "She lit the lamp every evening at nine o'clock.",
         "The island had exactly forty-two goats.", "Ships from Valparaiso arrived every second Tuesday."]
NOTES = " ".join(FACTS)
LIMIT = 300_000  # CANDOR_FILES_MAX_BYTES on the test server
GREEDY = {"temperature": 0}


def island_pdf() -> bytes:
    return pdf([["Meadows roll under a grey sky."], FACTS[2:]])


def long_text(parts: int = 40) -> str:
    """A few thousand tokens of varied, project-written prose: several chunks at a small chunk size."""
    topics = ["the harbour", "the lighthouse", "the goats", "the weather", "the ships", "the school"]
    return "\n\n".join(f"Chapter {i + 1}. This part of the island diary is about {topics[i % len(topics)]}. "
                       f"On day {i + 1} the keeper wrote that {topics[(i + 1) % len(topics)]} needed care, "
                       f"and counted {i + 3} visitors before the evening lamp was lit." for i in range(parts))


def events(r) -> list[dict]:
    return [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: ")]


# -- in Chromium, against `candor serve` -----------------------------------------------------------
@pytest.fixture(scope="module")
def site(tmp_path_factory):
    db = tmp_path_factory.mktemp("web-documents") / "web.db"
    env = {"CANDOR_DATABASE_URL": f"sqlite:///{db}", "CANDOR_FILES_MAX_BYTES": str(LIMIT)}
    candor(env, "db", "upgrade")
    for name in ("alice", "eve"):
        candor(env, "users", "create", name, "--role", "member", "--password", PASSWORD)
    proc, base = start_server(env=env)
    yield base, env
    proc.terminate()
    proc.wait(timeout=30)


def sql(env, query: str, **params):
    engine = create_engine(env["CANDOR_DATABASE_URL"])
    try:
        with engine.begin() as conn:
            return conn.execute(text(query), params).all() if query.lstrip().upper().startswith("SELECT") \
                else conn.execute(text(query), params)
    finally:
        engine.dispose()


def attach(pg, *files: tuple[str, bytes, str]) -> None:
    """Through the Attach button's file input."""
    pg.set_input_files("#attach-input", files=[{"name": n, "mimeType": m, "buffer": d} for n, d, m in files])


def drop(pg, name: str, data: bytes, mime: str) -> None:
    """Drag a file over the chat and drop it, as a file manager would."""
    pg.evaluate("""([name, b64, mime]) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], name, { type: mime }));
        const target = document.querySelector('#messages');
        for (const type of ['dragenter', 'dragover']) {
          target.dispatchEvent(new DragEvent(type, { dataTransfer: transfer, bubbles: true, cancelable: true }));
        }
        window.__dropHint = getComputedStyle(document.querySelector('#drop-hint')).display;
        target.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
    }""", [name, base64.b64encode(data).decode(), mime])


def test_attach_by_button_and_drop_ask_and_open_the_cited_passage(site, page):  # noqa: F811 (test_web.page)
    base, env = site
    sign_in(page, base)
    attach(page, ("notes.txt", NOTES.encode(), "text/plain"))
    notes = page.locator("#attachments .attachment:not(.pending):has-text('notes.txt')")
    notes.wait_for()
    assert "tokens" in notes.locator(".facts").inner_text()
    drop(page, "island.pdf", island_pdf(), "application/pdf")
    assert page.evaluate("window.__dropHint") == "flex"  # "Drop files to attach" while a file is over the chat
    page.wait_for_selector("#attachments .attachment:not(.pending):has-text('island.pdf') .facts:has-text('2 pages')")
    assert not page.evaluate("document.querySelector('#chat').classList.contains('dragging')")
    send(page, "What was the name of the lighthouse keeper?", max_tokens=40)
    wait_idle(page)
    answer = page.locator(".msg.assistant").last
    assert "Amelia" in answer.locator(".content").inner_text()
    answer.locator("button.cite").first.wait_for()
    assert "Documents:" in answer.locator(".doc-note").inner_text()
    answer.locator("button.cite").first.click()  # a number in the text opens its passage
    panel = answer.locator(".citation-panel")
    panel.wait_for()
    assert panel.locator("h4").inner_text().split("] ", 1)[1] in ("notes.txt", "island.pdf")
    assert panel.locator(".where").inner_text().startswith(("characters ", "page "))
    shot(page, "citations")
    answer.locator(".citation-panel .close-citation").click()
    assert answer.locator(".citation-panel").count() == 0
    quotes = []
    sources = answer.locator(".sources button.source")  # the list under the answer opens them too
    for i in range(sources.count()):
        sources.nth(i).click()
        quotes.append(answer.locator(".citation-panel blockquote").inner_text())
    assert all(q in FACTS for q in quotes) and any("Amelia Thornbury" in q for q in quotes), quotes

    page.reload()  # attachments and citations are kept with the conversation
    page.wait_for_selector(".msg.assistant button.cite")
    assert page.locator("#attachments .attachment:not(.pending)").count() == 2
    assert page.locator("#conversation-list li.active").inner_text().startswith("notes.txt")  # named by its file
    page.set_viewport_size({"width": 375, "height": 740})
    page.wait_for_function("document.querySelector('#sidebar').getBoundingClientRect().right <= 0")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375  # usable on a phone
    assert page.locator("#attachments .attachment:not(.pending) .name").first.bounding_box()["width"] >= 40
    shot(page, "attachments-phone")

    # Eve, signed in on her own, cannot fetch Alice's attachment, nor use it in a summary of her own
    cid = page.evaluate("state.conv.id")
    fid = page.locator("#attachments .attachment:not(.pending):has-text('notes.txt')").get_attribute("data-id")
    with httpx.Client(base_url=base, timeout=60) as c:
        r = c.post("/web/api/signin", json={"username": "eve", "password": PASSWORD})
        eve = {"cookie": f"candor_session={r.cookies['candor_session']}", "x-csrf-token": r.json()["csrf"]}
        c.cookies.clear()
        own = c.post("/web/api/conversations", json={}, headers=eve).json()["id"]
        for r in (c.get(f"/web/api/conversations/{cid}/attachments/{fid}/content", headers=eve),
                  c.get(f"/web/api/conversations/{own}/attachments/{fid}/content", headers=eve),
                  c.post(f"/web/api/conversations/{own}/attachments/{fid}/summary", headers=eve, json={})):
            assert r.status_code == 404, r.text
    assert sql(env, "SELECT count(*) FROM files WHERE conversation_id = :c", c=cid)[0][0] == 2


def test_summarise_shows_progress_then_the_summary_and_its_parts(site, page):  # noqa: F811 (test_web.page)
    base, _ = site
    sign_in(page, base)
    page.click("#new-chat")
    page.fill("#max-tokens", "60")
    attach(page, ("diary.txt", long_text(120).encode(), "text/plain"))
    item = page.locator("#attachments .attachment:not(.pending):has-text('diary.txt')")
    item.wait_for()
    item.locator(".summarise").click()
    page.wait_for_selector("#summary-progress:not([hidden])")
    page.wait_for_function("document.querySelector('#summary-label').textContent.includes(' of ')")  # part i of n
    assert page.locator("#summary-bar").get_attribute("max") not in (None, "1")
    shot(page, "summary-progress")
    wait_idle(page, timeout=600_000)
    assert page.is_hidden("#summary-progress") and page.is_hidden("#notice")
    assert "Summarise “diary.txt”" in page.locator(".msg.user").last.inner_text()
    answer = page.locator(".msg.assistant").last
    assert answer.locator(".content").inner_text().strip()
    parts = answer.locator(".summary-parts")
    assert "made from" in parts.locator("summary").inner_text()
    parts.locator("summary").click()
    assert parts.locator("li").first.inner_text().startswith("characters 0-")
    shot(page, "summary")


def test_bad_uploads_say_why_on_the_page_and_store_nothing(site, page):  # noqa: F811 (test_web.page)
    base, env = site
    sign_in(page, base)
    page.click("#new-chat")
    attach(page, ("photo.png", b"\x89PNG\r\n\x1a\n" + bytes(64), "image/png"),
           ("big.txt", b"word " * (LIMIT // 5 + 1), "text/plain"), ("scan.pdf", scanned_pdf(), "application/pdf"))
    page.wait_for_selector("#notice:not([hidden])")
    wait_idle(page)
    notice = page.inner_text("#notice")
    assert "photo.png: unsupported document type 'image/png'; Candor reads PDF, DOCX" in notice
    assert f"big.txt: file is {LIMIT + 5} bytes, over the limit of {LIMIT}" in notice
    assert "scan.pdf" in notice and "does not run OCR" in notice
    assert page.locator("#attachments .attachment:not(.pending)").count() == 0 and page.is_hidden("#attachments")
    cid = page.evaluate("state.conv.id")
    assert sql(env, "SELECT count(*) FROM files WHERE conversation_id = :c", c=cid)[0][0] == 0
    shot(page, "attach-refused")


def test_deleting_the_conversation_or_the_purge_deletes_its_attachments(site, page):  # noqa: F811 (test_web.page)
    base, env = site
    sign_in(page, base)
    page.click("#new-chat")
    attach(page, ("notes.txt", NOTES.encode(), "text/plain"))
    page.wait_for_selector("#attachments .attachment:not(.pending)")
    cid = page.evaluate("state.conv.id")
    assert sql(env, "SELECT count(*) FROM files WHERE conversation_id = :c", c=cid)[0][0] == 1
    page.locator(f"#conversation-list li[data-id='{cid}'] .delete").click()  # the confirm is accepted
    page.wait_for_function(f"!document.querySelector(\"#conversation-list li[data-id='{cid}']\")")
    assert sql(env, "SELECT count(*) FROM files WHERE conversation_id = :c", c=cid)[0][0] == 0
    assert page.is_hidden("#attachments")

    page.click("#new-chat")  # an old conversation goes with the retention purge, attachments and all
    attach(page, ("notes.txt", NOTES.encode(), "text/plain"))
    page.wait_for_selector("#attachments .attachment:not(.pending)")
    old = page.evaluate("state.conv.id")
    sql(env, "UPDATE conversations SET updated_at = :t WHERE id = :c", c=old,
        t=dt.datetime.now(dt.UTC) - dt.timedelta(days=40))
    out = candor(env, "purge", "--days", "30")
    assert "purged 1 conversations (with 1 attached files)" in out
    assert sql(env, "SELECT count(*) FROM files WHERE conversation_id = :c", c=old)[0][0] == 0
    assert sql(env, "SELECT count(*) FROM conversations WHERE id = :c", c=old)[0][0] == 0


# -- in process (TestClient on a fresh SQLite store; the real embedded model) ---------------------
def web_user(store, name: str) -> None:
    from candor.accounts import users as user_ops

    with store.session() as s:
        user_ops.create_user(s, name, role="member", password=PASSWORD)


def signed_in(c, name: str) -> dict:
    r = c.post("/web/api/signin", json={"username": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    c.cookies.clear()
    return {"cookie": f"candor_session={r.cookies['candor_session']}", "x-csrf-token": r.json()["csrf"]}


def upload(c, who: dict, cid: int, name: str, data: bytes, mime: str):
    return c.post(f"/web/api/conversations/{cid}/attachments", headers=who, files={"file": (name, data, mime)})


def count_files(store) -> int:
    from candor.store.models import files

    with store.session() as s:
        return s.scalar(select(func.count()).select_from(files))


@pytest.fixture
def two_users(local_app):
    c, store = local_app()
    web_user(store, "ann")
    web_user(store, "bob")
    return c, store, signed_in(c, "ann"), signed_in(c, "bob")


def new_conversation(c, who: dict) -> int:
    return c.post("/web/api/conversations", json={}, headers=who).json()["id"]


def test_attach_ask_cite_and_only_the_owner_reaches_it(two_users):
    c, store, ann, bob = two_users
    cid = new_conversation(c, ann)
    r = upload(c, ann, cid, "notes.txt", NOTES.encode(), "text/plain")
    assert r.status_code == 200, r.text
    notes = r.json()
    assert notes["filename"] == "notes.txt" and notes["pages"] is None and 30 < notes["tokens"] < 80
    listed = c.get(f"/web/api/conversations/{cid}/attachments", headers=ann).json()["data"]
    assert [a["id"] for a in listed] == [notes["id"]]

    r = c.post(f"/web/api/conversations/{cid}/messages", headers=ann, json={
        "content": "What was the name of the lighthouse keeper?", "max_tokens": 40, **GREEDY})
    done = events(r)[-1]
    assert done["type"] == "done" and done["status"] == "done", done
    assert done["placements"] == ["notes.txt: read whole"]
    cited = done["citations"]
    assert cited and any("Amelia Thornbury" in c_["cited_text"] for c_ in cited), done
    for n, c_ in enumerate(cited, start=1):
        assert c_["n"] == n and c_["document_title"] == "notes.txt" and c_["file_id"] == notes["id"]
        assert c_["type"] == "char_location" and NOTES[c_["start_char_index"]:c_["end_char_index"]] == c_["cited_text"]
        assert c_["location"] == f"characters {c_['start_char_index']}-{c_['end_char_index']}"
        assert f'data-cite="{n}"' in done["html"]
    view = c.get(f"/web/api/conversations/{cid}", headers=ann).json()
    answer = view["messages"][-1]
    assert answer["citations"] == cited and 'class="cite"' in answer["html"]  # kept with the answer
    r = c.post(f"/web/api/conversations/{cid}/compare", headers=ann, json={  # both sides read the attachment
        "content": "How many goats did the island have?", "parent_id": answer["id"], "model_a": "candor-instant",
        "model_b": "candor-instant", "max_tokens": 20, **GREEDY})
    sides = [e for e in events(r) if e["type"] == "done"]
    assert [e["side"] for e in sides] == ["a", "b"] and all(e["placements"] == ["notes.txt: read whole"] for e in sides)

    # a PDF is cited by page
    pid = new_conversation(c, ann)
    r = upload(c, ann, pid, "island.pdf", island_pdf(), "application/pdf")
    assert r.status_code == 200 and r.json()["pages"] == 2 and r.json()["tokens"] > 20
    r = c.post(f"/web/api/conversations/{pid}/messages", headers=ann, json={
        "content": "How many goats did the island have?", "max_tokens": 30, **GREEDY})
    done = events(r)[-1]
    pages = [c_ for c_ in done.get("citations", []) if c_["type"] == "page_location"]
    assert pages and pages[0]["location"] == "page 2" and pages[0]["cited_text"] == FACTS[2], done

    # another user: 404 for the conversation's attachments, its file, and its id in his own conversation
    fid, url = notes["id"], f"/web/api/conversations/{cid}/attachments"
    assert c.get(f"{url}/{fid}/content", headers=ann).content == NOTES.encode()
    bobs = new_conversation(c, bob)
    for r in (c.get(url, headers=bob), c.get(f"{url}/{fid}/content", headers=bob),
              c.delete(f"{url}/{fid}", headers=bob),
              c.get(f"/web/api/conversations/{bobs}/attachments/{fid}/content", headers=bob),
              c.delete(f"/web/api/conversations/{bobs}/attachments/{fid}", headers=bob),
              c.post(f"/web/api/conversations/{bobs}/attachments/{fid}/summary", headers=bob, json={})):
        assert r.status_code == 404, r.text
    r = c.post(f"/web/api/conversations/{pid}/attachments/{fid}/summary", headers=ann, json={})
    assert r.status_code == 404  # ann's file, but not attached to that conversation
    # nor through the API: the Files API and a document block's file source answer 404 to any key
    api = {"x-api-key": "sk-test-key", "anthropic-version": "2023-06-01"}
    assert c.get(f"/v1/files/{fid}", headers=api).status_code == 404
    assert fid not in [f["id"] for f in c.get("/v1/files", headers=api).json()["data"]]
    r = c.post("/v1/messages", headers=api, json={"model": "candor-instant", "max_tokens": 5, "messages": [
        {"role": "user", "content": [{"type": "document", "source": {"type": "file", "file_id": fid}},
                                     {"type": "text", "text": "Who kept the lighthouse?"}]}]})
    assert r.status_code == 404 and "not found" in r.json()["error"]["message"]
    assert count_files(store) == 2


def test_bad_uploads_say_why_and_store_nothing(two_users):
    c, store, ann, _ = two_users
    cid = new_conversation(c, ann)
    c.app.state.files.max_bytes = 50_000
    cases = [
        (("photo.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "image/png"), 400, "unsupported document type 'image/png'"),
        (("big.txt", b"word " * 20_000, "text/plain"), 413, "over the limit of 50000"),
        (("scan.pdf", scanned_pdf(), "application/pdf"), 400, "does not run OCR"),
        (("locked.pdf", encrypted_pdf(), "application/pdf"), 400, "encrypted"),
        (("empty.txt", b"", "text/plain"), 400, "empty"),
    ]
    for part, status, message in cases:
        r = c.post(f"/web/api/conversations/{cid}/attachments", headers=ann, files={"file": part})
        assert r.status_code == status and message in r.json()["error"]["message"], (part[0], r.text)
    r = c.post(f"/web/api/conversations/{cid}/attachments", headers=ann, files={"other": ("a.txt", b"hi")})
    assert r.status_code == 400 and "'file'" in r.json()["error"]["message"]
    no_csrf = {"cookie": ann["cookie"]}
    assert upload(c, no_csrf, cid, "notes.txt", NOTES.encode(), "text/plain").status_code == 403
    assert count_files(store) == 0
    assert c.get(f"/web/api/conversations/{cid}/attachments", headers=ann).json() == {"data": []}


def test_attachments_go_with_their_conversation_their_user_and_the_purge(two_users, candor_bin):
    from candor.accounts import users as user_ops
    from candor.accounts.retention import purge_old
    from candor.store.models import Conversation

    c, store, ann, bob = two_users
    first, second, third = (new_conversation(c, ann) for _ in range(3))
    for cid in (first, second, third):
        assert upload(c, ann, cid, "notes.txt", NOTES.encode(), "text/plain").status_code == 200
    fid = upload(c, ann, second, "more.md", b"# More\n\nGoats: 42.", "text/markdown").json()["id"]
    bobs = new_conversation(c, bob)
    assert upload(c, bob, bobs, "bob.txt", b"Bob's own notes about boats.", "text/plain").status_code == 200
    assert count_files(store) == 5
    r = c.delete(f"/web/api/conversations/{second}/attachments/{fid}", headers=ann)  # one file
    assert r.status_code == 200 and count_files(store) == 4
    assert c.delete(f"/web/api/conversations/{first}", headers=ann).status_code == 200  # the conversation
    assert count_files(store) == 3
    with store.session() as s:  # the second conversation was last touched long ago
        s.execute(update(Conversation).where(Conversation.id == second)
                  .values(updated_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=40)))
    purged = purge_old(store, 30)
    assert (purged.conversations, purged.attachments) == (1, 1) and count_files(store) == 2
    with store.session() as s:
        exported = user_ops.export_user(s, "ann")  # what she attached is part of what is kept about her
        assert [a["filename"] for c_ in exported["conversations"] for a in c_["attachments"]] == ["notes.txt"]
        user_ops.delete_user(s, "ann")  # her last conversation, and its file, go with her
    assert count_files(store) == 1
    assert c.get(f"/web/api/conversations/{bobs}/attachments", headers=bob).json()["data"][0]["filename"] == "bob.txt"


def test_summary_streams_progress_and_is_stored_with_its_parts(two_users):
    from candor.store.models import ChatMessage, UsageRecord

    c, store, ann, _ = two_users
    cid = new_conversation(c, ann)
    meta = upload(c, ann, cid, "diary.txt", long_text().encode(), "text/plain").json()
    assert meta["tokens"] > 1200
    r = c.post(f"/web/api/conversations/{cid}/attachments/{meta['id']}/summary", headers=ann,
               json={"max_tokens": 40, "chunk_tokens": 600})
    got = events(r)
    assert got[0] == {"type": "progress", "stage": "start", "done": 0, "total": 1, "title": "diary.txt",
                      "tokens": meta["tokens"], "pages": None}
    maps = [(e["done"], e["total"]) for e in got if e.get("stage") == "map"]
    total = maps[-1][1]
    assert total >= 2 and maps == [(i, total) for i in range(total + 1)]  # each part, then all done
    assert [e["done"] for e in got if e.get("stage") == "reduce"] == [0, 1]
    done = got[-1]
    assert done["type"] == "done", done
    parts = done["summary"]["parts"]
    assert done["summary"]["mode"] == "map-reduce" and len(parts) == total
    assert parts[0]["location"].startswith("characters 0-") and all(p["summary"] for p in parts)
    with store.session() as s:
        question, answer = s.scalars(select(ChatMessage).where(ChatMessage.conversation_id == cid)
                                     .order_by(ChatMessage.id)).all()
        endpoints = [u.endpoint for u in s.scalars(select(UsageRecord))]
    assert question.content == "Summarise “diary.txt”" and answer.parent_id == question.id
    assert answer.content and json.loads(answer.documents)["summary"]["parts"] == parts
    assert answer.input_tokens == done["input_tokens"] > 600 and answer.output_tokens == done["output_tokens"]
    assert endpoints.count("/web/summarize") == total + 1  # every model call metered under the user's limits
    view = c.get(f"/web/api/conversations/{cid}", headers=ann).json()
    assert view["messages"][-1]["summary"]["parts"] == parts


@pytest.mark.parametrize("backend", backends())
def test_attachment_rows_cascade_and_migrate_on_each_database(backend, tmp_path):
    """The foreign key does the deleting on SQLite and PostgreSQL alike; 0007 goes down cleanly."""
    from candor.accounts import users as user_ops
    from candor.accounts.retention import purge_old
    from candor.documents.files import FileStore
    from candor.store import Store
    from candor.store.models import Conversation

    url, drop_db = fresh_url(backend, tmp_path)
    store = Store(url)
    try:
        store.upgrade()
        files = FileStore(store)
        with store.session() as s:
            user = user_ops.create_user(s, "cleo", role="member", password=PASSWORD)
            s.flush()
            convs = [Conversation(user_id=user.id, title=t) for t in ("kept", "deleted", "old")]
            s.add_all(convs)
            s.flush()
            owner, ids = f"user:{user.id}", {c.title: c.id for c in convs}
        for title, cid in ids.items():
            files.save(owner, None, files.read(f"{title}.txt", "text/plain", NOTES.encode()), conversation_id=cid,
                       tokens=42)
        assert [m.tokens for m in files.attachments(owner, ids["kept"])] == [42]
        with store.session() as s:
            s.delete(s.get(Conversation, ids["deleted"]))
            s.execute(update(Conversation).where(Conversation.id == ids["old"])
                      .values(updated_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=90)))
        assert files.attachments(owner, ids["deleted"]) == [] and count_files(store) == 2
        assert purge_old(store, 30).attachments == 1 and count_files(store) == 1
        store.downgrade("0006")  # attachments cannot outlive their column
        assert count_files(store) == 0
        store.upgrade()
    finally:
        store.dispose()
        drop_db()
