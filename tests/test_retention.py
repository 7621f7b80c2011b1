"""Retention and legal hold: with an injected clock the purge empties exactly the expired pairs' bodies
(closed and ended pairs), erases their personal data (members, contact details in events and hold reasons,
moderators' edits), skips pairs on legal hold, records itself, and `archive verify` still passes afterwards."""

from __future__ import annotations

import asyncio
import json
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import event, func, select, update

from relay.archive import chain
from relay.archive.retention import expired_pairs, left_to_purge, purge_expired
from relay.clock import FixedClock
from relay.config import load_settings
from relay.console.actions import redact_and_release
from relay.endings import close_pair
from relay.enrol import Person, create_pair
from relay.member_addresses import add_address
from relay.service import Relay
from relay.store import events
from relay.store.database import create_engine, transaction
from relay.store.outbound import mark_sent_many, queue_outbound
from relay.store.schema import events as events_table
from relay.store.schema import held, member_addresses, members, message_edits, messages, outbound, pairs
from tests.archive_support import START
from tests.bulkstore import enrol_many
from tests.support import (
    DOMAIN,
    Layout,
    Sink,
    acli,
    acli_json,
    acreate_pair,
    eventually,
    rows,
    send,
    simple_message,
    store_url,
    write_transactions,
)

RETENTION = {"after_close": "365d", "after_concern": "1825d"}
NAMES = ["Alder", "Beech", "Cedar", "Dogwood", "Fir"]


def set_retention(layout: Layout, retention: object) -> Path:
    path = layout.root / "programs" / "stem.yaml"
    program = yaml.safe_load(path.read_text())
    program["retention"] = retention
    path.write_text(yaml.safe_dump(program, sort_keys=False))
    return path


async def five_pairs(layout: Layout, sink: Sink) -> list[int]:
    """Pairs 1-3 closed on day 1 (2 with a concern raised, 3 to be put on legal hold), pair 4 closed on
    day 300, pair 5 still active; each pair has one delivered message."""
    set_retention(layout, RETENTION)
    clock = FixedClock(START)
    relay = Relay(load_settings(layout.config), clock=clock)
    await relay.start()
    ids = []
    try:
        for number, handle in enumerate(NAMES):
            mentor = Person(f"mentor{number}@uni.example", f"Mentor Person{number}", handle)
            mentee = Person(f"mentee{number}@mail.example", f"Mentee Person{number}", f"{handle}-seed")
            pair = await create_pair(relay.settings, relay.engine, clock, program_id="stem", mentor=mentor,
                                     mentee=mentee)
            ids.append(pair.id)
            alias = pair.mentor.alias_address(DOMAIN)
            code, reply = await send(layout.smtp_port, simple_message(mentee.email, alias, f"Note {number}",
                                                                      f"Secret words {number}"), mentee.email, alias)
            assert code == 250, reply
        await sink.wait_for(5)
        clock.advance(timedelta(hours=12))
        async with transaction(relay.engine) as connection:
            await events.record(connection, "concern", clock.now(), actor="coordinator", pair_id=ids[1])
        clock.advance(timedelta(hours=12))
        for pair_id in ids[:3]:
            await close_pair(relay.settings, relay.engine, clock, pair_id)
        clock.advance(timedelta(days=299))
        await close_pair(relay.settings, relay.engine, clock, ids[3])
    finally:
        await relay.stop()
    return ids


async def bodies(layout: Layout) -> dict[int, tuple[int, int]]:
    """pair -> (messages with a body, relayed copies with a body; the notices about the pair, such as the
    farewells `pair close` sends, are left out: `notices_kept` counts them)."""
    found = {}
    for (pair_id,) in await rows(layout, select(pairs.c.id)):
        ((kept,),) = await rows(layout, select(func.count()).select_from(messages).where(
            messages.c.pair_id == pair_id, func.length(messages.c.raw) > 0))
        ((copies,),) = await rows(layout, select(func.count()).select_from(outbound).where(
            outbound.c.pair_id == pair_id, outbound.c.kind == "relay", func.length(outbound.c.raw) > 0))
        found[pair_id] = (kept, copies)
    return found


