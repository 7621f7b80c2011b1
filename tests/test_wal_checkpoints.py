"""SQLite: `serve`'s commits leave the WAL checkpoint to a task of their own (relay/store/checkpoints.py), so
a group commit never copies the log into the database file within its turn to write; and that task keeps
the log from growing without end.

These tests are about SQLite's write-ahead log, so their relays run on a SQLite file whatever backend the
rest of the suite uses (PostgreSQL has no such log to checkpoint).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from relay.config import load_settings
from relay.service import Relay
from relay.store import events
from relay.store.database import transaction
from tests.support import Layout, free_port

T0 = datetime(2026, 6, 1, 14, 0, tzinfo=UTC)
PAGE = 4096
ROUND = 100  # events of ~4 KB each per commit: about 100 pages of log


def sqlite_relay(tmp_path: Path) -> Relay:
    layout = Layout(root=tmp_path / "relay", smtp_port=free_port(), sink_port=None, database="sqlite:///relay.db")
    layout.write()
    return Relay(load_settings(layout.config))


async def write_round(relay: Relay, number: int, through: str) -> None:
    """One commit of ROUND events with ~4 KB of text each, through the relay's engine (as the console's actions
    write) or through its group committer (as intake and delivery write: in the committer's own thread)."""
    values = [events.event_values("test.filler", T0, n=number * ROUND + k, text="x" * 4000) for k in range(ROUND)]
    if through == "committer":
        await relay.committer.run(lambda connection: events.write(connection, values))
        return
    async with transaction(relay.engine) as connection:
        await events.write(connection, values)


def log_pages(relay: Relay) -> int:
    """The pages the log file can hold (a 32-byte header, then a 24-byte header and a page per frame)."""
    path = Path(relay.engine.url.database or "")
    wal = path.with_name(path.name + "-wal")
    return max(0, wal.stat().st_size - 32) // (PAGE + 24) if wal.exists() else 0


@pytest.mark.parametrize("through", ["engine", "committer"])
async def test_the_relays_commits_do_not_checkpoint_the_log_its_checkpointer_does(tmp_path: Path,
                                                                                  through: str) -> None:
    relay = sqlite_relay(tmp_path)
    relay.checkpointer.every = 3600  # the test runs each checkpoint itself (run_once), when it means to
    await relay.start()
    try:
        await relay.checkpointer.run_once()
        for number in range(15):  # about 1,500 pages: SQLite's own commits would checkpoint at 1,000
            await write_round(relay, number, through)
        grown = log_pages(relay)
        assert grown > 1400, f"the log holds {grown} pages: a commit checkpointed it"
        done = await relay.checkpointer.run_once()
        assert done is not None and not done.busy and done.copied == done.logged >= grown - 5
        for number in range(15, 30):  # the log starts again from its beginning once it is all copied in
            await write_round(relay, number, through)
            if number % 3 == 0:
                await relay.checkpointer.run_once()
        assert log_pages(relay) <= grown, "the checkpoints did not let the log start again"
    finally:
        await relay.stop()
