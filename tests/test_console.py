"""The review console over real HTTP (no browser): access control, CSRF, lockout, hostile HTML,
attachments, the actions, pairs, audit, the JSON API and its accounts. The relay runs in-process with
its console served by uvicorn on a loopback port, delivering to a real SMTP sink."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import httpx
import pytest
from sqlalchemy import func, select

from relay.clock import FixedClock
from relay.store import events
from relay.store.database import transaction
from relay.store.schema import held, message_edits, messages, outbound
from tests.consolekit import (
    ARTS_MENTEE,
    ARTS_MENTOR,
    PASSWORD,
    PUBLIC_URL,
    add_moderator,
    base_url,
    csrf_of,
    login,
    prepare,
    serving,
    session,
    token_for,
    write,
)
from tests.support import (
    MENTEE,
    MENTOR,
    Layout,
    Sink,
    acli,
    acli_json,
    acreate_pair,
    eventually,
    nothing_queued,
    rows,
    rows_now,
)


def by_rcpt(sink: Sink, address: str) -> list[EmailMessage]:
    return [r.message for r in sink.received if r.rcpt_tos == [address]]


def rejection_notices(sink: Sink) -> list[EmailMessage]:
    return [m for m in by_rcpt(sink, MENTEE["email"]) if "not delivered" in m["Subject"]]


def relay_copies(layout: Layout, message_id: str) -> int:
    """How many copies of the message were queued for the partner (sent or not)."""
    ((count,),) = rows_now(layout, select(func.count()).select_from(outbound).where(
        outbound.c.message_id == message_id, outbound.c.kind == "relay"))
    return int(count)


def labelled_cells(row: str) -> dict[str, str]:
    """A table row's cells by their data-label (the column name a phone shows), tags stripped."""
    return {label: re.sub(r"<[^>]+>", "", cell).strip()
            for label, cell in re.findall(r'<td data-label="([^"]+)"[^>]*>(.*?)</td>', row, re.S)}


def body_rows(page: str) -> list[dict[str, str]]:
    """The rows of a page's tables (headings left out), each as labelled cells."""
    return [cells for cells in map(labelled_cells, re.findall(r"<tr[^>]*>(.*?)</tr>", page, re.S)) if cells]


def held_state(layout: Layout, message_id: str) -> str:
    ((state,),) = rows_now(layout, select(held.c.state).where(held.c.message_id == message_id))
    return str(state)


async def test_every_page_sends_a_stranger_to_login(layout: Layout, sink: Sink) -> None:
    prepare(layout)
    async with serving(layout):
        pair = await acreate_pair(layout)
        held_id = await write(layout, pair, "hello", "Hi there")
        async with session(layout) as client:
            for path in ("/held", f"/held/{held_id}", f"/held/{held_id}/attachments/0", "/pairs",
                         f"/pairs/{pair['id']}", "/audit", "/held?program=stem"):
                response = await client.get(path)
                assert response.status_code == 303, path
                assert response.headers["location"].startswith("/login?next=/"), path
            response = await client.post(f"/held/{held_id}/release", data={"csrf_token": "x"})
            assert response.status_code == 303 and response.headers["location"].startswith("/login")
            for path in ("/api/held", f"/api/held/{held_id}", "/api/pairs"):
                assert (await client.get(path)).status_code == 401, path
            assert (await client.post(f"/api/held/{held_id}/release")).status_code == 401
            login_page = await client.get("/login")
            assert login_page.status_code == 200 and 'name="username"' in login_page.text
    assert held_state(layout, held_id) == "held"