async def notices_kept(layout: Layout, pair_id: int) -> int:
    ((count,),) = await rows(layout, select(func.count()).select_from(outbound).where(
        outbound.c.pair_id == pair_id, outbound.c.kind == "notice", func.length(outbound.c.raw) > 0))
    return int(count)


async def is_expected(layout: Layout, expected: dict[int, tuple[int, int]]) -> bool:
    return await bodies(layout) == expected


async def purge(layout: Layout, *args: str) -> dict:  # type: ignore[type-arg]
    result = await acli(layout, "archive", "purge", "--json", *args)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))

async def refused_quoting_the_mentee(layout: Layout, sink: Sink) -> tuple[dict[str, Any], str]:
    """A pair whose one message, the mentor's to the mentee, the smarthost refused for good quoting her address
    ("550 5.1.1 <jane.doe@...>", as Postfix words it), kept as the queue entry's last error: (pair, refusal)."""
    from tests.support import MENTEE, MENTOR, acreate_pair

    refusal = f"550 5.1.1 <{MENTEE['email']}>: Recipient address rejected: User unknown in virtual mailbox table"
    relay = Relay(load_settings(layout.config))
    await relay.start()
    try:
        pair = await acreate_pair(layout)
        sink.handler.scripted.append(refusal)
        code, reply = await send(layout.smtp_port, simple_message(MENTOR["email"], pair["mentee_alias"], "Hi", "Hello"),
                                 MENTOR["email"], pair["mentee_alias"])
        assert code == 250, reply

        async def failed() -> list[str]:
            return [e for (e,) in await rows(layout, select(outbound.c.last_error).where(outbound.c.state == "failed"))]

        assert await eventually(failed, timeout=20) == [refusal]
    finally:
        await relay.stop()
    return pair, refusal



async def test_purge_empties_exactly_the_expired_pairs_and_verify_still_passes(layout: Layout, sink: Sink) -> None:
    ids = await five_pairs(layout, sink)
    full = {pair_id: (1, 1) for pair_id in ids}
    assert await bodies(layout) == full
    held = await acli(layout, "archive", "hold", "--pair", str(ids[2]), "--reason", "court order 17/2026")
    assert held.returncode == 0, held.stderr
    again = await acli(layout, "archive", "hold", "--pair", str(ids[2]), "--reason", "again")
    assert "already under legal hold" in again.stdout

    # day 366 after closing: not yet expired
    early = (START + timedelta(days=365)).isoformat()
    assert (await purge(layout, "--now", early))["purged"] == []
    later = (START + timedelta(days=367)).isoformat()
    preview = await purge(layout, "--now", later, "--dry-run")
    assert [(p["pair_id"], p["rule"], p["messages"], p["outbound"]) for p in preview["purged"]] == [
        (ids[0], "after_close", 1, 4)]  # the relayed copy, both farewells and the coordinator's notice
    assert preview["on_hold"] == [ids[2]]
    assert await bodies(layout) == full  # a dry run changes nothing

    assert await notices_kept(layout, ids[0]) == 3  # both farewells and the coordinator's notice
    report = await purge(layout, "--now", later)
    assert [p["pair_id"] for p in report["purged"]] == [ids[0]] and report["on_hold"] == [ids[2]]
    assert await bodies(layout) == {**full, ids[0]: (0, 0)}
    assert await notices_kept(layout, ids[0]) == 0  # purged with the pair's messages
    ((subject, sender),) = await rows(layout, select(messages.c.subject, messages.c.envelope_from)
                                      .where(messages.c.pair_id == ids[0]))
    ((kept,),) = await rows(layout, select(func.count()).select_from(messages))
    assert (subject, sender, kept) == (None, "", 5)  # the tombstone stays, without the personal part
    verified = await acli(layout, "archive", "verify", "--json")
    assert verified.returncode == 0, verified.stdout
    purges = await acli_json(layout, "events", "list", "--kind", "archive.purge", "--json")
    assert [(e["pair_id"], e["detail"]["rule"], e["detail"]["messages"]) for e in purges] == [
        (ids[0], "after_close", 1)]
    assert (await purge(layout, "--now", later))["purged"] == []  # nothing left to purge: no second event

    released = await acli(layout, "archive", "release-hold", "--pair", str(ids[2]))
    assert released.returncode == 0, released.stderr
    far = (START + timedelta(days=1827)).isoformat()  # the concern's five years are over too
    report = await purge(layout, "--now", far)
    assert sorted(p["pair_id"] for p in report["purged"]) == sorted([ids[1], ids[2], ids[3]])
    assert {p["pair_id"]: p["rule"] for p in report["purged"]}[ids[1]] == "after_concern"
    assert await bodies(layout) == {**{pair_id: (0, 0) for pair_id in ids[:4]}, ids[4]: (1, 1)}  # the active pair stays
    assert (await acli(layout, "archive", "verify")).returncode == 0
    export = await acli(layout, "archive", "export", "--pair", str(ids[0]), "-o", str(layout.root / "gone.mbox"),
                        "--json")
    assert json.loads(export.stdout)["messages"] == 0

    engine = create_engine(store_url(layout))  # a purged body written back (around the store) is caught
    try:
        async with transaction(engine) as connection:
            await connection.execute(update(messages).where(messages.c.pair_id == ids[0]).values(raw=b"Subject: back"))
    finally:
        await engine.dispose()
    tampered = await acli(layout, "archive", "verify")
    assert tampered.returncode == 1 and "purged, yet it has a body again" in tampered.stdout


