"""The Files API through the official `anthropic` SDK against a real server: upload, list, get,
download, delete, per-key ownership, limits, and files as document sources with citations."""

from __future__ import annotations

import anthropic
import httpx
import pytest
from docs_fixtures import encrypted_pdf, pdf
from test_api import KEY, running_server
from test_api_access import new_key

FACTS = ["The lighthouse keeper was named Amelia Thornbury.", "The island had exactly forty-two goats."]
LIMIT = 200_000


@pytest.fixture(scope="module")
def server():
    with running_server(env={"CANDOR_FILES_MAX_BYTES": str(LIMIT)}) as url:
        yield url


@pytest.fixture(scope="module")
def keys(server):
    """Two members' keys on the server's database."""
    return new_key({}, "files-alice"), new_key({}, "files-bob")


def sdk(server, key):
    return anthropic.Anthropic(api_key=key, base_url=server, max_retries=0)


def count_files(client) -> int:
    return len(client.files.list(limit=1000).data)


def test_upload_list_get_download_delete(server, keys):
    alice = sdk(server, keys[0])
    data = pdf([["Meadows roll under a grey sky."], FACTS])
    meta = alice.files.upload(file=("dir/island.pdf", data, "application/pdf"))
    assert meta.id.startswith("file_") and meta.type == "file" and meta.filename == "island.pdf"
    assert meta.mime_type == "application/pdf" and meta.size_bytes == len(data) and meta.expires_at is None
    notes = alice.files.upload(file=("notes.md", b"# Notes\n\nGoats: 42.", "text/markdown"), expires_in_seconds=3600)
    assert notes.expires_at is not None and notes.expires_at > notes.created_at
    listed = alice.files.list()
    assert [f.id for f in listed.data] == [notes.id, meta.id]  # newest first
    first = alice.files.list(limit=1)
    assert [f.id for f in first.data] == [notes.id] and first.next_page
    assert [f.id for f in alice.files.list(limit=1, page=first.next_page).data] == [meta.id]
    beta = alice.beta.files.list(betas=["files-api-2025-04-14"], limit=1)  # the legacy beta shape
    assert beta.has_more and beta.first_id == notes.id
    assert alice.files.retrieve_metadata(meta.id).filename == "island.pdf"
    assert alice.files.download(meta.id).read() == data
    deleted = alice.files.delete(notes.id)
    assert deleted.id == notes.id and deleted.type == "file_deleted"
    with pytest.raises(anthropic.NotFoundError, match="not found"):
        alice.files.retrieve_metadata(notes.id)


def test_files_belong_to_the_key_that_uploaded_them(server, keys):
    alice, bob = sdk(server, keys[0]), sdk(server, keys[1])
    meta = alice.files.upload(file=("secret.txt", b"Alice's secret: the goats number 42.", "text/plain"))
    assert meta.id not in [f.id for f in bob.files.list().data]
    for call in (bob.files.retrieve_metadata, bob.files.download, bob.files.delete):
        with pytest.raises(anthropic.NotFoundError):
            call(meta.id)
    with pytest.raises(anthropic.NotFoundError, match=meta.id):
        bob.messages.create(model="candor-instant", max_tokens=5, messages=[{"role": "user", "content": [
            {"type": "document", "source": {"type": "file", "file_id": meta.id}},
            {"type": "text", "text": "What is the secret?"}]}])
    assert alice.files.retrieve_metadata(meta.id).id == meta.id  # still there for its owner