async def test_login_logout_and_session_cookie(layout: Layout, sink: Sink) -> None:
    prepare(layout)
    async with serving(layout):
        await add_moderator(layout, "ana", "stem")
        async with session(layout) as client:
            response = await login(client, "ana")
            assert response.status_code == 303 and response.headers["location"] == "/held"
            cookie = response.headers["set-cookie"].lower()
            assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie
            page = await client.get("/held")
            assert page.status_code == 200 and "ana" in page.text
            csp = page.headers["content-security-policy"]
            assert "default-src 'none'" in csp and "script" not in csp and "frame-ancestors 'none'" in csp
            assert "<script" not in page.text
            # Logging out needs the form's token too; afterwards the pages are closed again.
            assert (await client.post("/logout", data={})).status_code == 403
            out = await client.post("/logout", data={"csrf_token": csrf_of(page.text)})
            assert out.status_code == 303 and out.headers["location"] == "/login"
            assert (await client.get("/held")).status_code == 303
        async with session(layout) as client:
            wrong = await login(client, "ana", "not the password")
            assert wrong.status_code == 401 and "Wrong username or password" in wrong.text
            # After logging in, the console goes where the moderator was sent from, never to another host.
            form = await client.get("/login?next=/pairs")
            response = await client.post("/login", data={"username": "ana", "password": PASSWORD, "next": "/pairs",
                                                         "csrf_token": csrf_of(form.text)})
            assert response.headers["location"] == "/pairs"
        async with session(layout) as client:
            form = await client.get("/login")
            response = await client.post("/login", data={"username": "ana", "password": PASSWORD,
                                                         "next": "//evil.example/", "csrf_token": csrf_of(form.text)})
            assert response.headers["location"] == "/held"


async def test_post_without_csrf_token_is_refused(layout: Layout, sink: Sink) -> None:
    prepare(layout)
    async with serving(layout):
        await add_moderator(layout, "ana", "stem")
        pair = await acreate_pair(layout)
        held_id = await write(layout, pair, "hello", "Hi there")
        async with session(layout) as client:
            page = await client.get("/login")
            # The login form itself carries a token.
            refused = await client.post("/login", data={"username": "ana", "password": PASSWORD})
            assert refused.status_code == 403 and "expired" in refused.text
            assert (await client.get("/held")).status_code == 303
            assert (await login(client, "ana")).status_code == 303
            token = csrf_of((await client.get(f"/held/{held_id}")).text)
            assert token != csrf_of(page.text)  # a new session at login
            for action, data in (("release", {}), ("reject", {"reason": "no"}), ("redact", {"text": "x"}),
                                 ("escalate", {}), ("release", {"csrf_token": "forged"}),
                                 ("release", {"csrf_token": csrf_of(page.text)})):
                response = await client.post(f"/held/{held_id}/{action}", data=data)
                assert response.status_code == 403, (action, data)
                assert "did not come from this console" in response.text
        # A cross-site form cannot ride on the session either: the cookie is SameSite=Strict and the
        # token is tied to the session; the message is still held and nothing reached the partner.
        assert held_state(layout, held_id) == "held"
        await sink.wait_for(2)  # the sender's held notice and the moderators' alert
        await eventually(lambda: nothing_queued(layout), timeout=20)  # all of it out before the partner's absence
        assert by_rcpt(sink, MENTOR["email"]) == []