async def test_legal_hold_errors(layout: Layout, sink: Sink) -> None:
    missing = await acli(layout, "archive", "hold", "--pair", "9", "--reason", "x")
    assert (missing.returncode, missing.stderr) == (1, "error: no pair with id 9\n")
    pair = await acreate_pair(layout)
    not_held = await acli(layout, "archive", "release-hold", "--pair", str(pair["id"]))
    assert (not_held.returncode, not_held.stderr) == (1, f"error: pair {pair['id']} is not under legal hold\n")
    blank = await acli(layout, "archive", "hold", "--pair", str(pair["id"]), "--reason", "  ")
    assert blank.returncode == 1 and "--reason must say why" in blank.stderr


async def test_bad_retention_values_are_reported_with_file_and_line(layout: Layout) -> None:
    path = set_retention(layout, {"after_close": "soon", "after_concern": "30d"})
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if "after_close" in text)
    result = await acli(layout, "check-config")
    assert result.returncode == 1
    assert f"{path}:{line}: retention.after_close: Value error, expected a duration" in result.stderr
    set_retention(layout, {"after_close": "365d", "after_concern": "30d"})
    shorter = await acli(layout, "check-config")
    assert shorter.returncode == 1 and "after_concern must be at least as long as after_close" in shorter.stderr
    set_retention(layout, {"after_close": "365d", "keep": "always"})
    unknown = await acli(layout, "check-config")
    assert unknown.returncode == 1 and "retention.keep: unknown key" in unknown.stderr


async def test_the_purge_function_is_timed_for_the_metrics(layout: Layout) -> None:
    from relay.archive.retention import purge_expired
    from relay.metrics import SWEEPS
    from relay.store.database import migrate

    set_retention(layout, RETENTION)
    settings = load_settings(layout.config)
    before = SWEEPS.runs.get("retention", (0, 0.0))[0]
    engine = create_engine(settings.database_url)
    try:
        await migrate(engine)
        report = await purge_expired(engine, FixedClock(START), settings)
    finally:
        await engine.dispose()
    assert (report.purged, report.on_hold) == ([], [])
    assert SWEEPS.runs["retention"][0] == before + 1


