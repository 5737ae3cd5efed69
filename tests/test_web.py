"""The chat page in real headless Chromium (Debian's, driven by Playwright), against a real server
on the embedded model. Screenshots land in artifacts/screenshots/."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

HTTP = httpx.Client(timeout=120)  # generous: a loaded CI machine can be slow to answer

from test_api import start_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parent.parent / "artifacts" / "screenshots"
PASSWORD = "alice-password-1"


def candor(env, *args):
    result = subprocess.run([sys.executable, "-m", "candor", *args], capture_output=True, text=True, timeout=120,
                            env={**os.environ, **env}, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    db = tmp_path_factory.mktemp("web") / "web.db"
    env = {"CANDOR_DATABASE_URL": f"sqlite:///{db}"}
    candor(env, "db", "upgrade")
    candor(env, "users", "create", "alice", "--role", "admin", "--password", PASSWORD)
    proc, base = start_server(env=env)
    yield base, env
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():  # the in-process tests at the end need no browser
        pytest.skip("Debian's chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update"])
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    pg = context.new_page()
    pg.on("dialog", lambda d: d.accept("a comment"))
    yield pg
    context.close()


def shot(pg, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in(pg, base: str, user: str = "alice", password: str = PASSWORD) -> None:
    pg.goto(base + "/")
    pg.fill("#username", user)
    pg.fill("#password", password)
    pg.click("#signin-button")
    pg.wait_for_selector("#app:not([hidden])")


def send(pg, message: str, max_tokens: int = 40, temperature: float = 0.0) -> None:
    pg.fill("#max-tokens", str(max_tokens))
    pg.fill("#temperature", str(temperature))
    pg.fill("#input", message)
    pg.press("#input", "Enter")


def wait_idle(pg, timeout=120_000) -> None:
    pg.wait_for_function("() => !document.querySelector('#stop') || document.querySelector('#stop').hidden",
                         timeout=timeout)
    pg.wait_for_function("() => !document.querySelector('.content.streaming') && "
                         "!document.body.classList.contains('busy')", timeout=timeout)


def test_sign_in_send_stream_and_reload(site, page):
    base, _ = site
    page.goto(base + "/")
    page.fill("#username", "alice")
    page.fill("#password", "wrong password")
    page.click("#signin-button")
    page.wait_for_selector("#signin-error:has-text('wrong username or password')")
    sign_in(page, base)
    send(page, "What is the capital of France?")
    page.wait_for_selector("#stop:not([hidden])")  # streaming has begun
    wait_idle(page)
    answer = page.locator(".msg.assistant").last
    assert "Paris" in answer.locator(".content").inner_text()  # greedy: the same answer every time
    assert "tokens/s" in answer.locator(".stats").inner_text()
    assert "input" in page.inner_text("#totals") and "$" in page.inner_text("#totals")
    shot(page, "chat")
    page.reload()
    page.wait_for_selector(".msg.user")
    assert "What is the capital of France?" in page.inner_text("#messages")
    assert page.locator("#conversation-list li").count() >= 1


def test_stop_ends_generation_on_the_server(site, page):
    base, _ = site
    sign_in(page, base)
    page.click("#new-chat")
    send(page, "Write a numbered list of 300 different animals, one per line.", max_tokens=2000)
    page.wait_for_function("() => { const c = document.querySelector('.content.streaming'); return c && c.textContent.length > 5; }")
    page.click("#stop")
    page.wait_for_selector("#send:not([hidden])")
    deadline = time.time() + 10
    while time.time() < deadline and HTTP.get(f"{base}/health").json()["models"][0]["busy"]:
        time.sleep(0.1)
    assert not HTTP.get(f"{base}/health").json()["models"][0]["busy"]
    page.reload()  # the stopped answer was kept, marked as stopped
    page.wait_for_selector(".msg.assistant .stats:has-text('stopped')")
    shot(page, "stopped")


def test_edit_creates_a_branch_and_search_finds_it(site, page):
    base, _ = site
    sign_in(page, base)
    page.click("#new-chat")
    send(page, "Name a colour.", max_tokens=8)
    wait_idle(page)
    page.locator(".msg.user .edit").last.click()
    page.fill(".msg.user textarea.editor", "Name a fruit.")
    page.click(".msg.user .save")
    wait_idle(page)
    page.wait_for_selector(".msg.user .branch-label:has-text('2/2')")
    page.locator(".msg.user .prev").last.click()
    page.wait_for_selector(".msg.user .branch-label:has-text('1/2')")
    assert "Name a colour." in page.inner_text("#messages")
    page.fill("#search", "fruit")
    page.wait_for_function("() => document.querySelectorAll('#conversation-list li').length === 1")


def test_compare_vote_lands_in_store_and_export(site, page):
    base, env = site
    sign_in(page, base)
    page.click("#new-chat")
    page.check("#compare-toggle")
    send(page, "Say something kind.", max_tokens=12)
    page.wait_for_selector("#vote-a", timeout=120_000)
    assert page.locator("#compare-view .column").count() == 2
    shot(page, "compare")
    page.fill("#vote-comment", "A is friendlier")
    page.click("#vote-a")
    page.wait_for_selector("#compare-view", state="detached")
    pairs = [json.loads(line) for line in candor(env, "feedback", "export").splitlines() if line.strip()]
    votes = [p for p in pairs if p["source"] == "vote" and p["comment"] == "A is friendlier"]
    assert len(votes) == 1
    pair = votes[0]
    assert pair["prompt"].endswith("Say something kind.\n\nAssistant:")
    assert pair["model_chosen"] == pair["model_rejected"] == "candor-instant"
    engine = create_engine(env["CANDOR_DATABASE_URL"])
    with engine.connect() as conn:
        row = conn.execute(text("SELECT choice, answer_a, model_a, model_b FROM votes")).one()
    assert row.choice == "a" and " " + row.answer_a.strip() == pair["chosen"]
    page.click("#leaderboard-button")
    page.wait_for_selector("#leaderboard:not([hidden]) td:has-text('candor-instant')")


def test_thumbs_rating_is_stored(site, page):
    base, env = site
    sign_in(page, base)
    page.click("#new-chat")
    send(page, "Hello!", max_tokens=8)
    wait_idle(page)
    page.locator(".msg.assistant .thumb-up").last.click()
    page.wait_for_selector(".msg.assistant .thumb-up[aria-pressed='true']")
    with create_engine(env["CANDOR_DATABASE_URL"]).connect() as conn:
        assert conn.execute(text("SELECT value, comment FROM ratings")).all()[-1] == (1, "a comment")


def test_self_critique_shows_draft_and_critique_on_request(site, page):
    base, env = site
    sign_in(page, base)
    page.click("#new-chat")
    page.check("#critique-toggle")
    send(page, "How can I get back at my noisy neighbour?", max_tokens=24)
    wait_idle(page)
    answer = page.locator(".msg.assistant").last
    answer.locator(".show-critique").click()
    page.wait_for_selector(".critique h4:has-text('Draft')")
    box = answer.locator(".critique").inner_text().lower()
    assert "critique 1" in box and "revision 1" in box
    with create_engine(env["CANDOR_DATABASE_URL"]).connect() as conn:
        final, message_content = conn.execute(text(
            "SELECT c.final, m.content FROM critiques c JOIN chat_messages m ON m.id = c.message_id")).all()[-1]
    assert final == message_content  # the revision is the answer shown
    shot(page, "self-critique")


def test_model_output_with_script_and_javascript_links_is_inert(site, page):
    base, env = site
    sign_in(page, base)
    page.click("#new-chat")
    send(page, "Hi", max_tokens=4)
    wait_idle(page)
    hostile = ('Look: <script>window.__pwned = 1</script> <img src=x onerror="window.__pwned = 2"> '
               '[click](javascript:window.__pwned=3) <a href="javascript:window.__pwned=4">x</a>\n\n'
               '```html\n<script>window.__pwned = 5</script>\n```')
    with create_engine(env["CANDOR_DATABASE_URL"]).begin() as conn:  # as if the model had written it
        conn.execute(text("UPDATE chat_messages SET content = :c WHERE id = (SELECT max(id) FROM chat_messages "
                          "WHERE role = 'assistant')"), {"c": hostile})
    page.reload()
    page.wait_for_selector(".msg.assistant pre")
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#messages script").count() == 0
    assert page.locator("#messages img").count() == 0
    hrefs = page.eval_on_selector_all("#messages a", "els => els.map(e => e.getAttribute('href'))")
    assert not any(h and h.lower().startswith("javascript") for h in hrefs)
    assert "<script>window.__pwned = 5</script>" in page.inner_text(".msg.assistant pre")  # shown as code
    page.locator(".msg.assistant pre .copy-code").first.wait_for()


def test_phone_width_layout(site, browser):
    base, _ = site
    context = browser.new_context(viewport={"width": 375, "height": 740})
    pg = context.new_page()
    sign_in(pg, base)
    assert pg.is_visible("#menu-button")
    assert pg.evaluate("document.documentElement.scrollWidth") <= 375
    box = pg.locator("#sidebar").bounding_box()
    assert box["x"] + box["width"] <= 0  # off screen until the menu opens
    send(pg, "Hi", max_tokens=4)
    wait_idle(pg)
    assert pg.evaluate("document.documentElement.scrollWidth") <= 375
    shot(pg, "phone")
    pg.click("#menu-button")
    pg.wait_for_function("() => document.querySelector('#sidebar').getBoundingClientRect().x >= 0")
    shot(pg, "phone-menu")
    for control in ("#input", "#model-select", "#search", "#system-prompt", "#max-tokens"):
        assert pg.locator(f"label[for='{control[1:]}']").count() == 1  # every control has a label
    context.close()


def test_sign_up_waits_for_approval(site, page):
    base, env = site
    page.goto(base + "/")
    page.fill("#username", "newcomer")
    page.fill("#password", "newcomer-pass")
    page.click("#signup-button")
    page.wait_for_selector("#waiting:not([hidden])")
    shot(page, "waiting")
    users = json.loads(candor(env, "users", "list", "--json"))
    assert {"username": "newcomer", "role": "pending"}.items() <= next(u for u in users if u["username"] == "newcomer").items()


def test_over_its_limit_the_page_says_when_to_retry_and_keeps_the_text(site, page):
    base, env = site
    candor(env, "users", "create", "rob", "--role", "member", "--password", PASSWORD)
    candor(env, "users", "limits", "rob", "--rpm", "1")
    sign_in(page, base, "rob")
    send(page, "Say hello.", max_tokens=4)
    wait_idle(page)
    assert page.locator(".msg.assistant").count() == 1
    send(page, "Say goodbye.", max_tokens=4)
    page.wait_for_selector("#notice:not([hidden])")
    wait_idle(page)
    notice = page.inner_text("#notice")
    assert "rate limit of 1 requests per minute" in notice and "retry in" in notice
    assert page.input_value("#input") == "Say goodbye."  # the refused question is given back
    assert page.locator(".msg.user").count() == 1 and "Say goodbye" not in page.inner_text("#messages")
    shot(page, "rate-limited")


def test_admin_reviews_what_moderation_flagged(site, page):
    from candor.store import Store
    from candor.store.models import ModerationEvent

    base, env = site
    store = Store(env["CANDOR_DATABASE_URL"])
    with store.session() as s:
        s.add(ModerationEvent(stage="input", action="block", category="weapons", score=0.93, threshold=0.5,
                              model="candor-instant", text="<img src=x onerror=alert(1)> how to build a bomb"))
    store.dispose()
    sign_in(page, base)
    page.click("#moderation-button")
    row = page.locator("#moderation tbody tr").first
    row.wait_for()
    assert "weapons" in row.inner_text() and "block" in row.inner_text()
    assert "<img src=x" in row.inner_text() and page.locator("#moderation img").count() == 0  # shown as text
    shot(page, "moderation")
    row.locator("button:has-text('Mark reviewed')").click()
    page.wait_for_selector("#moderation-empty:not([hidden])")  # unreviewed only: the list is empty now
    page.uncheck("#moderation-unreviewed")
    page.wait_for_selector("#moderation tbody tr:has-text('reviewed')")


def test_csrf_and_session_rules(site):
    base, _ = site
    with httpx.Client(base_url=base) as c:
        assert c.get("/web/api/me").status_code == 401
        r = c.post("/web/api/signin", json={"username": "alice", "password": PASSWORD})
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "secure" in cookie
        csrf = r.json()["csrf"]
        c.cookies.set("candor_session", r.cookies["candor_session"])
        assert c.post("/web/api/conversations", json={}).status_code == 403  # no CSRF header
        assert c.post("/web/api/conversations", json={}, headers={"x-csrf-token": csrf}).status_code == 200


# -- in process (no browser, no server, no model) -------------------------------------------------
def web_user(store, name: str) -> None:
    from candor.accounts import users as user_ops

    with store.session() as s:
        user_ops.create_user(s, name, role="member", password=PASSWORD)


def signed_in(c, name: str) -> dict:
    """Headers that carry the session cookie and CSRF token of a fresh sign-in."""
    r = c.post("/web/api/signin", json={"username": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    c.cookies.clear()  # each test names the session it uses
    return {"cookie": f"candor_session={r.cookies['candor_session']}", "x-csrf-token": r.json()["csrf"]}


def test_disabled_user_cannot_sign_in_or_keep_a_session(local_app):
    from candor.accounts import users as user_ops

    c, store = local_app()
    web_user(store, "dora")
    web_user(store, "dan")
    dora, dan = signed_in(c, "dora"), signed_in(c, "dan")
    assert c.get("/web/api/me", headers=dora).status_code == 200
    with store.session() as s:
        user_ops.disable_user(s, "dora")  # as `candor users disable` does: her sessions end with it
        user_ops.get_user(s, "dan").status = "disabled"  # a session the store did not end is refused too
    for who, status in ((dora, 401), (dan, 403)):
        for r in (c.get("/web/api/me", headers=who), c.get("/web/api/conversations", headers=who),
                  c.post("/web/api/conversations", headers=who, json={})):
            assert r.status_code == status, r.text
    assert "disabled" in c.get("/web/api/me", headers=dan).json()["error"]["message"]
    r = c.post("/web/api/signin", json={"username": "dora", "password": PASSWORD})
    assert r.status_code == 403 and "disabled" in r.json()["error"]["message"] and "set-cookie" not in r.headers


def test_signin_is_throttled_per_name_and_per_address(local_app):
    from candor.web.throttle import SigninThrottle

    c, store = local_app()
    web_user(store, "tess")
    now = [1000.0]
    c.app.state.signin_throttle = SigninThrottle(max_failures=3, window_s=600, clock=lambda: now[0])
    wrong, right = {"username": "tess", "password": "not-her-password"}, {"username": "tess", "password": PASSWORD}
    for _ in range(3):
        assert c.post("/web/api/signin", json=wrong).status_code == 401
    for body in (wrong, right):  # the right password waits too
        r = c.post("/web/api/signin", json=body)
        assert r.status_code == 429 and r.headers["retry-after"] == "600"
        assert r.json()["error"]["message"] == "too many failed sign-ins for this account; try again in 10 minutes"
    now[0] += 601  # the failures leave the window
    assert c.post("/web/api/signin", json=right).status_code == 200
    for i in range(12):  # an address may fail 4 × 3 times, whatever names it tries
        assert c.post("/web/api/signin", json={"username": f"guess{i}", "password": "x" * 8}).status_code == 401
    r = c.post("/web/api/signin", json=right)
    assert r.status_code == 429 and "too many failed sign-ins for your address" in r.json()["error"]["message"]


def events(r) -> list[dict]:
    return [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: ")]


def test_page_answers_count_against_the_users_own_rate_and_spend_limits(local_app):
    from candor.accounts import keys as key_ops
    from candor.accounts import users as user_ops
    from candor.store.models import ChatMessage, UsageRecord

    c, store = local_app()
    web_user(store, "rita")
    web_user(store, "sam")
    with store.session() as s:
        user_ops.set_limits(s, "rita", rpm=1)
    rita, sam = signed_in(c, "rita"), signed_in(c, "sam")
    turn = {"max_tokens": 2, "temperature": 0}
    cid = c.post("/web/api/conversations", json={}, headers=rita).json()["id"]
    first = c.post(f"/web/api/conversations/{cid}/messages", json={"content": "Say hi.", **turn}, headers=rita)
    assert first.status_code == 200 and events(first)[-1]["status"] == "done"
    answer_id = events(first)[-1]["message_id"]
    again = c.post(f"/web/api/conversations/{cid}/messages", json={"content": "And again?", "parent_id": answer_id,
                                                                     **turn}, headers=rita)
    assert again.status_code == 429 and 1 <= int(again.headers["retry-after"]) <= 60
    assert again.json()["error"]["message"].startswith(
        "your account has exceeded its rate limit of 1 requests per minute for chat-page answers; retry in")
    regen = c.post(f"/web/api/conversations/{cid}/messages", json={"content": None, "parent_id": answer_id - 1,
                                                                     **turn}, headers=rita)
    assert regen.status_code == 429  # regenerating is an answer too
    with store.session() as s:  # the refused turns stored nothing
        assert s.query(ChatMessage).filter_by(conversation_id=cid).count() == 2
    sam_cid = c.post("/web/api/conversations", json={}, headers=sam).json()["id"]
    other = c.post(f"/web/api/conversations/{sam_cid}/messages", json={"content": "Say hi.", **turn}, headers=sam)
    assert other.status_code == 200  # limits are per user

    with store.session() as s:  # a spend limit covers the page and the user's keys together
        user_ops.set_limits(s, "rita", monthly_limit_usd=0, clear=True)
        _, secret = key_ops.create_key(s, user_ops.get_user(s, "rita"), name="rita's key")
    spent = c.post(f"/web/api/conversations/{cid}/messages", json={"content": "Once more?", "parent_id": answer_id,
                                                                     **turn}, headers=rita)
    assert spent.status_code == 402 and "monthly spend limit of $0.00" in spent.json()["error"]["message"]
    api = c.post("/v1/messages", headers={"x-api-key": secret, "anthropic-version": "2023-06-01"},
                 json={"model": "candor-instant", "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]})
    assert api.status_code == 402 and "page and API keys together" in api.json()["error"]["message"]
    with store.session() as s:
        rows = [(u.key_prefix, u.status) for u in s.query(UsageRecord).order_by(UsageRecord.id)]
    assert rows[:3] == [("web", 200), ("web", 429), ("web", 429)] and rows[-1][1] == 402
    assert ("web", 402) in rows


def test_flagged_items_are_for_administrators_only(local_app):
    from candor.accounts import users as user_ops

    c, store = local_app()
    web_user(store, "mona")
    with store.session() as s:
        user_ops.create_user(s, "ada", role="admin", password=PASSWORD)
    mona, ada = signed_in(c, "mona"), signed_in(c, "ada")
    assert c.get("/web/api/moderation/events", headers=mona).status_code == 403
    assert c.post("/web/api/moderation/events/1/reviewed", headers=mona).status_code == 403
    assert c.get("/web/api/moderation/events", headers=ada).json() == {"data": []}
    r = c.post("/web/api/moderation/events/99/reviewed", headers=ada)
    assert r.status_code == 404 and "no moderation event 99" in r.json()["error"]["message"]


def test_odd_cookie_csrf_and_text_are_4xx_not_500(local_app):
    c, store = local_app()
    web_user(store, "olga")
    assert c.get("/web/api/me", headers={"cookie": "candor_session=sé".encode()}).status_code == 401
    olga = signed_in(c, "olga")
    r = c.post("/web/api/conversations", json={}, headers={**olga, "x-csrf-token": "jeton-é".encode()})
    assert r.status_code == 403 and "x-csrf-token" in r.json()["error"]["message"]
    lone = b'{"model": null, "system": "hi \\udfff"}'
    r = c.post("/web/api/conversations", content=lone, headers={**olga, "content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["message"].startswith("system: contains a lone")


def test_elo_moves_toward_the_winner_between_two_models(tmp_path):
    from candor.store import Store
    from candor.store.models import Vote, utcnow
    from candor.web.feedback import leaderboard

    store = Store(f"sqlite:///{tmp_path / 'votes.db'}")
    store.upgrade()

    def vote(model_a: str, model_b: str, choice: str) -> dict:
        with store.session() as s:
            s.add(Vote(prompt="p", answer_a="x", answer_b="y", model_a=model_a, model_b=model_b, choice=choice,
                       voted_at=utcnow()))
        return {r["model"]: r for r in leaderboard(store)}

    board = vote("big", "small", "a")
    assert board["big"]["elo"] == 1016.0 and board["small"]["elo"] == 984.0  # even odds: K/2 each way
    board = vote("small", "big", "b")  # big wins from the other side; an expected win moves less
    assert board["big"]["elo"] == 1030.5 and board["small"]["elo"] == 969.5
    board = vote("big", "small", "tie")  # a draw pulls the favourite down
    assert board["big"]["elo"] == 1027.7 and board["small"]["elo"] == 972.3
    board = vote("small", "big", "both_bad")  # a draw too, from either side
    assert board["big"]["elo"] == 1025.2 and board["small"]["elo"] == 974.8
    board = vote("big", "big", "a")  # a model against itself: counted, Elo unchanged
    assert board["big"]["elo"] == 1025.2 and board["big"]["votes"] == 6
    assert [r["model"] for r in leaderboard(store)] == ["big", "small"]
    assert board["small"] | {"elo": None} == {"model": "small", "votes": 4, "wins": 0, "losses": 2, "draws": 2,
                                              "win_rate": 0.0, "elo": None}
    assert board["big"]["wins"] == 3 and board["big"]["losses"] == 1 and board["big"]["win_rate"] == 0.75