async def test_a_moderator_cannot_see_or_act_on_another_programs_mail(layout: Layout, sink: Sink) -> None:
    prepare(layout)
    async with serving(layout):
        await add_moderator(layout, "ana", "stem")
        await add_moderator(layout, "bo", "arts")
        stem = await acreate_pair(layout)
        arts = await acreate_pair(layout, ARTS_MENTOR, ARTS_MENTEE, "arts")
        stem_id = await write(layout, stem, "stem news", "Hi there")
        arts_id = await write(layout, arts, "arts news", "Hello", sender=ARTS_MENTEE)
        async with session(layout, "bo") as client:
            queue = await client.get("/held")
            assert "arts news" in queue.text and "stem news" not in queue.text
            token = csrf_of(queue.text)
            assert (await client.get(f"/held/{stem_id}")).status_code == 404
            assert (await client.get(f"/held/{stem_id}/attachments/0")).status_code == 404
            for action in ("release", "reject", "redact", "escalate"):
                response = await client.post(f"/held/{stem_id}/{action}",
                                             data={"csrf_token": token, "reason": "r", "text": "t"})
                assert response.status_code == 404, action
            assert (await client.get(f"/pairs/{stem['id']}")).status_code == 404
            pairs = await client.get("/pairs")
            assert "Willow" in pairs.text and "Oak" not in pairs.text
            audit = await client.get("/audit")
            assert stem_id not in audit.text and arts_id in audit.text
            # The same through the API with bo's token.
            api = {"authorization": f"Bearer {await token_for(layout, 'bo')}"}
            listed = (await client.get("/api/held", headers=api)).json()
            assert [i["id"] for i in listed] == [arts_id]
            assert (await client.get(f"/api/held/{stem_id}", headers=api)).status_code == 404
            assert (await client.post(f"/api/held/{stem_id}/release", headers=api)).status_code == 404
            assert (await client.post(f"/api/held/{stem_id}/reject", headers=api,
                                      json={"reason": "x"})).status_code == 404
            assert [p["id"] for p in (await client.get("/api/pairs", headers=api)).json()] == [arts["id"]]
            assert (await client.get(f"/api/pairs/{stem['id']}", headers=api)).status_code == 404
        async with session(layout, "ana") as client:  # and the other way round, for the stem moderator
            queue = await client.get("/held")
            assert "stem news" in queue.text and "arts news" not in queue.text
            assert (await client.get(f"/held/{arts_id}")).status_code == 404
        await add_moderator(layout, "root", admin=True)
        async with session(layout, "root") as client:  # an admin sees both
            queue = await client.get("/held")
            assert "stem news" in queue.text and "arts news" in queue.text
    assert held_state(layout, stem_id) == "held" and held_state(layout, arts_id) == "held"


async def test_login_lockout_survives_a_restart_and_ends_in_time(layout: Layout, sink: Sink) -> None:
    prepare(layout)
    clock = FixedClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    async with serving(layout, clock):
        await add_moderator(layout, "ana", "stem")
        async with session(layout) as client:
            for attempt in range(4):
                assert (await login(client, "ana", f"guess {attempt}")).status_code == 401
            locked = await login(client, "ana", "guess 5")
            assert locked.status_code == 429 and "Too many failed attempts" in locked.text
            # Locked: even the right password is refused.
            assert (await login(client, "ana")).status_code == 429
    async with serving(layout, clock), session(layout) as client:  # a restart does not lift the lock
        response = await login(client, "ana")
        assert response.status_code == 429 and "Try again after 09:15 UTC" in response.text
        clock.advance(timedelta(minutes=16))
        assert (await login(client, "ana")).status_code == 303
    kinds = [e["kind"] for e in await acli_json(layout, "events", "list", "--json")]
    assert kinds.count("login_locked") == 1 and kinds.count("login") == 1


HOSTILE_HTML = """<html><head><style>body {{ background: url(http://127.0.0.1:{port}/css-bg) }}
@import url("http://127.0.0.1:{port}/css-import");</style>
<link rel="stylesheet" href="http://127.0.0.1:{port}/link-css"></head>
<body onload="alert('onload')">
<p>Hello <b>friend</b>, see the plan below.</p>
<script>alert('script'); fetch('http://127.0.0.1:{port}/script')</script>
<img src="http://127.0.0.1:{port}/remote-image" onerror="alert('onerror')">
<div style="background-image: url(http://127.0.0.1:{port}/inline-style)">styled</div>
<a href="javascript:alert('link')">click me</a>
<a href="http://127.0.0.1:{port}/tracked-link">a remote link</a>
<svg onload="alert('svg')"><script>alert('svg script')</script></svg>
<iframe src="http://127.0.0.1:{port}/frame"></iframe>
<form action="http://127.0.0.1:{port}/form"><input name="q"><button>go</button></form>
<meta http-equiv="refresh" content="0;url=http://127.0.0.1:{port}/refresh">
</body></html>"""