async def test_serve_purges_expired_pairs_on_its_own(layout: Layout, sink: Sink) -> None:
    """The relay's scheduler runs the purge (at start, then daily): no operator command needed."""
    ids = await five_pairs(layout, sink)
    clock = FixedClock(START + timedelta(days=367))
    relay = Relay(load_settings(layout.config), clock=clock)
    await relay.start()
    try:
        assert "retention-purge" in relay.scheduler.job_names()
        # pairs 1 and 3 closed a year ago; 2 raised a concern (five years), 4 closed later, 5 is active
        expected = {**{pair_id: (1, 1) for pair_id in ids}, ids[0]: (0, 0), ids[2]: (0, 0)}
        assert await eventually(lambda: is_expected(layout, expected), timeout=20)
    finally:
        await relay.stop()
    assert await bodies(layout) == expected
    assert (await acli(layout, "archive", "verify")).returncode == 0


async def test_two_instances_purging_at_once_purge_each_pair_once(layout: Layout, sink: Sink) -> None:
    """Instances sharing a database run the daily purge at the same moment: one purge event per pair."""
    import asyncio

    from relay.archive.retention import purge_expired

    ids = await five_pairs(layout, sink)
    settings = load_settings(layout.config)
    clock = FixedClock(START + timedelta(days=367))  # pairs 1 and 3 expired
    engines = [create_engine(settings.database_url) for _ in range(3)]
    try:
        reports = await asyncio.gather(*(purge_expired(engine, clock, settings) for engine in engines))
    finally:
        for engine in engines:
            await engine.dispose()
    purged = sorted(item.pair_id for report in reports for item in report.purged)
    assert purged == [ids[0], ids[2]]  # each by one of them
    events = await acli_json(layout, "events", "list", "--kind", "archive.purge", "--json")
    assert sorted(e["pair_id"] for e in events) == [ids[0], ids[2]]
    assert (await acli(layout, "archive", "verify")).returncode == 0


CONTACTS_HELD = """
    default_action: deliver
    rules:
      contact_info:
        action: hold
    notices:
      held: null
"""
PHONE = "+1 415 555 0123"


