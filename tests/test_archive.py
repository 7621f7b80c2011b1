"""The tamper-evident archive: every writer is chained, and verify finds an edited, removed or
reordered row or entry, from the real relay's store and through the real CLI."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from relay.archive.verify import Verdict, verify
from relay.store.database import create_engine
from tests.archive_support import Archive, build_archive
from tests.support import Layout, Sink, cli


async def check(db: Path) -> Verdict:
    engine = create_engine(f"sqlite+aiosqlite:///{db}")
    try:
        return await verify(engine)
    finally:
        await engine.dispose()


def copy_of(db: Path, target: Path) -> sqlite3.Connection:
    source = sqlite3.connect(db)
    copy = sqlite3.connect(target)
    source.backup(copy)
    source.close()
    return copy


def seq_of(connection: sqlite3.Connection, kind: str, ref: str) -> int:
    return int(connection.execute("SELECT seq FROM archive_chain WHERE kind = ? AND ref = ?", (kind, ref))
               .fetchone()[0])


async def test_every_archived_row_is_chained_and_verifies(layout: Layout, sink: Sink) -> None:
    archive = await build_archive(layout, sink)
    db = sqlite3.connect(archive.db)
    counts = {table: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
              for table in ("messages", "outbound", "events", "archive_chain")}
    kinds = {row[0] for row in db.execute("SELECT kind FROM events")}
    db.close()
    assert {"accepted", "decision", "refused", "released", "rejected", "delivered"} <= kinds
    assert counts["messages"] == 4  # the refused stranger's message is not archived, its refusal is
    assert counts["archive_chain"] == counts["messages"] + counts["outbound"] + counts["events"]
    verdict = await check(archive.db)
    assert verdict.ok and verdict.entries == counts["archive_chain"]

    result = cli(layout, "archive", "verify", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["entries"] == counts["archive_chain"]
    shown = cli(layout, "archive", "verify", "--progress")
    assert shown.returncode == 0 and f"{counts['archive_chain']} entries" in shown.stdout
    assert f"{counts['archive_chain']}/{counts['archive_chain']}" in shown.stderr  # the progress bar
    quiet = cli(layout, "archive", "verify")
    assert quiet.returncode == 0 and quiet.stderr == ""  # no TTY, no --progress: no bar


Tamper = Callable[[sqlite3.Connection, Archive], tuple[str, str, int | None, str]]


def edit_message_body(db: sqlite3.Connection, archive: Archive) -> tuple[str, str, int | None, str]:
    ref = archive.held_ids[1]
    db.execute("UPDATE messages SET raw = CAST(replace(CAST(raw AS TEXT), 'next week', 'tomorrow') AS BLOB) "
               "WHERE id = ?", (ref,))
    return "message", ref, seq_of(db, "message", ref), "changed"


def edit_decision(db: sqlite3.Connection, archive: Archive) -> tuple[str, str, int | None, str]:
    ref = str(db.execute("SELECT id FROM events WHERE kind = 'rejected'").fetchone()[0])
    db.execute("UPDATE events SET detail = '{\"reason\": \"spam\"}' WHERE id = ?", (int(ref),))
    return "event", ref, seq_of(db, "event", ref), "changed"


def edit_delivered_copy(db: sqlite3.Connection, archive: Archive) -> tuple[str, str, int | None, str]:
    ref = db.execute("SELECT id FROM outbound WHERE message_id = ?", (archive.held_ids[0],)).fetchone()[0]
    db.execute("UPDATE outbound SET rcpt = 'someone@else.example' WHERE id = ?", (ref,))
    return "outbound", ref, seq_of(db, "outbound", ref), "changed"


def remove_event(db: sqlite3.Connection, archive: Archive) -> tuple[str, str, int | None, str]:
    ref = str(db.execute("SELECT id FROM events WHERE kind = 'refused'").fetchone()[0])
    db.execute("DELETE FROM events WHERE id = ?", (int(ref),))
    return "event", ref, seq_of(db, "event", ref), "removed"


def remove_message(db: sqlite3.Connection, archive: Archive) -> tuple[str, str, int | None, str]:
    ref = archive.held_ids[1]
    for table in ("held", "thread_ids", "outbound"):
        db.execute(f"DELETE FROM {table} WHERE message_id = ?", (ref,))
    db.execute("DELETE FROM messages WHERE id = ?", (ref,))
    return "message", ref, seq_of(db, "message", ref), "removed"


def remove_entry(db: sqlite3.Connection, archive: Archive) -> tuple[str, str, int | None, str]:
    seq = 7
    db.execute("DELETE FROM archive_chain WHERE seq = ?", (seq,))
    following = db.execute("SELECT kind, ref FROM archive_chain WHERE seq = ?", (seq + 1,)).fetchone()
    return following[0], following[1], seq, "missing"


def remove_last_entry(db: sqlite3.Connection, archive: Archive) -> tuple[str, str, int | None, str]:
    kind, ref = db.execute("SELECT kind, ref FROM archive_chain ORDER BY seq DESC LIMIT 1").fetchone()
    db.execute("DELETE FROM archive_chain WHERE seq = (SELECT max(seq) FROM archive_chain)")
    return kind, ref, None, "not in the chain"


def swap_entries(db: sqlite3.Connection, archive: Archive) -> tuple[str, str, int | None, str]:
    kind, ref = db.execute("SELECT kind, ref FROM archive_chain WHERE seq = 6").fetchone()
    db.execute("UPDATE archive_chain SET seq = -1 WHERE seq = 5")
    db.execute("UPDATE archive_chain SET seq = 5 WHERE seq = 6")
    db.execute("UPDATE archive_chain SET seq = 6 WHERE seq = -1")
    return kind, ref, 5, "does not follow"


def swap_event_rows(db: sqlite3.Connection, archive: Archive) -> tuple[str, str, int | None, str]:
    first, second = (row[0] for row in db.execute("SELECT id FROM events ORDER BY id LIMIT 2 OFFSET 3"))
    db.execute("UPDATE events SET id = -1 WHERE id = ?", (first,))
    db.execute("UPDATE events SET id = ? WHERE id = ?", (first, second))
    db.execute("UPDATE events SET id = ? WHERE id = -1", (second,))
    return "event", str(first), seq_of(db, "event", str(first)), "changed"


def rewrite_entry_for_edit(db: sqlite3.Connection, archive: Archive) -> tuple[str, str, int | None, str]:
    """An editor who also recomputes the row's entry (content and entry hash) breaks the next link."""
    from relay.archive import chain

    ref = str(db.execute("SELECT id FROM events WHERE kind = 'rejected'").fetchone()[0])
    db.execute("UPDATE events SET actor = 'mod-bob' WHERE id = ?", (int(ref),))
    seq = seq_of(db, "event", ref)
    kind_, at, actor, pair_id, message_id, detail = db.execute(
        "SELECT kind, at, actor, pair_id, message_id, detail FROM events WHERE id = ?", (int(ref),)).fetchone()
    when = datetime.fromisoformat(at).replace(tzinfo=UTC)
    content = chain.content_hash("event", {"kind": kind_, "at": when, "actor": actor, "pair_id": pair_id,
                                           "message_id": message_id, "detail": detail})
    entry_at, prev = db.execute("SELECT at, prev_hash FROM archive_chain WHERE seq = ?", (seq,)).fetchone()
    digest = chain.entry_hash(seq, datetime.fromisoformat(entry_at).replace(tzinfo=UTC), "event", ref, pair_id,
                              content, prev)
    db.execute("UPDATE archive_chain SET content_hash = ?, entry_hash = ? WHERE seq = ?", (content, digest, seq))
    following = db.execute("SELECT kind, ref FROM archive_chain WHERE seq = ?", (seq + 1,)).fetchone()
    return following[0], following[1], seq + 1, "does not follow"