def hostile_message(pair: dict[str, str], port: int) -> bytes:
    message = EmailMessage()
    message["From"] = f"Jane Doe <{MENTEE['email']}>"
    message["To"] = pair["mentor_alias"]
    message["Subject"] = "a hostile page"
    message["Message-ID"] = "<hostile@client.example>"
    message.set_content("Hello friend, see the plan below.")
    message.add_alternative(HOSTILE_HTML.format(port=port), subtype="html")
    return message.as_bytes()


async def test_hostile_html_is_shown_sanitised_in_a_sandboxed_frame(layout: Layout, sink: Sink) -> None:
    prepare(layout)
    async with serving(layout):
        await add_moderator(layout, "ana", "stem")
        pair = await acreate_pair(layout)
        held_id = await write(layout, pair, "", "", raw=hostile_message(pair, 9))
        async with session(layout, "ana") as client:
            page = await client.get(f"/held/{held_id}")
    assert page.status_code == 200
    frames = re.findall(r"<iframe([^>]*)>", page.text)
    assert len(frames) == 1 and 'sandbox=""' in frames[0]
    srcdoc = html.unescape(re.search(r'srcdoc="([^"]*)"', frames[0]).group(1))  # type: ignore[union-attr]
    assert "Hello <b>friend</b>" in srcdoc and "click me" in srcdoc and "styled" in srcdoc
    lowered = srcdoc.lower()
    for active in ("<script", "onload", "onerror", "javascript:", "127.0.0.1", "<img", "<style", "style=",
                   "<link", "<iframe", "<form", "<meta", "href", "src=", "url("):
        assert active not in lowered, active
    # Outside the frame the page carries none of it either, and the policy forbids scripts and remote loads.
    outside = page.text.replace(frames[0], "")
    assert "<script" not in outside.lower() and "alert(" not in outside
    assert page.headers["content-security-policy"].startswith("default-src 'none'")


async def test_attachments_are_listed_and_downloaded_never_rendered(layout: Layout, sink: Sink) -> None:
    prepare(layout)
    async with serving(layout):
        await add_moderator(layout, "ana", "stem")
        pair = await acreate_pair(layout)
        message = EmailMessage()
        message["From"] = f"Jane Doe <{MENTEE['email']}>"
        message["To"] = pair["mentor_alias"]
        message["Subject"] = "my drawing"
        message.set_content("Here is the page I made.")
        page_html = b"<html><script>alert(1)</script>page</html>"
        message.add_attachment(page_html, maintype="text", subtype="html", filename="page.html")
        message.add_attachment(b"%PDF-1.4 " + b"x" * 3000, maintype="application", subtype="pdf",
                               filename="../../plan.pdf")
        held_id = await write(layout, pair, "", "", raw=message.as_bytes())
        async with session(layout, "ana") as client:
            view = await client.get(f"/held/{held_id}")
            links = re.findall(rf'href="(/held/{held_id}/attachments/\d+)"[^>]*>([^<]+)</a> '
                               r'<span class="meta">([^<]+)</span>', view.text)
            assert [(name, meta) for _, name, meta in links] == [
                ("page.html", f"text/html, {len(page_html)} B"), ("../../plan.pdf", "application/pdf, 2.9 KB")]
            download = await client.get(links[0][0])
            assert download.content == page_html
            assert download.headers["content-type"] == "application/octet-stream"
            assert download.headers["content-disposition"] == 'attachment; filename="page.html"'
            assert download.headers["x-content-type-options"] == "nosniff"
            pdf = await client.get(links[1][0])
            assert pdf.headers["content-disposition"] == 'attachment; filename=".._.._plan.pdf"'
            assert (await client.get(f"/held/{held_id}/attachments/0")).status_code == 404  # the text part