async def test_ended_pairs_are_purged_and_personal_data_erased_while_verify_passes(
        layout: Layout, sink: Sink) -> None:
    """An ended pair (its end date passed) is purged after its period: bodies, members' names and addresses,
    the phone number a rule matched (in the decision event and the hold's reasons), the moderator's edited
    copy; an open pair keeps everything; the chain still verifies, and an edit after the scrub is caught."""
    (layout.root / "policies" / "adult-professional.yaml").write_text(textwrap.dedent(CONTACTS_HELD))
    set_retention(layout, {"after_close": "30d"})
    clock = FixedClock(START)
    relay = Relay(load_settings(layout.config), clock=clock)
    await relay.start()
    try:
        ending = await create_pair(relay.settings, relay.engine, clock, program_id="stem", end_date="2026-03-05",
                                   mentor=Person("olga.ruiz@uni.example", "Olga Ruiz", "Quartz"),
                                   mentee=Person("tim.berg@mail.example", "Tim Berg", "Basalt"))
        staying = await create_pair(relay.settings, relay.engine, clock, program_id="stem",
                                    mentor=Person("ann.kay@uni.example", "Ann Kay", "Granite"),
                                    mentee=Person("lou.pei@mail.example", "Lou Pei", "Shale"))
        await add_address(relay.settings, relay.engine, clock, ending.id, "mentee", "tim.phone@mobile.example")
        held_ids = []
        for pair in (ending, staying):
            mentee, alias = pair.mentee.email, pair.mentor.alias_address(DOMAIN)
            code, reply = await send(layout.smtp_port, simple_message(mentee, alias, "Number",
                                                                      f"Call me on {PHONE} please."), mentee, alias)
            assert code == 250, reply
            held_ids.append(reply.rsplit(" ", 1)[-1])
        await redact_and_release(relay.settings, relay.engine, clock, held_ids[0], "mod-ann",
                                 "Call me on [removed] please.")
        clock.advance(timedelta(days=4))
        await relay.sweep_nudges()  # 5 March has passed: the first pair has ended
    finally:
        await relay.stop()
    (status,) = [row.status for row in await rows(layout, select(pairs.c.status).where(pairs.c.id == ending.id))]
    assert status == "ended"

    def personal(text: str) -> list[str]:
        words = ["olga.ruiz@uni.example", "Olga Ruiz", "tim.berg@mail.example", "Tim Berg",
                 "tim.phone@mobile.example", "415 555 0123"]
        return [word for word in words if word.casefold() in text.casefold()]

    async def leftovers(pair_id: int) -> list[str]:
        found = []
        for row in await rows(layout, select(members.c.email, members.c.name).where(members.c.pair_id == pair_id)):
            found += personal(f"{row.email} {row.name}")
        for row in await rows(layout, select(member_addresses.c.email).join(
                members, members.c.id == member_addresses.c.member_id).where(members.c.pair_id == pair_id)):
            found += personal(row.email)
        for row in await rows(layout, select(events_table.c.detail).where(events_table.c.pair_id == pair_id)):
            found += personal(json.loads(row.detail).__repr__() + row.detail)
        for row in await rows(layout, select(held.c.reasons).where(held.c.pair_id == pair_id)):
            found += personal(row.reasons)
        return found

    assert "415 555 0123" in await leftovers(ending.id)  # the decision and the hold name the number
    assert await rows(layout, select(message_edits.c.id).where(message_edits.c.message_id == held_ids[0]))
    hold = await acli(layout, "archive", "hold", "--pair", str(ending.id), "--reason", "inquiry")
    assert hold.returncode == 0, hold.stderr
    later = (START + timedelta(days=40)).isoformat()
    assert (await purge(layout, "--now", later))["on_hold"] == [ending.id]  # the legal hold protects everything
    assert "olga.ruiz@uni.example" in await leftovers(ending.id)
    assert (await acli(layout, "archive", "release-hold", "--pair", str(ending.id))).returncode == 0

    text = await acli(layout, "archive", "purge", "--now", later)
    assert text.returncode == 0, text.stderr
    assert f"purged pair {ending.id} (stem, after_close ended 2026-04-05)" in text.stdout
    assert "2 members' names and addresses" in text.stdout
    assert await leftovers(ending.id) == []
    assert await rows(layout, select(message_edits.c.id).where(message_edits.c.message_id == held_ids[0])) == []
    erased = await rows(layout, select(members.c.email, members.c.name, members.c.handle)
                        .where(members.c.pair_id == ending.id).order_by(members.c.id))
    assert [(row.name, row.handle) for row in erased] == [("[erased]", "Quartz"), ("[erased]", "Basalt")]
    assert all(row.email.endswith("@erased.invalid") for row in erased)
    assert "ann.kay@uni.example" in " ".join(r.email for r in await rows(layout, select(members.c.email)))
    assert "415 555 0123" in await leftovers(staying.id)  # an open pair keeps its record
    verified = await acli(layout, "archive", "verify")
    assert verified.returncode == 0, verified.stdout
    assert (await purge(layout, "--now", later))["purged"] == []  # nothing left: no second event

    engine = create_engine(store_url(layout))  # a scrubbed event edited afterwards (around the store) is caught
    try:
        async with transaction(engine) as connection:
            scrubbed = (await connection.execute(select(events_table.c.id).where(
                events_table.c.pair_id == ending.id, events_table.c.kind == "decision"))).scalars().first()
            await connection.execute(update(events_table).where(events_table.c.id == scrubbed)
                                     .values(detail='{"decision": "deliver"}'))
    finally:
        await engine.dispose()
    tampered = await acli(layout, "archive", "verify")
    assert tampered.returncode == 1 and "changed after its personal data was scrubbed" in tampered.stdout


