"""Console roles over real HTTP: a viewer reads and acts on nothing; a coordinator enrols, marks away and
back, resumes and closes its programs' pairs from the console (each an event with its name); a moderator
may not manage pairs. Audit details are readable fields, with real addresses hidden from roles that may
not see them; a held message's history says what went to whom."""

from __future__ import annotations

import html
import json
import re
from datetime import date, timedelta

from relay.store.events import list_events
from relay.store.pairs import get_pair
from tests.consolekit import (
    ARTS_MENTEE,
    ARTS_MENTOR,
    MODERATOR_MAILBOX,
    add_moderator,
    csrf_of,
    prepare,
    serving,
    session,
    token_for,
    write,
)
from tests.support import DOMAIN, MENTEE, MENTOR, Layout, Sink, acli, acreate_pair, eventually, send, simple_message
from tests.test_console import body_rows, by_rcpt, held_state

STRANGER = "stranger@elsewhere.example"


async def test_a_viewer_reads_but_acts_on_nothing(layout: Layout, sink: Sink) -> None:
    prepare(layout)
    async with serving(layout):
        await add_moderator(layout, "vic", "stem", role="viewer")
        pair = await acreate_pair(layout)
        held_id = await write(layout, pair, "a question", "Can we keep this secret?")
        async with session(layout, "vic") as client:
            assert "a question" in (await client.get("/held")).text
            shown = await client.get(f"/held/{held_id}")
            assert shown.status_code == 200 and "secret" in shown.text
            assert "Release</button>" not in shown.text and "reads held mail" in shown.text
            token = csrf_of(shown.text)
            for action, data in (("release", {}), ("reject", {"reason": "no"}), ("redact", {"text": "x"}),
                                 ("escalate", {})):
                refused = await client.post(f"/held/{held_id}/{action}", data={"csrf_token": token, **data})
                assert refused.status_code == 403 and "viewer (read-only)" in refused.text, action
            assert "Manage" not in (await client.get(f"/pairs/{pair['id']}")).text
            assert (await client.get("/pairs/new")).status_code == 403
            assert (await client.post(f"/pairs/{pair['id']}/close",
                                      data={"csrf_token": token, "confirm": "yes"})).status_code == 403
            api = {"authorization": f"Bearer {await token_for(layout, 'vic')}"}
            assert [i["id"] for i in (await client.get("/api/held", headers=api)).json()] == [held_id]
            assert (await client.post(f"/api/held/{held_id}/release", headers=api)).status_code == 403
    assert held_state(layout, held_id) == "held"
    assert json.loads((await acli(layout, "pair", "show", str(pair["id"]), "--json")).stdout)["status"] == "active"


async def test_a_coordinator_manages_its_programs_pairs_from_the_console(layout: Layout, sink: Sink) -> None:
    prepare(layout)
    async with serving(layout) as relay:
        await add_moderator(layout, "carla", "stem", role="coordinator")
        await add_moderator(layout, "ana", "stem")
        arts = await acreate_pair(layout, ARTS_MENTOR, ARTS_MENTEE, "arts")
        async with session(layout, "carla") as client:
            form = await client.get("/pairs/new")
            assert form.status_code == 200 and '<option value="arts"' not in form.text  # its programs only
            fields = {"csrf_token": csrf_of(form.text), "program": "stem", "mentor_email": MENTOR["email"],
                      "mentor_name": MENTOR["name"], "mentor_handle": "José", "mentee_email": MENTEE["email"],
                      "mentee_name": MENTEE["name"], "mentee_handle": MENTEE["handle"]}
            bad = await client.post("/pairs/new", data=fields)  # "José" is part of the real name
            assert bad.status_code == 400 and "must not contain their real name" in bad.text
            assert f'value="{MENTOR["email"]}"' in bad.text  # what was typed is kept
            enrolled = await client.post("/pairs/new", data={**fields, "mentor_handle": MENTOR["handle"]})
            assert enrolled.status_code == 303
            pair_id = int(re.fullmatch(r"/pairs/(\d+)\?enrolled=1", enrolled.headers["location"]).group(1))  # type: ignore[union-attr]
            page = await client.get(enrolled.headers["location"])
            assert "Enrolled" in page.text and MENTOR["email"] in page.text  # a coordinator sees the addresses
            token = csrf_of(page.text)
            # Away, then back: the partner is told each time.
            until = (date.today() + timedelta(days=10)).isoformat()
            away = await client.post(f"/pairs/{pair_id}/away", data={"csrf_token": token, "role": "mentor",
                                                                     "until": until})
            assert away.status_code == 200 and f"Oak (mentor) is away until {until}" in away.text
            told = await eventually(lambda: [m for m in by_rcpt(sink, MENTEE["email"]) if "away" in m["Subject"]])
            assert "Oak" in told[0]["Subject"]
            back = await client.post(f"/pairs/{pair_id}/away", data={"csrf_token": token, "role": "mentor",
                                                                     "until": ""})
            assert "Oak (mentor) is back" in back.text
            # A concern pauses the pair; the coordinator resumes it from the console.
            code, text = await send(layout.smtp_port, simple_message(MENTEE["email"], f"concern@{DOMAIN}", "worried",
                                                                     "He asked for my phone number."),
                                    MENTEE["email"], f"concern@{DOMAIN}")
            assert code == 250, text
            paused = await client.get(f"/pairs/{pair_id}")
            assert "Resume the pair" in paused.text
            resumed = await client.post(f"/pairs/{pair_id}/resume", data={"csrf_token": token})
            assert "Resumed" in resumed.text
            # Another program's pair is not found; closing needs the box ticked.
            assert (await client.post(f"/pairs/{arts['id']}/close",
                                      data={"csrf_token": token, "confirm": "yes"})).status_code == 404
            unconfirmed = await client.post(f"/pairs/{pair_id}/close", data={"csrf_token": token})
            assert unconfirmed.status_code == 400
            closed = await client.post(f"/pairs/{pair_id}/close", data={"csrf_token": token, "confirm": "yes",
                                                                        "reason": "The term is over"})
            assert closed.status_code == 200 and "is closed" in closed.text and "sent a farewell" in closed.text
        async with session(layout, "ana") as client:  # a moderator decides on mail, but manages no pair
            page = await client.get(f"/pairs/{pair_id}")
            assert page.status_code == 200 and MENTOR["email"] not in page.text and "Manage" not in page.text
            assert (await client.get("/pairs/new")).status_code == 403
        async with relay.engine.connect() as connection:
            pair = await get_pair(connection, pair_id)
            found = await list_events(connection, pair_id=pair_id)
    assert pair is not None and pair.status == "closed"
    # back: the away period ended the day before (kept, so that a message that waited through it waits from then)
    assert pair.mentor.away_until is not None and pair.mentor.away_until < until
    by_carla = [e["kind"] for e in found if e["actor"] == "carla"]
    assert by_carla == ["pair_created", "away.set", "away.cleared", "pair.resumed", "pair_closed"]
    (closing,) = [e for e in found if e["kind"] == "pair_closed"]
    assert closing["detail"]["reason"] == "The term is over" and [e["kind"] for e in found].count("farewell") == 2