@pytest.mark.parametrize("workers", [0, 1], ids=["copy-in-a-thread", "copy-in-a-worker-process"])
async def test_release_from_the_console_is_delivered_once(layout: Layout, sink: Sink, workers: int) -> None:
    layout.overrides["workers"] = workers  # the released copy is built off the event loop either way
    prepare(layout)
    async with serving(layout):
        await add_moderator(layout, "ana", "stem")
        pair = await acreate_pair(layout)
        held_id = await write(layout, pair, "question", "Can we keep this secret?")
        async with session(layout, "ana") as client:
            view = await client.get(f"/held/{held_id}")
            assert '<mark class="finding">secret</mark>' in view.text
            # The preview is the anonymised copy: the partner sees handles, never the sender's address.
            preview = view.text.split("As it would be delivered", 1)[1]
            assert "Maple" in preview and MENTEE["email"] not in preview and "Jane" not in preview
            token = csrf_of(view.text)
            first = await client.post(f"/held/{held_id}/release", data={"csrf_token": token})
            assert first.status_code == 200 and "Released" in first.text
            again = await client.post(f"/held/{held_id}/release", data={"csrf_token": token})
            assert "released already; nothing changed" in again.text
        delivered = await eventually(lambda: by_rcpt(sink, MENTOR["email"]))
        assert relay_copies(layout, held_id) == 1  # queued once: there is no second copy to arrive later
        assert len(delivered) == 1 and delivered[0].get_content().strip() == "Can we keep this secret?"
    result = await acli(layout, "held", "release", held_id, "--json")  # the CLI after the console: still once
    assert json.loads(result.stdout)["status"] == "already-released"
    found = await acli_json(layout, "events", "list", "--kind", "released", "--json")
    assert [(e["actor"], e["message_id"]) for e in found] == [("ana", held_id)]


async def test_reject_tells_the_sender_and_escalate_tells_the_coordinator(layout: Layout, sink: Sink) -> None:
    prepare(layout)
    async with serving(layout):
        await add_moderator(layout, "ana", "stem")
        pair = await acreate_pair(layout)
        first = await write(layout, pair, "plans", "Let us meet")
        second = await write(layout, pair, "worry", "Something is wrong at home")
        await sink.wait_for(4)
        async with session(layout, "ana") as client:
            token = csrf_of((await client.get("/held")).text)
            empty = await client.post(f"/held/{first}/reject", data={"csrf_token": token, "reason": "  "})
            assert empty.status_code == 400 and held_state(layout, first) == "held"
            response = await client.post(f"/held/{first}/reject", data={
                "csrf_token": token, "reason": "Please meet only through the program."})
            assert "Rejected" in response.text
            escalated = await client.post(f"/held/{second}/escalate", data={
                "csrf_token": token, "note": "Possible safeguarding issue"})
            assert "coordinator@school.example" in escalated.text and "stays held" in escalated.text
        notice = await eventually(lambda: rejection_notices(sink))
        assert "wrote to you:\r\n\r\nPlease meet only through the program.\r\n" in notice[0].get_content()
        told = (await eventually(lambda: by_rcpt(sink, "coordinator@school.example")))[0]
        text = told.get_content()
        assert "Moderator ana asks you" in text and "Possible safeguarding issue" in text
        assert f"Review it: {PUBLIC_URL}/held/{second}" in text and "127.0.0.1" not in text
        assert MENTEE["email"] not in text
    assert held_state(layout, second) == "held" and held_state(layout, first) == "rejected"
    found = await acli_json(layout, "events", "list", "--json")
    assert {(e["kind"], e["actor"], e["message_id"]) for e in found if e["actor"] == "ana"} >= {
        ("rejected", "ana", first), ("escalated", "ana", second)}