async def test_a_purged_pair_is_purged_again_only_when_something_was_written_since(
        layout: Layout, sink: Sink) -> None:
    """The daily purge takes a write transaction (on SQLite the store's write lock, which accepts wait for)
    only for the expired pairs with something left to erase: not again for a pair purged on an earlier day,
    unless something of the pair was written since (here a refusal naming the address its former mentee
    still writes from), which the next purge then erases."""
    ids = await five_pairs(layout, sink)
    settings = load_settings(layout.config)
    later = START + timedelta(days=367)
    engine = create_engine(settings.database_url)
    try:
        first = await purge_expired(engine, FixedClock(later), settings)
        assert sorted(p.pair_id for p in first.purged) == [ids[0], ids[2]]
        with write_transactions(engine) as begun:
            second = await purge_expired(engine, FixedClock(later + timedelta(days=1)), settings)
        assert (second.purged, begun) == ([], [])

        relay = Relay(load_settings(layout.config), clock=FixedClock(later + timedelta(days=1)))
        await relay.start()
        try:
            ((mentor_alias,),) = await rows(layout, select(members.c.alias).where(
                members.c.pair_id == ids[0], members.c.role == "mentor"))
            alias = f"{mentor_alias}@{DOMAIN}"  # the mentor's alias in the purged pair
            late = simple_message("mentee0@mail.example", alias, "Still there?", "Hello again")
            code, reply = await send(layout.smtp_port, late, "mentee0@mail.example", alias)
            assert code >= 500, reply
        finally:
            await relay.stop()
        named = select(events_table.c.detail).where(events_table.c.pair_id == ids[0],
                                                    events_table.c.detail.contains("mentee0@mail.example"))
        assert len(await rows(layout, named)) == 1

        with write_transactions(engine) as begun:
            third = await purge_expired(engine, FixedClock(later + timedelta(days=2)), settings)
        assert [(p.pair_id, p.events_scrubbed) for p in third.purged] == [(ids[0], 1)] and begun
        assert await rows(layout, named) == []
        with write_transactions(engine) as begun:
            fourth = await purge_expired(engine, FixedClock(later + timedelta(days=3)), settings)
        assert (fourth.purged, begun) == ([], [])
    finally:
        await engine.dispose()
    assert (await acli(layout, "archive", "verify")).returncode == 0