async def test_audit_and_history_are_readable_and_hide_addresses(layout: Layout, sink: Sink) -> None:
    prepare(layout)
    async with serving(layout):
        await add_moderator(layout, "ana", "stem")
        await add_moderator(layout, "root", admin=True)
        pair = await acreate_pair(layout)
        held_id = await write(layout, pair, "a question", "Can we keep this secret?")
        code, _ = await send(layout.smtp_port, simple_message(STRANGER, pair["mentor_alias"], "hi", "hello"),
                             STRANGER, pair["mentor_alias"])
        assert code == 550
        await sink.wait_for(2)  # the sender's held notice and the moderators' alert
        async with session(layout, "ana") as client:
            page = await client.get(f"/held/{held_id}")
            released = await client.post(f"/held/{held_id}/release", data={"csrf_token": csrf_of(page.text)})
            assert "Released" in released.text
            await eventually(lambda: by_rcpt(sink, MENTOR["email"]))
            history = await eventually(lambda: _history(client, held_id, "sent to the partner"))
            assert "notice to the sender (Maple)" in history and "alert to the moderators" in history
            assert "sent to the partner (Oak)" in history and "released by ana" in history
            assert "delivered" not in history
            audit = await client.get(f"/audit?pair={pair['id']}")
            rows = body_rows(audit.text)
            refused = next(r for r in rows if r["What"] == "refused")
            assert "(hidden)" in refused["Details"] and STRANGER not in audit.text
            assert MENTEE["email"] not in audit.text and "{'" not in audit.text and '{"' not in audit.text
            decision = next(r for r in rows if r["What"] == "decision: hold")
            assert 'keywords (secrecy): "secret"' in html.unescape(decision["Details"])
        async with session(layout, "root") as client:  # an admin may see the stranger's address
            audit = await client.get(f"/audit?pair={pair['id']}")
            assert STRANGER in audit.text
    assert MODERATOR_MAILBOX in [r.rcpt_tos[0] for r in sink.received]


async def _history(client: object, held_id: str, wanted: str) -> str | None:
    page = await client.get(f"/held/{held_id}")  # type: ignore[attr-defined]
    found = re.search(r'<ol class="history">(.*?)</ol>', page.text, re.S)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1))) if found else ""
    return text if wanted in text else None


SCHOOL = "jane.doe.2014@pupils.springfield-school.example"  # a child's school account, not enrolled
ODD_SENDERS = ['"jane doe"@school.example', "jane@[192.0.2.1]", "jane@localhost"]  # quoted, IP literal, no dot