async def test_redact_and_release_delivers_the_edit_and_keeps_the_original(layout: Layout, sink: Sink) -> None:
    prepare(layout)
    async with serving(layout):
        await add_moderator(layout, "ana", "stem")
        pair = await acreate_pair(layout)
        original_body = "My secret number is 555 0100, call me."
        held_id = await write(layout, pair, "call me", original_body)
        async with session(layout, "ana") as client:
            view = await client.get(f"/held/{held_id}")
            response = await client.post(f"/held/{held_id}/redact", data={
                "csrf_token": csrf_of(view.text), "text": "My number is [removed by the moderator], call me."})
            assert response.status_code == 200 and "edited text" in response.text
        delivered = (await eventually(lambda: by_rcpt(sink, MENTOR["email"])))
        assert len(delivered) == 1
        assert delivered[0].get_content().strip() == "My number is [removed by the moderator], call me."
        assert delivered[0]["Subject"] == "call me" and "Maple" in str(delivered[0]["From"])
    ((raw,),) = await rows(layout, select(messages.c.raw).where(messages.c.id == held_id))
    edits = [tuple(row) for row in await rows(layout, select(message_edits.c.message_id, message_edits.c.moderator))]
    assert original_body.encode() in raw and edits == [(held_id, "ana")]
    found = await acli_json(layout, "events", "list", "--json")
    assert [e["kind"] for e in found if e["message_id"] == held_id and e["actor"] == "ana"] == [
        "edited", "released"]


async def test_pairs_show_health_and_the_timeline(layout: Layout, sink: Sink) -> None:
    prepare(layout)
    clock = FixedClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    async with serving(layout, clock) as relay:
        await add_moderator(layout, "ana", "stem")
        pair = await acreate_pair(layout)
        await write(layout, pair, "first question", "Hi")
        clock.advance(timedelta(hours=2))
        await write(layout, pair, "second question", "Are you there?")
        clock.advance(timedelta(hours=28))
        async with transaction(relay.engine) as connection:  # what the nudge sweeps record
            await events.record(connection, "nudge.first", clock.now(), pair_id=pair["id"])
            await events.record(connection, "nudge.second", clock.now(), pair_id=pair["id"])
        async with session(layout, "ana") as client:
            api = {"authorization": f"Bearer {await token_for(layout, 'ana')}"}
            listed = (await client.get("/api/pairs", headers=api)).json()
            assert len(listed) == 1
            health = listed[0]
            assert (health["waiting_mentee_messages"], health["waiting_seconds"], health["nudges_sent"],
                    health["held"]) == (2, 30 * 3600, 2, 2)
            assert health["last_message_at"].startswith("2026-03-02T11:00")
            page = await client.get("/pairs")
            row = re.search(r"<tr class=\"waiting\">(.*?)</tr>", page.text, re.S).group(1)  # type: ignore[union-attr]
            assert labelled_cells(row) == {"Pair": "Oak &amp; Maple", "Status": "active",
                                           "Last message": "2026-03-02 11:00", "Mentee waiting": "2 messages, 30 h",
                                           "Nudges sent": "2", "Held": "2"}
            detail = await client.get(f"/pairs/{pair['id']}")
            assert detail.text.index("first question") < detail.text.index("second question")
            assert (await client.get(f"/api/pairs/{pair['id']}", headers=api)).json()["timeline"][1]["subject"] == (
                "second question")
        # The mentor answers: nobody waits any more.
        await write(layout, pair, "answer", "Sorry, I was away", sender=MENTOR, alias_key="mentee_alias")
        async with session(layout, "ana") as client:
            answered = (await client.get("/api/pairs", headers=api)).json()[0]
            assert (answered["waiting_mentee_messages"], answered["waiting_seconds"]) == (0, None)
        # The mentee asks again: only what came after the answer waits.
        clock.advance(timedelta(hours=1))
        await write(layout, pair, "third question", "One more thing")
        clock.advance(timedelta(hours=5))
        async with session(layout, "ana") as client:
            again = (await client.get("/api/pairs", headers=api)).json()[0]
            assert (again["waiting_mentee_messages"], again["waiting_seconds"]) == (1, 5 * 3600)


async def test_audit_log_lists_actions_and_filters(layout: Layout, sink: Sink) -> None:
    prepare(layout)
    async with serving(layout):
        await add_moderator(layout, "ana", "stem")
        pair = await acreate_pair(layout)
        held_id = await write(layout, pair, "hello", "Hi")
        async with session(layout, "ana") as client:
            token = csrf_of((await client.get("/held")).text)
            await client.post(f"/held/{held_id}/release", data={"csrf_token": token})
            everything = (await client.get("/audit")).text
            assert all(kind in everything for kind in ("received", "decision: hold", "released"))
            released = (await client.get("/audit?kind=released")).text
            assert [(r["What"], r["Who"]) for r in body_rows(released)] == [("released", "ana")]
            by_relay = [r["Who"] for r in body_rows((await client.get("/audit?actor=relay")).text)]
            assert by_relay and set(by_relay) == {"relay"}


