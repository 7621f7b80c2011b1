"""One person's data rights through the real CLI on a record the real relay wrote: `person export` gives
everything held about them (0600, recorded, nobody else's personal data), `person erase` asks for --yes,
is refused under legal hold, erases them (recorded, verify still passes), and afterwards their address is
no longer in the SQLite database file."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import textwrap
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiosmtplib
import pytest
import yaml
from sqlalchemy import select

from relay.archive import person as data_rights
from relay.config import load_settings
from relay.service import Relay
from relay.store import events
from relay.store.database import create_engine, transaction
from relay.store.schema import events as events_table
from relay.store.schema import members, messages, outbound, pairs
from tests.database import server_url
from tests.decode_all import everything
from tests.store_scan import traces
from tests.support import (
    DOMAIN,
    MENTEE,
    MENTOR,
    Layout,
    Sink,
    acli,
    acli_json,
    acreate_pair,
    cli,
    eventually,
    nothing_queued,
    rows,
    send,
    simple_message,
)
from tests.test_groups import PEOPLE, make_group
from tests.test_retention import CONTACTS_HELD, refused_quoting_the_mentee

SECOND = "jane.phone@mobile.example.org"  # the mentee's phone, added as a further address
MENTOR_PHONE = "+1 415 555 0199"


async def record(layout: Layout, sink: Sink) -> dict:  # type: ignore[type-arg]
    """A pair with mail both ways (the mentee also from a second address), and a mentor's message held
    for the phone number in it."""
    (layout.root / "policies" / "adult-professional.yaml").write_text(textwrap.dedent(CONTACTS_HELD))
    relay = Relay(load_settings(layout.config))
    await relay.start()
    try:
        pair = await acreate_pair(layout)
        added = await acli(layout, "pair", "address", "add", str(pair["id"]), "--role", "mentee", "--email", SECOND)
        assert added.returncode == 0, added.stderr

        async def write(sender: str, alias: str, subject: str, body: str) -> None:
            code, reply = await send(layout.smtp_port, simple_message(sender, alias, subject, body), sender, alias)
            assert code == 250, reply

        await write(f"{MENTEE['name']} <{MENTEE['email']}>", pair["mentor_alias"], "Hello", "I like rockets. Jane")
        await write(SECOND, pair["mentor_alias"], "From my phone", "Sent from my phone.")
        await write(f"{MENTOR['name']} <{MENTOR['email']}>", pair["mentee_alias"], "Re: Hello", "Rockets are great.")
        await write(MENTOR["email"], pair["mentee_alias"], "Call", f"Call me on {MENTOR_PHONE}.")  # held
        await sink.wait_for(3)
    finally:
        await relay.stop()
    return pair


def mentions(text: str, *words: str) -> list[str]:
    return [w for w in words if w.casefold() in text.casefold()]


async def test_person_export_holds_everything_about_them_and_nothing_of_others(
        layout: Layout, sink: Sink, tmp_path: Path) -> None:
    pair = await record(layout, sink)
    target = tmp_path / "jane.zip"
    result = await acli(layout, "person", "export", "--email", SECOND.upper(), "-o", str(target), "--json")
    assert result.returncode == 0, result.stderr
    assert target.stat().st_mode & 0o777 == 0o600
    summary = json.loads(result.stdout)
    assert (summary["enrolments"], summary["written"], summary["written-as-delivered"]) == (1, 2, 2)

    with zipfile.ZipFile(target) as archive:
        names = archive.namelist()
        data = json.loads(archive.read("person.json"))
        written = [archive.read(n) for n in names if n.startswith("messages/written/")]
        delivered = [archive.read(n) for n in names if n.startswith("messages/written-as-delivered/")]
        to_them = [archive.read(n) for n in names if n.startswith("messages/to-you/")]
        readme = archive.read("README.txt").decode()
    stored = [bytes(r.raw) for r in await rows(layout, select(messages.c.raw).join(
        members, members.c.id == messages.c.sender_id).where(members.c.role == "mentee")
        .order_by(messages.c.received_at))]
    assert written == stored  # byte-exact, as received
    assert all(b"Maple" in raw and MENTEE["email"].encode() not in raw for raw in delivered)  # as delivered
    assert len(to_them) == 1 and b"Rockets are great." in to_them[0]  # the held message is not delivered
    assert "messages/to-you/" in readme

    (enrolment,) = data["enrolments"]
    assert (enrolment["name"], enrolment["email"], enrolment["handle"]) == (MENTEE["name"], MENTEE["email"], "Maple")
    assert enrolment["other_addresses"] == [SECOND]
    assert enrolment["conversation"]["id"] == pair["id"]
    assert enrolment["conversation"]["other_members"] == [{"role": "mentor", "handle": "Oak"}]
    assert [m["subject"] for m in data["messages_written"]] == ["Hello", "From my phone"]
    assert "accepted" in {e["kind"] for e in data["events"]}
    # nobody else's personal data: the mentor's name, address and the phone number their held message had
    assert mentions(json.dumps(data, ensure_ascii=False), MENTOR["email"], MENTOR["name"], "415 555 0199") == []
    assert not any(MENTOR["email"].encode() in raw for raw in to_them)

    events = await acli_json(layout, "events", "list", "--kind", "person.export", "--json")
    assert len(events) == 1 and events[0]["actor"].startswith("cli:")
    assert mentions(json.dumps(events), MENTEE["email"], SECOND) == []  # the record names ids, not the address

    nobody = await acli(layout, "person", "export", "--email", "who@nowhere.example", "-o", str(tmp_path / "x.zip"))
    assert nobody.returncode == 1 and "nobody is enrolled with the address who@nowhere.example" in nobody.stderr
    assert not (tmp_path / "x.zip").exists() and "Traceback" not in nobody.stderr
    bad = await acli(layout, "person", "export", "--email", "not an address", "-o", str(tmp_path / "x.zip"))
    assert bad.returncode == 2 and "expected an e-mail address" in bad.stderr


def database_bytes(layout: Layout) -> bytes:
    """The SQLite file (and its WAL) after a checkpoint, as bytes."""
    path = layout.root / "relay.db"
    connection = sqlite3.connect(path)
    try:
        busy, _, _ = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0
    finally:
        connection.close()
    wal = path.with_name("relay.db-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


async def test_person_erase_asks_respects_legal_hold_and_leaves_no_trace(layout: Layout, sink: Sink) -> None:
    pair = await record(layout, sink)
    pair_id = str(pair["id"])
    sqlite = server_url() is None
    if sqlite:
        before = database_bytes(layout)
        assert MENTEE["email"].encode() in before and SECOND.encode() in before

    silent = (datetime.now(UTC) + timedelta(days=20)).replace(hour=16)  # a check-in to both is queued
    assert (await acli(layout, "nudges", "run", "--now", silent.isoformat())).returncode == 0
    queued = select(outbound.c.rcpt, outbound.c.state, outbound.c.raw).where(outbound.c.kind == "notice")
    assert {(rcpt, state) for rcpt, state, _ in await rows(layout, queued)} == {
        (MENTEE["email"], "queued"), (MENTOR["email"], "queued")}

    asked = await acli(layout, "person", "erase", "--email", MENTEE["email"])
    assert asked.returncode == 2, asked.stderr
    assert "Nothing was changed: run again with --yes" in asked.stderr and "2 messages written" in asked.stderr
    assert [r.email for r in await rows(layout, select(members.c.email).where(members.c.role == "mentee"))] == [
        MENTEE["email"]]

    assert (await acli(layout, "archive", "hold", "--pair", pair_id, "--reason", "police inquiry 12")).returncode == 0
    refused = await acli(layout, "person", "erase", "--email", MENTEE["email"], "--yes")
    assert refused.returncode == 1
    assert f"refused: the record of {MENTEE['email']} is under legal hold (pair {pair_id}: police inquiry 12)" in \
        refused.stderr
    assert (await acli(layout, "events", "list", "--kind", "person.erase", "--json")).stdout.strip() == "[]"
    assert (await acli(layout, "archive", "release-hold", "--pair", pair_id)).returncode == 0

    erased = await acli(layout, "person", "erase", "--email", SECOND, "--yes", "--json")
    assert erased.returncode == 0, erased.stderr
    done = json.loads(erased.stdout)
    assert (done["messages"], done["members_erased"], done["closed"]) == (2, 1, [pair["id"]])
    ((email, name, handle),) = [tuple(r) for r in await rows(layout, select(
        members.c.email, members.c.name, members.c.handle).where(members.c.role == "mentee"))]
    assert (email, name, handle) == (f"erased-{done['members'][0]}@erased.invalid", "[erased]", "Maple")
    ((status,),) = await rows(layout, select(pairs.c.status).where(pairs.c.id == pair["id"]))
    assert status == "closed"
    assert all(not raw for (raw,) in await rows(layout, select(outbound.c.raw).where(
        outbound.c.rcpt == MENTEE["email"])))
    # the check-in to them is never sent (nothing empty is delivered); their partner's still is, and the
    # partner is told the conversation has ended (nobody just disappears), without the erased person's data
    notices_now = await rows(layout, queued)
    assert sorted((rcpt, state, bool(raw)) for rcpt, state, raw in notices_now) == [
        ("", "failed", False), (MENTOR["email"], "queued", True), (MENTOR["email"], "queued", True)]
    farewell = [bytes(raw) for rcpt, _, raw in notices_now if rcpt == MENTOR["email"] and b"goodbye" in bytes(raw)]
    assert len(farewell) == 1 and b"share@" not in farewell[0] and b"application/mbox" not in farewell[0]
    assert mentions(farewell[0].decode(), MENTEE["email"], SECOND, MENTEE["name"]) == []
    events = await acli_json(layout, "events", "list", "--kind", "person.erase", "--json")
    assert len(events) == 1 and mentions(json.dumps(events), MENTEE["email"], SECOND, MENTEE["name"]) == []
    verified = await acli(layout, "archive", "verify")
    assert verified.returncode == 0, verified.stdout

    again = await acli(layout, "person", "erase", "--email", MENTEE["email"], "--yes")
    assert again.returncode == 1 and "nobody is enrolled" in again.stderr
    if not sqlite:
        return
    after = database_bytes(layout)
    for gone in (MENTEE["email"], SECOND, MENTEE["name"]):
        assert gone.encode() not in after, gone
    assert MENTOR["email"].encode() in after  # the partner's enrolment is theirs and stays


@pytest.mark.parametrize("args", [("person", "erase"), ("person", "erase", "--email", "x y")])
def test_person_erase_needs_an_address(layout: Layout, args: tuple[str, ...]) -> None:
    result = cli(layout, *args)
    assert result.returncode == 2 and "Traceback" not in result.stderr


async def test_erasing_a_group_member_leaves_the_group_running_without_them(
        relay: Relay, layout: Layout, sink: Sink, tmp_path: Path) -> None:
    group = await asyncio.to_thread(make_group, layout)
    alias = f"{group['alias']}"
    for person in (PEOPLE[1], PEOPLE[2]):  # Jane, then Ravi, to the whole group
        code, reply = await send(layout.smtp_port, simple_message(person["email"], alias, "Hi all", "Robots!"),
                                 person["email"], alias)
        assert code == 250, reply
    await sink.wait_for(6)
    exported = await acli(layout, "person", "export", "--email", MENTEE["email"], "-o", str(tmp_path / "j.zip"),
                          "--json")
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout)["to-you"] == 1  # Ravi's message, as Jane received it
    erased = await acli(layout, "person", "erase", "--email", MENTEE["email"], "--yes", "--json")
    assert erased.returncode == 0, erased.stderr
    assert json.loads(erased.stdout)["left"] == [group["id"]]
    relay.intake.forget_aliases()
    code, reply = await send(layout.smtp_port, simple_message(PEOPLE[2]["email"], alias, "Again", "More robots."),
                             PEOPLE[2]["email"], alias)
    assert code == 250, reply
    copies = await rows(layout, select(outbound.c.rcpt).where(outbound.c.message_id == reply.rsplit(" ", 1)[-1]))
    assert sorted(rcpt for (rcpt,) in copies) == sorted([PEOPLE[0]["email"], PEOPLE[3]["email"]])  # not Jane
    await sink.wait_for(8)
    verified = await acli(layout, "archive", "verify")
    assert verified.returncode == 0, verified.stdout


async def test_an_erasure_finds_the_events_naming_them_written_after_its_first_read(
        layout: Layout, sink: Sink) -> None:
    """On SQLite the events naming the person (no index finds a substring) are found by a read before the
    write transaction, so that accepts do not wait behind it; an event written after that read, or naming an
    address the read did not know, is scrubbed all the same."""
    pair = await record(layout, sink)
    settings = load_settings(layout.config)
    engine = create_engine(settings.database_url)
    now = datetime.now(UTC)
    mentor_old = "sam.old@school.example.org"

    async def refused(mail_from: str) -> None:
        async with transaction(engine) as connection:
            await events.record(connection, "refused", now, mail_from=mail_from, reason="stranger")

    try:
        # the mentor: an address of theirs is added after the read, which did not look for it
        await refused(mentor_old)
        scanned = await data_rights.scan(engine, MENTOR["email"])
        assert scanned is not None
        added = await acli(layout, "pair", "address", "add", str(pair["id"]), "--role", "mentor",
                           "--email", mentor_old)
        assert added.returncode == 0, added.stderr
        await data_rights.erase_person(settings, engine, MENTOR["email"], now, "cli:test", scanned=scanned)
        # the mentee: one event before the read (it finds it), one after (written while it read)
        await refused(MENTEE["email"])
        scanned = await data_rights.scan(engine, MENTEE["email"])
        await refused(SECOND)
        done = await data_rights.erase_person(settings, engine, MENTEE["email"], now, "cli:test", scanned=scanned)
    finally:
        await engine.dispose()
    assert done.erased.members == 1
    refusals = [detail for (detail,) in await rows(layout, select(events_table.c.detail).where(
        events_table.c.kind == "refused").order_by(events_table.c.id))]
    assert [mentions(detail, MENTEE["email"], SECOND, MENTOR["email"], mentor_old) for detail in refusals] == [
        [], [], []]
    verified = await acli(layout, "archive", "verify")
    assert verified.returncode == 0, verified.stdout


async def test_mail_taken_in_while_its_recipient_is_erased_never_reaches_them(
        relay: Relay, layout: Layout, sink: Sink) -> None:
    """The relay reads the pair at RCPT (and remembers an active alias for ALIAS_TTL); `person erase`, another
    process, may commit before DATA ends. The write checks the pair again in its own transaction: the message
    gets 451 (the sender's server tries again), nothing of it is kept or queued to the erased address, and the
    retry is taken as mail to a closed pair."""
    pair = await acreate_pair(layout)
    mentor = f"{MENTOR['name']} <{MENTOR['email']}>"
    code, reply = await send(layout.smtp_port, simple_message(mentor, pair["mentee_alias"], "Hello", "First."),
                             MENTOR["email"], pair["mentee_alias"])
    assert code == 250, reply  # and the alias is remembered
    before = len(await sink.wait_for(1))
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=layout.smtp_port, timeout=30, start_tls=False)
    await client.connect()
    try:
        await client.mail(MENTOR["email"])
        await client.rcpt(pair["mentee_alias"])
        erased = await acli(layout, "person", "erase", "--email", MENTEE["email"], "--yes", "--json")
        assert erased.returncode == 0, erased.stderr
        late = simple_message(mentor, pair["mentee_alias"], "Late", "Second, sent as she was erased.")
        with pytest.raises(aiosmtplib.SMTPDataError) as refused:
            await client.data(late)
    finally:
        client.close()
    assert refused.value.code == 451 and "changed" in refused.value.message, refused.value
    assert await rows(layout, select(messages.c.id).where(messages.c.subject == "Late")) == []
    changed = [detail for (detail,) in await rows(layout, select(events_table.c.detail).where(
        events_table.c.kind == "refused", events_table.c.pair_id == pair["id"]))]
    assert len(changed) == 1 and json.loads(changed[0])["reason"] == "changed"
    assert mentions(changed[0], MENTOR["email"], MENTEE["email"]) == []

    code, reply = await send(layout.smtp_port, late, MENTOR["email"], pair["mentee_alias"])  # the retry
    assert code == 250, reply
    assert [status for (status,) in await rows(layout, select(messages.c.decision).where(
        messages.c.subject == "Late"))] == ["ended"]  # archived, not delivered
    await eventually(lambda: nothing_queued(layout), timeout=20)
    after = sink.received[before:]
    assert after and all(MENTEE["email"] not in received.rcpt_tos for received in after)  # the mentor's notes only
    # the erasure emptied the address of every row queued to her before it; none was written after
    assert all(rcpt.casefold() != MENTEE["email"].casefold() for (rcpt,) in await rows(layout, select(outbound.c.rcpt)))


async def test_erasure_empties_the_mail_that_names_them_to_somebody_else(layout: Layout, sink: Sink) -> None:
    """The contact exchange gives each member the other's real name and address ("Staying in touch with
    Maple", in an encoded body: the store is read decoded). The mentee says yes first, the mentor second:
    the mentor's notice naming the mentee is about the mentee's own "yes", and erasing the mentee empties it.
    So is the coordinator's notice quoting a close reason that names her, and the mentor's farewell carrying
    the conversation (her messages in it). Afterwards nothing in the store, decoded, holds her address, name
    or words."""
    path = layout.root / "programs" / "stem.yaml"
    program = yaml.safe_load(path.read_text())
    program.update(contact_exchange=True, send_conversation_at_end=True)
    path.write_text(yaml.safe_dump(program, allow_unicode=True))
    words = "the red planet at dawn"
    relay = Relay(load_settings(layout.config))
    await relay.start()
    try:
        pair = await acreate_pair(layout)
        mentee = f"{MENTEE['name']} <{MENTEE['email']}>"
        first = simple_message(mentee, pair["mentor_alias"], "Sky", f"I saw {words}.")
        code, reply = await send(layout.smtp_port, first, MENTEE["email"], pair["mentor_alias"])
        assert code == 250, reply
        await sink.wait_for(1)
        closed = await acli(layout, "pair", "close", str(pair["id"]), "--reason", f"{MENTEE['name']} moved away")
        assert closed.returncode == 0, closed.stderr
        share = f"share@{DOMAIN}"
        for who in (MENTEE, MENTOR):
            code, reply = await send(layout.smtp_port, simple_message(who["email"], share, "yes", "yes"),
                                     who["email"], share)
            assert code == 250, reply
    finally:
        await relay.stop()
    # the contact exchange's notice to the mentor names the mentee, and is about the mentee's own "yes"
    to_mentor = await rows(layout, select(outbound.c.raw, members.c.role).select_from(
        outbound.outerjoin(messages, messages.c.id == outbound.c.message_id)
        .outerjoin(members, members.c.id == messages.c.sender_id))
        .where(outbound.c.rcpt == MENTOR["email"], outbound.c.kind == "notice"))
    naming = [role for raw, role in to_mentor if MENTEE["email"] in "\n".join(everything(bytes(raw)))]
    assert naming == ["mentee"]
    before = {(table, column) for table, _, column, _ in await traces(layout, MENTEE["email"], MENTEE["name"], words)}
    assert ("outbound", "raw") in before

    erased = await acli(layout, "person", "erase", "--email", MENTEE["email"], "--yes", "--json")
    assert erased.returncode == 0, erased.stderr
    assert await traces(layout, MENTEE["email"], MENTEE["name"], words) == []
    assert await traces(layout, MENTOR["email"]) != []  # the mentor's enrolment is theirs and stays
    verified = await acli(layout, "archive", "verify")
    assert verified.returncode == 0, verified.stdout


async def test_erasure_scrubs_the_delivery_error_that_quotes_their_address(layout: Layout, sink: Sink) -> None:
    """A smarthost's refusal quotes the recipient ("550 5.1.1 <jane.doe@...>: Recipient address rejected"),
    kept as the queue entry's last error and printed by `queue list`: erasing her scrubs it."""
    await refused_quoting_the_mentee(layout, sink)
    erased = await acli(layout, "person", "erase", "--email", MENTEE["email"], "--yes", "--json")
    assert erased.returncode == 0, erased.stderr
    listed = await acli(layout, "queue", "list", "--state", "failed")
    assert listed.returncode == 0 and "Recipient address rejected" in listed.stdout
    assert MENTEE["email"] not in listed.stdout
    assert await traces(layout, MENTEE["email"], MENTEE["name"]) == []
    assert json.loads(erased.stdout)["errors_scrubbed"] == 1
    verified = await acli(layout, "archive", "verify")
    assert verified.returncode == 0, verified.stdout


async def test_an_erasure_empties_a_notice_naming_them_queued_after_its_first_read(layout: Layout) -> None:
    """The notices naming the person are read (decoded) before the write transaction; one queued after that
    read (here the coordinator's notice of a close whose reason names her) is read and emptied by the
    transaction all the same."""
    pair = await acreate_pair(layout)
    settings = load_settings(layout.config)
    engine = create_engine(settings.database_url)
    try:
        scanned = await data_rights.scan(engine, MENTEE["email"])
        assert scanned is not None and scanned.notices.ids == ()
        closed = await acli(layout, "pair", "close", str(pair["id"]), "--reason", f"{MENTEE['name']} moved away")
        assert closed.returncode == 0, closed.stderr
        coordinator = [raw for rcpt, raw in await rows(layout, select(outbound.c.rcpt, outbound.c.raw))
                       if rcpt not in (MENTOR["email"], MENTEE["email"])]
        assert any("moved away" in "\n".join(everything(bytes(raw))) for raw in coordinator)
        done = await data_rights.erase_person(settings, engine, MENTEE["email"], datetime.now(UTC), "cli:test",
                                              scanned=scanned)
    finally:
        await engine.dispose()
    assert done.erased.members == 1
    assert await traces(layout, MENTEE["email"], MENTEE["name"]) == []
    verified = await acli(layout, "archive", "verify")
    assert verified.returncode == 0, verified.stdout


async def _group_of(layout: Layout, people: list[tuple[str, dict[str, str], str]]) -> dict:  # type: ignore[type-arg]
    group = await acli_json(layout, "group", "create", "--program", "stem", "--name", "Robotics", "--json")
    for role, person, language in people:
        added = await acli(layout, "group", "add", str(group["id"]), "--role", role, "--email", person["email"],
                           "--name", person["name"], "--handle", person["handle"], "--language", language)
        assert added.returncode == 0, added.stderr
    return dict(group)


async def test_erasing_a_groups_only_mentor_tells_its_mentees_and_the_coordinator(
        relay: Relay, layout: Layout, sink: Sink) -> None:
    """The mentees are told that their mentor has left (in their language, by handle only), the coordinator
    that the group has no mentor left: before, the mentees heard nothing and their questions waited."""
    birch = PEOPLE[2]
    group = await _group_of(layout, [("mentor", MENTOR, "en"), ("mentee", MENTEE, "es"), ("mentee", birch, "en")])
    erased = await acli(layout, "person", "erase", "--email", MENTOR["email"], "--yes", "--json")
    assert erased.returncode == 0, erased.stderr
    told = {r.rcpt_tos[0]: r.message for r in await sink.wait_for(3)}
    assert set(told) == {MENTEE["email"], birch["email"], "coordinator@school.example"}
    maple = told[MENTEE["email"]]
    assert maple["Content-Language"] == "es" and str(maple["Subject"]) == "Oak ha dejado Robotics"
    assert "Por ahora el grupo no tiene mentor." in words_of(maple)
    assert str(told[birch["email"]]["Subject"]) == "Oak has left Robotics"
    assert "The group has no mentor for now." in words_of(told[birch["email"]])
    coordinator = told["coordinator@school.example"]
    assert str(coordinator["Subject"]) == f"Group Robotics (id {group['id']}) has no mentor left"
    assert "Its 2 mentees were told that the mentor has left: Maple, Birch." in words_of(coordinator)
    for message in told.values():  # the erased mentor by handle only
        assert MENTOR["email"] not in message.as_string() and MENTOR["name"] not in words_of(message)
    await eventually(lambda: nothing_queued(layout), timeout=20)
    assert len(sink.received) == 3


async def test_erasing_one_of_two_mentors_tells_the_group_who_goes_on(relay: Relay, layout: Layout,
                                                                      sink: Sink) -> None:
    ash = {"email": "ada.byron@lab.example.org", "name": "Ada Byron", "handle": "Ash"}
    await _group_of(layout, [("mentor", MENTOR, "en"), ("mentor", ash, "en"), ("mentee", MENTEE, "en")])
    erased = await acli(layout, "person", "erase", "--email", MENTOR["email"], "--yes")
    assert erased.returncode == 0, erased.stderr
    told = {r.rcpt_tos[0]: r.message for r in await sink.wait_for(2)}
    assert set(told) == {MENTEE["email"], ash["email"]}  # the coordinator is not needed
    for message in told.values():
        assert str(message["Subject"]) == "Oak has left Robotics"
        assert "The group goes on with its mentor Ash." in words_of(message)
        assert MENTOR["email"] not in message.as_string() and MENTOR["name"] not in words_of(message)
    await eventually(lambda: nothing_queued(layout), timeout=20)
    assert len(sink.received) == 2


def words_of(message: object) -> str:
    return " ".join(message.get_body(("plain",)).get_content().split())  # type: ignore[attr-defined]