async def test_the_purge_reads_any_number_of_ended_pairs_in_statements_of_bounded_size(layout: Layout) -> None:
    """A program that ended a year ago leaves every pair expired at once. The purge's reads name them in
    statements of a bounded number of parameters, whatever their number: PostgreSQL refuses a statement of
    more than 32,767, and the concern check named every ended pair in one (1,200 pairs here; the bound holds
    at 100k)."""
    set_retention(layout, RETENTION)
    made = await enrol_many(layout, 1200, START)
    engine = create_engine(store_url(layout))
    settings = load_settings(layout.config)
    sizes: list[int] = []

    def count(_conn: Any, _cursor: Any, _statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        sizes.append(len(parameters or ()))

    try:
        async with transaction(engine) as connection:
            await connection.execute(update(pairs).values(status="closed", closed_at=START))
            await events.record(connection, "concern", START, actor="coordinator", pair_id=made[7].id)
        event.listen(engine.sync_engine, "before_cursor_execute", count)
        async with engine.connect() as connection:
            found = await left_to_purge(connection, await expired_pairs(
                connection, settings, START + timedelta(days=367)))
        event.remove(engine.sync_engine, "before_cursor_execute", count)
    finally:
        await engine.dispose()
    assert len(found) == 1199  # every ended pair but the one with a concern (kept five years)
    assert made[7].id not in {item.pair_id for item in found}
    assert 0 < max(sizes) <= 600, sizes


async def test_a_delivery_recorded_while_its_pair_is_purged_and_the_purge_both_complete(
        layout: Layout, sink: Sink) -> None:
    """A last notice about a pair is delivered as the daily purge of that pair starts (at `serve`'s start, the
    delivery of what was queued and the purge run side by side). The delivery's result changes the notice's
    row, then records its event; the purge empties that row. Each in its own write transaction: on PostgreSQL
    the delivery held the row while it waited for the archive's lock, which the purge held while it waited for
    the row, and PostgreSQL undid the purge as a deadlock. Every write transaction now takes the writers' lock
    first (relay/store/database.py): the purge waits for the delivery, then empties the notice."""
    ids = await five_pairs(layout, sink)
    settings = load_settings(layout.config)
    later = START + timedelta(days=367)
    engine, delivery = create_engine(settings.database_url), create_engine(settings.database_url)
    try:
        async with transaction(delivery) as connection:
            notice = await queue_outbound(connection, kind="notice", rcpt="mentee0@mail.example",
                                          raw=b"Subject: Last words\r\n\r\nSecret farewell\r\n",
                                          out_message_id="<last@relay.example>", now=later, domain=DOMAIN,
                                          pair_id=ids[0], message_id=None)
        async with transaction(delivery) as connection:
            # the delivery's own first statement on the row (as mark_sent_many's UPDATE), its event after
            await connection.execute(update(outbound).where(outbound.c.id == notice).values(claimed_by=None))
            purge = asyncio.create_task(purge_expired(engine, FixedClock(later), settings))
            await asyncio.wait({purge}, timeout=1.5)  # (PostgreSQL detects a deadlock after 1 s)
            (entry,) = (await connection.execute(select(outbound).where(outbound.c.id == notice))).all()
            await mark_sent_many(connection, [(entry, later, "250 2.0.0 ok")])
        report = await asyncio.wait_for(purge, 30)
    finally:
        await delivery.dispose()
        await engine.dispose()
    assert ids[0] in [item.pair_id for item in report.purged]
    found = await rows(layout, select(outbound.c.state, outbound.c.raw).where(outbound.c.id == notice))
    assert [tuple(row) for row in found] == [("sent", b"")]  # delivered, then emptied by the purge
    assert len(await rows(layout, select(events_table.c.id).where(
        events_table.c.kind == "delivered", events_table.c.detail.contains(notice)))) == 1
    verified = await acli(layout, "archive", "verify")
    assert verified.returncode == 0, verified.stdout


async def test_an_event_written_while_a_purge_runs_is_purged_by_it_or_the_next(layout: Layout, sink: Sink) -> None:
    """A refusal naming the old mentee's address is written (another relay instance, or intake) while the daily
    purge of its pair runs. On PostgreSQL an event's id comes from a sequence as it is inserted: one inserted
    before the purge's own event but committed after it would look older than the purge, and every later purge
    would pass the pair over with the address in it. Events are inserted under the writers' lock, which the
    purge takes before it reads: it waits for the refusal's transaction and scrubs it."""
    ids = await five_pairs(layout, sink)
    settings = load_settings(layout.config)
    later = START + timedelta(days=367)
    engine, other = create_engine(settings.database_url), create_engine(settings.database_url)
    try:
        async with other.connect() as connection:
            writer = await connection.execution_options(write=True)
            async with writer.begin():
                links = await events.insert_rows(writer, [events.event_values(
                    "refused", later, pair_id=ids[0], reason="stranger", mail_from="mentee0@mail.example")])
                purge = asyncio.create_task(purge_expired(engine, FixedClock(later), settings))
                await asyncio.wait({purge}, timeout=1.0)  # it waits for this transaction (or, before, did not)
                await chain.append(writer, links)
            first = await asyncio.wait_for(purge, 30)
        assert ids[0] in [item.pair_id for item in first.purged]
        await purge_expired(engine, FixedClock(later + timedelta(days=1)), settings)
    finally:
        await other.dispose()
        await engine.dispose()
    named = await rows(layout, select(events_table.c.id).where(
        events_table.c.pair_id == ids[0], events_table.c.detail.contains("mentee0@mail.example")))
    assert named == []
    verified = await acli(layout, "archive", "verify")
    assert verified.returncode == 0, verified.stdout


async def test_a_group_under_legal_hold_is_neither_purged_nor_erased(layout: Layout) -> None:
    """`archive hold --group ID` (or --pair with a group's id, as `archive export --pair` takes it) holds a
    group's record: the purge keeps the closed group, and erasing a member is refused naming the group."""
    from tests.support import acreate_pair
    from tests.test_groups import PEOPLE, make_group

    set_retention(layout, {"after_close": "1d"})
    group = await asyncio.to_thread(make_group, layout)
    gid = str(group["id"])
    assert (await acli(layout, "group", "close", gid, "--reason", "term over")).returncode == 0
    held = await acli(layout, "archive", "hold", "--group", gid, "--reason", "police inquiry", "--json")
    assert held.returncode == 0, held.stderr
    assert json.loads(held.stdout) == {"pair": group["id"], "kind": "group", "held": True, "changed": True}
    later = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    report = await purge(layout, "--now", later)
    assert (report["purged"], report["on_hold"]) == ([], [group["id"]])
    kept = await acli(layout, "archive", "purge", "--now", later)
    assert f"kept group {gid}: expired, but under legal hold" in kept.stdout
    refused = await acli(layout, "person", "erase", "--email", PEOPLE[1]["email"], "--yes")
    assert refused.returncode == 1 and f"under legal hold (group {gid}: police inquiry)" in refused.stderr

    again = await acli(layout, "archive", "hold", "--pair", gid, "--reason", "again")
    assert again.returncode == 0 and f"group {gid} was already under legal hold" in again.stdout
    pair = await acreate_pair(layout)
    wrong = await acli(layout, "archive", "hold", "--group", str(pair["id"]), "--reason", "x")
    assert (wrong.returncode, wrong.stderr) == (1, f"error: no group with id {pair['id']}\n")
    released = await acli(layout, "archive", "release-hold", "--group", gid)
    assert released.returncode == 0 and f"group {gid}: legal hold released" in released.stdout
    report = await purge(layout, "--now", later)
    assert [(p["pair_id"], p["kind"]) for p in report["purged"]] == [(group["id"], "group")]


async def test_a_purge_scrubs_the_delivery_error_quoting_a_members_address(layout: Layout, sink: Sink) -> None:
    """A smarthost's refusal quotes the recipient ("550 5.1.1 <jane.doe@...>"), kept as the copy's last error:
    the purge scrubs it, and a pair purged by a version that left it is purged again for it."""
    from tests.store_scan import traces
    from tests.support import MENTEE

    set_retention(layout, {"after_close": "1d"})
    pair, refusal = await refused_quoting_the_mentee(layout, sink)
    assert (await acli(layout, "pair", "close", str(pair["id"]))).returncode == 0
    later = datetime.now(UTC) + timedelta(days=3)
    assert [p["pair_id"] for p in (await purge(layout, "--now", later.isoformat()))["purged"]] == [pair["id"]]
    assert await traces(layout, MENTEE["email"]) == []

    engine = create_engine(store_url(layout))  # as an older version left it
    try:
        async with transaction(engine) as connection:
            await connection.execute(update(outbound).where(outbound.c.state == "failed").values(last_error=refusal))
    finally:
        await engine.dispose()
    again = await purge(layout, "--now", (later + timedelta(days=1)).isoformat())
    assert [p["pair_id"] for p in again["purged"]] == [pair["id"]]
    assert await traces(layout, MENTEE["email"]) == []
    assert (await acli(layout, "archive", "verify")).returncode == 0