async def test_api_lists_shows_releases_and_rejects(layout: Layout, sink: Sink) -> None:
    prepare(layout)
    async with serving(layout):
        await add_moderator(layout, "ana", "stem")
        pair = await acreate_pair(layout)
        first = await write(layout, pair, "one", "First secret message")
        second = await write(layout, pair, "two", "Second message")
        token = await token_for(layout, "ana")
        async with httpx.AsyncClient(base_url=base_url(layout), timeout=30) as client:
            api = {"authorization": f"Bearer {token}"}
            assert (await client.get("/api/held", headers={"authorization": "Bearer wrong"})).status_code == 401
            listed = (await client.get("/api/held", headers=api)).json()
            assert [i["id"] for i in listed] == [first, second]
            shown = (await client.get(f"/api/held/{first}", headers=api)).json()
            assert {"rule": "keywords", "kind": "secrecy", "match": "secret", "action": "hold"} in shown["reasons"]
            assert shown["preview"]["text"].strip() == "First secret message"
            assert "Maple" in shown["preview"]["headers"]["From"]
            results = [(await client.post(f"/api/held/{first}/release", headers=api)).json()["status"]
                       for _ in range(2)]
            assert results == ["released", "already-released"]
            no_reason = await client.post(f"/api/held/{second}/reject", headers=api, json={})
            assert no_reason.status_code == 400 and "reason" in no_reason.json()["error"]
            rejected = await client.post(f"/api/held/{second}/reject", headers=api, json={"reason": "Off topic"})
            assert rejected.json()["status"] == "rejected"
            # A session cookie does not open the API, and the API's token does not open the pages.
            assert (await client.get("/held", headers=api)).status_code == 303
            description = (await client.get("/api/openapi.json")).json()
            assert description["openapi"].startswith("3.")
            assert {"/api/held", "/api/held/{id}", "/api/held/{id}/release", "/api/held/{id}/reject",
                    "/api/pairs", "/api/pairs/{id}"} <= set(description["paths"])
        delivered = await eventually(lambda: by_rcpt(sink, MENTOR["email"]))
        assert len(delivered) == 1 and delivered[0]["Subject"] == "one"
        notice = await eventually(lambda: rejection_notices(sink))
        assert "Off topic" in notice[0].get_content()
    # A new token replaces the old one.
    newer = await token_for(layout, "ana")
    async with serving(layout), httpx.AsyncClient(base_url=base_url(layout), timeout=30) as client:
        assert (await client.get("/api/held", headers={"authorization": f"Bearer {token}"})).status_code == 401
        assert (await client.get("/api/held", headers={"authorization": f"Bearer {newer}"})).status_code == 200


async def test_an_html_only_message_shows_its_words_with_the_findings_marked(layout: Layout, sink: Sink) -> None:
    prepare(layout)
    async with serving(layout):
        await add_moderator(layout, "ana", "stem")
        pair = await acreate_pair(layout)
        message = EmailMessage()
        message["From"] = f"Jane Doe <{MENTEE['email']}>"
        message["To"] = pair["mentor_alias"]
        message["Subject"] = "formatted"
        message.set_content("<p>This is <b>secret</b> &amp; urgent</p>", subtype="html")
        held_id = await write(layout, pair, "", "", raw=message.as_bytes())
        async with session(layout, "ana") as client:
            view = await client.get(f"/held/{held_id}")
    text = re.search(r'<pre class="text">(.*?)</pre>', view.text, re.S).group(1)  # type: ignore[union-attr]
    assert text.strip() == 'This is <mark class="finding">secret</mark> &amp; urgent'