def edit_entry_only(db: sqlite3.Connection, archive: Archive) -> tuple[str, str, int | None, str]:
    kind, ref = db.execute("SELECT kind, ref FROM archive_chain WHERE seq = 4").fetchone()
    db.execute("UPDATE archive_chain SET pair_id = 99 WHERE seq = 4")
    return kind, ref, 4, "entry itself was changed"


def insert_around_the_store(db: sqlite3.Connection, archive: Archive) -> tuple[str, str, int | None, str]:
    db.execute("INSERT INTO events (at, kind, actor, pair_id, detail) VALUES "
               "('2026-03-02 12:00:00.000000', 'released', 'ghost', 1, '{}')")
    ref = str(db.execute("SELECT max(id) FROM events").fetchone()[0])
    return "event", ref, None, "not in the chain"


TAMPERS: list[Tamper] = [edit_message_body, edit_decision, edit_delivered_copy, remove_event, remove_message,
                         remove_entry, remove_last_entry, swap_entries, swap_event_rows, rewrite_entry_for_edit,
                         edit_entry_only, insert_around_the_store]


async def test_verify_finds_each_kind_of_tampering(layout: Layout, sink: Sink, tmp_path: Path) -> None:
    archive = await build_archive(layout, sink)
    assert (await check(archive.db)).ok
    for tamper in TAMPERS:
        target = tmp_path / f"{tamper.__name__}.db"
        db = copy_of(archive.db, target)
        kind, ref, seq, words = tamper(db, archive)
        db.commit()
        db.close()
        verdict = await check(target)
        assert verdict.problem is not None, tamper.__name__
        assert (verdict.problem.kind, verdict.problem.ref, verdict.problem.seq) == (kind, ref, seq), tamper.__name__
        assert words in verdict.problem.what, (tamper.__name__, verdict.problem.what)