async def test_the_events_api_hides_real_and_ip_addresses_from_viewers_and_moderators(layout: Layout,
                                                                                      sink: Sink) -> None:
    """GET /api/events hides what /audit hides, from the same roles: a refused child's school address,
    addresses spelt oddly (a quoted local part, an IP literal, a domain without a dot) and the client's IP
    address read "(hidden)"; an alias on the relay's domain stays; an admin still reads everything."""
    prepare(layout)
    async with serving(layout):
        await add_moderator(layout, "ana", "stem")
        await add_moderator(layout, "vic", "stem", role="viewer")
        await add_moderator(layout, "root", admin=True)
        pair = await acreate_pair(layout)
        for sender in [SCHOOL, *ODD_SENDERS]:
            code, reply = await send(layout.smtp_port, simple_message(f"Jane Doe <{SCHOOL}>", pair["mentor_alias"],
                                                                      "from school", "hi"),
                                     sender, pair["mentor_alias"])
            assert code == 550, (sender, reply)
        for who in ("ana", "vic"):
            token = await token_for(layout, who)
            async with session(layout, who) as client:
                answer = await client.get("/api/events", headers={"authorization": f"Bearer {token}"})
                audit = await client.get(f"/audit?pair={pair['id']}")
            assert answer.status_code == 200
            refusals = [e for e in answer.json()["events"] if e["kind"] == "refused"]
            assert len(refusals) == 4, answer.text
            for text in (answer.text, html.unescape(audit.text)):
                for secret in (SCHOOL, *ODD_SENDERS, "192.0.2.1", "jane@localhost", "127.0.0.1"):
                    assert secret not in text, (who, secret)
            for event in refusals:
                detail = event["detail"]
                assert detail["remote"] == "(hidden)" and detail["mail_from"] == "(hidden)", detail
                assert detail["rcpt"] == pair["mentor_alias"] and detail["reason"] == "stranger", detail
            accepted = [e for e in answer.json()["events"] if e["kind"] == "pair_created"]
            assert accepted and MENTEE["email"] not in json.dumps(accepted)
        token = await token_for(layout, "root")
        async with session(layout) as client:
            answer = await client.get("/api/events", headers={"authorization": f"Bearer {token}"})
        refusals = [e["detail"] for e in answer.json()["events"] if e["kind"] == "refused"]
        assert {d["mail_from"] for d in refusals} == {SCHOOL, *ODD_SENDERS}
        assert {d["remote"] for d in refusals} == {"127.0.0.1"} and refusals[0]["header_from"] == SCHOOL


async def test_a_strangers_words_in_the_record_are_for_coordinators_and_admins_only(layout: Layout,
                                                                                   sink: Sink) -> None:
    """A stranger's refused disclosure gives a phone number and a home address; its stranger_alert event keeps the
    scrubbed text for the record. A moderator's /api/events and /audit show the event without the text, the
    subject or the number ("(hidden)"); the coordinator and an admin read it all."""
    from tests.safeguarding_kit import use_shipped_policy

    layout.write()
    use_shipped_policy(layout)
    words = ("Its Maple on my mums phone, my stepdad hits me. Call 07700 900123, we live at 12 Elm Road, Leeds. "
             "Write to maple.real@gmail.com")
    # (the sign's matched words, "hits me", stay: what was found, no contact detail)
    secrets = ("07700 900123", "12 Elm Road", "maple.real@gmail.com", "sarah.doe@home.example", "on my mums phone",
               "its Maple at home")
    async with serving(layout) as relay:
        await add_moderator(layout, "ana", "stem")
        await add_moderator(layout, "cora", "stem", role="coordinator")
        await add_moderator(layout, "root", admin=True)
        pair = await acreate_pair(layout)
        raw = simple_message("Mum <sarah.doe@home.example>", pair["mentor_alias"], "its Maple at home 07700 900123",
                             words)
        code, _ = await send(layout.smtp_port, raw, "sarah.doe@home.example", pair["mentor_alias"])
        assert code == 550
        async with relay.engine.connect() as connection:
            [stored] = [e["detail"] for e in await list_events(connection, kind="stranger_alert")]
        assert "07700 900123" in stored["text"] and "12 Elm Road" in stored["text"]  # the record keeps it
        for who in ("ana", "cora", "root"):
            token = await token_for(layout, who)
            async with session(layout, who) as client:
                answer = await client.get("/api/events", headers={"authorization": f"Bearer {token}"})
                audit = html.unescape((await client.get(f"/audit?pair={pair['id']}")).text)
            assert answer.status_code == 200 and "stranger_alert" in answer.text
            [alert] = [e["detail"] for e in answer.json()["events"] if e["kind"] == "stranger_alert"]
            if who == "ana":
                for text in (answer.text, audit):
                    for secret in secrets:
                        assert secret not in text, (who, secret)
                assert alert["text"] == "(hidden)" and alert["subject"] == "(hidden)", alert
                assert alert["findings"] and all(f["kind"] for f in alert["findings"])  # what was found stays
            else:
                assert alert["text"] == stored["text"] and alert["subject"] == stored["subject"]
                for secret in ("07700 900123", "12 Elm Road", "sarah.doe@home.example"):
                    assert secret in audit, (who, secret)