def test_bad_uploads_are_refused_and_nothing_is_stored(server, keys):
    alice = sdk(server, keys[0])
    before = count_files(alice)
    cases = [
        (("scan.pdf", b"%PDF-1.4 not really", "application/pdf"), anthropic.BadRequestError, "not valid"),
        (("locked.pdf", encrypted_pdf(), "application/pdf"), anthropic.BadRequestError, "encrypted"),
        (("photo.png", b"\x89PNG\r\n\x1a\n....", "image/png"), anthropic.BadRequestError, "unsupported document type"),
        (("big.txt", b"word " * (LIMIT // 5 + 1), "text/plain"), anthropic.APIStatusError, f"over the limit of {LIMIT}"),
        (("empty.txt", b"   ", "text/plain"), anthropic.BadRequestError, "no text"),
        (("a<b>.txt", b"hello", "text/plain"), anthropic.BadRequestError, "filename"),
    ]
    for file, error, message in cases:
        with pytest.raises(error, match=message) as info:
            alice.files.upload(file=file)
        if file[0] == "big.txt":
            assert info.value.status_code == 413
    with pytest.raises(anthropic.BadRequestError, match="expires_in_seconds"):
        alice.files.upload(file=("ok.txt", b"fine", "text/plain"), expires_in_seconds=5)
    assert count_files(alice) == before
    r = httpx.post(f"{server}/v1/files", headers={"x-api-key": KEY}, data={"nothing": "here"})
    assert r.status_code == 400 and "file" in r.json()["error"]["message"]


def test_file_document_is_cited_with_its_file_id(server, keys):
    alice = sdk(server, keys[0])
    meta = alice.files.upload(file=("island.pdf", pdf([["Meadows roll under a grey sky."], FACTS]), "application/pdf"))
    msg = alice.messages.create(model="candor-instant", max_tokens=40, extra_body={"temperature": 0}, messages=[
        {"role": "user", "content": [
            {"type": "document", "source": {"type": "file", "file_id": meta.id}, "title": "Island",
             "citations": {"enabled": True}},
            {"type": "text", "text": "How many goats did the island have?"}]}])
    cited = [c for b in msg.content for c in (b.citations or [])]
    assert cited and cited[0].type == "page_location" and cited[0].file_id == meta.id
    assert cited[0].start_page_number == 2 and cited[0].cited_text in FACTS


def test_expired_files_keep_their_metadata_but_not_their_content(tmp_path):
    import datetime as dt

    import sqlalchemy as sa

    from candor.documents.files import FileStore, files
    from candor.errors import NotFoundError
    from candor.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'files.db'}")
    fs = FileStore(store)
    meta, _ = fs.create("key:1", None, "n.txt", "text/plain", b"Goats: 42.", expires_in=3600)
    with store.session() as s:
        s.execute(sa.update(files).values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    assert fs.get("key:1", meta.id).expired()
    assert [m.id for m in fs.list("key:1")[0]] == [meta.id]
    with pytest.raises(NotFoundError, match="expired"):
        fs.content("key:1", meta.id)
    with pytest.raises(NotFoundError, match="expired"):
        fs.resolve("key:1", meta.id, "messages.0.content.0.source.file_id")


def test_expired_file_download_says_file_expired(server, keys):
    import datetime as dt
    import os

    import sqlalchemy as sa

    from candor.documents.files import files
    from candor.store import open_store

    alice = sdk(server, keys[0])
    meta = alice.files.upload(file=("soon.txt", b"Goats: 42.", "text/plain"), expires_in_seconds=3600)
    store = open_store(os.environ["CANDOR_DATABASE_URL"], migrate=False)  # the server's database
    with store.session() as s:
        s.execute(sa.update(files).where(files.c.id == meta.id)
                  .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    store.dispose()
    with pytest.raises(anthropic.NotFoundError) as info:
        alice.files.download(meta.id)
    assert info.value.error_code == "file_expired"  # from error.details.error_code
    assert alice.files.retrieve_metadata(meta.id).id == meta.id  # metadata stays readable


def test_nameless_upload_keeps_its_bytes(server, keys):
    alice = sdk(server, keys[0])
    data = pdf([["Nameless but readable."]])
    meta = alice.files.upload(file=data)  # raw bytes: the SDK sends no usable file name
    assert meta.mime_type == "application/pdf" and meta.size_bytes == len(data)
    assert meta.filename in ("unnamed.pdf", "upload")
    assert alice.files.download(meta.id).read() == data