async def test_verify_cli_reports_the_first_bad_entry_and_exits_non_zero(layout: Layout, sink: Sink) -> None:
    archive = await build_archive(layout, sink)
    db = sqlite3.connect(archive.db)
    edits = sorted([edit_decision(db, archive), edit_delivered_copy(db, archive)], key=lambda e: e[2] or 0)
    db.commit()
    db.close()
    kind, ref, seq, _ = edits[0]  # two edits: the first in the chain is reported
    result = cli(layout, "archive", "verify")
    assert result.returncode == 1
    assert result.stdout.startswith(f"archive NOT intact: entry {seq} ({kind} {ref}): the archived row was changed")
    data = json.loads(cli(layout, "archive", "verify", "--json").stdout)
    assert data["ok"] is False and data["entries"] == (seq or 0) - 1
    assert data["problem"] == {"seq": seq, "kind": kind, "ref": ref, "what": data["problem"]["what"]}


def test_archived_tables_are_written_only_by_the_chaining_store_functions() -> None:
    """A guard for code added later (other branches, merges): an INSERT into an archived table outside
    the store functions that chain it would leave rows that `archive verify` reports."""
    import re

    from tests.support import REPO

    allowed = {"messages": {"relay/store/messages.py"}, "outbound": {"relay/store/messages.py",
                                                                      "relay/store/outbound.py"},
               "events": {"relay/store/events.py"}}
    found = []
    for path in sorted((REPO / "relay").rglob("*.py")):
        name = str(path.relative_to(REPO))
        if "/migrations/" in name:
            continue
        source = path.read_text()
        for table, writers in allowed.items():
            if re.search(rf"\b{table}\.insert\(|insert\({table}\b|INSERT INTO {table}\b", source) \
                    and name not in writers:
                found.append(f"{name} inserts into {table}")
    assert found == []


async def test_rows_written_before_the_chain_existed_are_chained_by_the_migration(tmp_path: Path) -> None:
    """An installation upgraded from revision 0004 has its existing record chained once, in order."""
    from alembic import command
    from alembic.config import Config as AlembicConfig
    from sqlalchemy import create_engine as create_sync_engine

    from relay.store.database import MIGRATIONS, migrate

    db = tmp_path / "old.db"
    with create_sync_engine(f"sqlite:///{db}").begin() as connection:
        config = AlembicConfig()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        command.upgrade(config, "0004")
    old = sqlite3.connect(db)
    old.executescript("""
        INSERT INTO pairs (id, program_id, status, created_at) VALUES (1, 'stem', 'active', '2025-01-01 10:00:00');
        INSERT INTO members (id, pair_id, program_id, role, email, email_key, name, handle, handle_key, alias)
          VALUES (1, 1, 'stem', 'mentor', 'm@x.example', 'm@x.example', 'M P', 'Oak', 'oak', 'oak.1'),
                 (2, 1, 'stem', 'mentee', 'e@x.example', 'e@x.example', 'E P', 'Elm', 'elm', 'elm.1');
        INSERT INTO messages (id, pair_id, sender_id, recipient_id, envelope_from, body_hash, subject, size, raw,
                              decision, received_at)
          VALUES ('q1', 1, 2, 1, 'e@x.example', 'h', 'Hi', 5, CAST('hello' AS BLOB), 'deliver',
                  '2025-01-02 10:00:00.000000');
        INSERT INTO outbound (id, message_id, pair_id, kind, rcpt, mail_from, out_message_id, raw, state, attempts,
                              next_attempt_at, created_at)
          VALUES ('o1', 'q1', 1, 'relay', 'm@x.example', 'bounce+o1@relay.test', '<o1@relay.test>',
                  CAST('copy' AS BLOB), 'sent', 1, '2025-01-02 10:00:00', '2025-01-02 10:00:00.000000');
        INSERT INTO events (at, kind, actor, pair_id, message_id, detail)
          VALUES ('2025-01-02 10:00:00.000000', 'accepted', 'relay', 1, 'q1', '{}'),
                 ('2025-01-02 10:00:01.000000', 'delivered', 'relay', 1, 'q1', '{"outbound_id": "o1"}');
    """)
    old.commit()
    old.close()
    engine = create_engine(f"sqlite+aiosqlite:///{db}")
    try:
        await migrate(engine)
    finally:
        await engine.dispose()
    verdict = await check(db)
    assert verdict.ok and verdict.entries == 4
    chained = sqlite3.connect(db)
    entries = chained.execute("SELECT kind, ref FROM archive_chain ORDER BY seq").fetchall()
    chained.execute("UPDATE outbound SET raw = CAST('edited' AS BLOB) WHERE id = 'o1'")
    chained.commit()
    chained.close()
    assert entries == [("message", "q1"), ("outbound", "o1"), ("event", "1"), ("event", "2")]
    problem = (await check(db)).problem  # the migrated chain guards the old rows
    assert problem is not None and (problem.seq, problem.ref) == (2, "o1")
