"""Migration 0009 (conversations): a store written by the code before it — pairs with one mentor and one
mentee, a message, its thread ids — keeps every pair as it was, and mail keeps flowing and threading."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import column, select, table

from relay.config import load_settings
from relay.service import Relay
from relay.store.database import MIGRATIONS, create_engine, transaction
from relay.store.pairs import Pair, get_pair, list_pairs
from relay.store.schema import thread_ids
from tests.support import (
    DOMAIN,
    MENTEE,
    MENTOR,
    Layout,
    Sink,
    eventually,
    free_port,
    read_store,
    rows,
    send,
    simple_message,
    store_url,
)

BEFORE = "0009_console_sessions"
WHEN = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).replace(tzinfo=None)  # stored naive UTC, as UTCDateTime does


def _upgrade_to(connection, revision: str) -> None:  # type: ignore[no-untyped-def]
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def _old(name: str, *names: str):  # type: ignore[no-untyped-def]
    return table(name, *(column(n) for n in names))


async def build_old_store(url: str) -> None:
    """The rows `pair create` and one delivered message wrote before conversations existed."""
    engine = create_engine(url)
    try:
        async with transaction(engine) as connection:
            await connection.run_sync(_upgrade_to, BEFORE)
        async with transaction(engine) as connection:
            await connection.execute(_old("pairs", "id", "program_id", "policy", "status", "end_date", "created_at")
                                     .insert().values(id=1, program_id="stem", policy=None, status="active",
                                                      end_date=None, created_at=WHEN))
            member_columns = ("id", "pair_id", "program_id", "role", "email", "email_key", "name", "handle",
                              "handle_key", "alias", "timezone", "hard_bounces")
            for member_id, role, person, alias in ((1, "mentor", MENTOR, "oak.aaaaaa"),
                                                   (2, "mentee", MENTEE, "maple.bbbbbb")):
                await connection.execute(_old("members", *member_columns).insert().values(
                    id=member_id, pair_id=1, program_id="stem", role=role, email=person["email"],
                    email_key=person["email"].casefold(), name=person["name"], handle=person["handle"],
                    handle_key=person["handle"].casefold(), alias=alias, timezone=None, hard_bounces=0))
            await connection.execute(_old(
                "messages", "id", "pair_id", "sender_id", "recipient_id", "envelope_from", "original_message_id",
                "body_hash", "subject", "size", "raw", "decision", "received_at").insert().values(
                id="m1", pair_id=1, sender_id=2, recipient_id=1, envelope_from=MENTEE["email"],
                original_message_id="<old@mail.example.org>", body_hash="0" * 64, subject="Hello", size=5,
                raw=b"Hello", decision="deliver", received_at=WHEN))
            await connection.execute(_old("thread_ids", "pair_id", "message_id", "sender_role", "original_id",
                                          "generated_id").insert().values(
                pair_id=1, message_id="m1", sender_role="mentee", original_id="<old@mail.example.org>",
                generated_id=f"<generated-old@{DOMAIN}>"))
    finally:
        await engine.dispose()


async def test_pairs_survive_the_migration_and_mail_still_flows(tmp_path: Path) -> None:
    sink = await Sink().start()
    layout = Layout(root=tmp_path / "relay", smtp_port=free_port(), sink_port=sink.port)
    layout.write()
    await build_old_store(store_url(layout))
    running = Relay(load_settings(layout.config))
    await running.start()  # migrates to the newest revision
    try:
        pairs = await read_store(layout, list_pairs)
        assert len(pairs) == 1 and isinstance(pairs[0], Pair)
        pair = pairs[0]
        assert (pair.id, pair.kind, pair.status, pair.program_id) == (1, "pair", "active", "stem")
        assert (pair.mentor.handle, pair.mentor.email, pair.mentor.alias) == ("Oak", MENTOR["email"], "oak.aaaaaa")
        assert (pair.mentee.handle, pair.mentee.email, pair.mentee.alias) == ("Maple", MENTEE["email"], "maple.bbbbbb")
        assert [m.id for m in pair.members] == [1, 2]
        assert (await read_store(layout, lambda c: get_pair(c, 1))) == pair
        ((sender_id, recipient_id),) = await rows(layout, select(thread_ids.c.sender_id, thread_ids.c.recipient_id))
        assert (sender_id, recipient_id) == (2, 1)  # backfilled from the message

        # The mentor answers the old message from his client: delivered, threaded on the mentee's own id.
        mentee_alias = f"maple.bbbbbb@{DOMAIN}"
        code, reply = await send(layout.smtp_port, simple_message(
            f"José Müller <{MENTOR['email']}>", mentee_alias, "Re: Hello", "Hello Jane, José here",
            In_Reply_To=f"<generated-old@{DOMAIN}>"), MENTOR["email"], mentee_alias)
        assert code == 250, reply
        # (the start-up sweep may check in on the old, silent pair meanwhile: pick the answer by its subject)
        (arrived,) = await eventually(lambda: [r for r in sink.received if str(r.message["Subject"]) == "Re: Hello"])
        assert arrived.rcpt_tos == [MENTEE["email"]]
        assert arrived.message["In-Reply-To"] == "<old@mail.example.org>"
        assert arrived.message.get_content().strip() == "Hello Maple, Oak here"
    finally:
        await running.stop()
        await sink.stop()
