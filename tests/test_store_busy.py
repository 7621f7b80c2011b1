"""A store whose write lock another process holds longer than the relay waits (WRITER_WAIT, SQLite's busy
timeout): the sender gets 451 saying to try later, and the log one warning line, never a traceback (a long
`pair import` used to hold the lock for minutes, and each message meanwhile logged "database is locked" with
its whole traceback)."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy import func, select

from relay.config import load_settings
from relay.service import Relay
from relay.store import database
from relay.store.database import create_engine, transaction
from relay.store.schema import messages
from tests.support import MENTEE, Layout, Sink, acreate_pair, eventually, rows, send, simple_message, store_url


async def test_a_busy_store_is_451_try_later_and_one_warning_line(
        layout: Layout, sink: Sink, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    pair = await acreate_pair(layout)
    monkeypatch.setattr(database, "WRITER_WAIT", 0.5)  # instead of 15 s: the relay's writers give up sooner
    caplog.set_level(logging.INFO)
    relay = Relay(load_settings(layout.config))
    await relay.start()
    other = create_engine(store_url(layout))  # another process's writer, as `pair import` is
    try:
        async with transaction(other):
            message = simple_message(MENTEE["email"], pair["mentor_alias"], "help", "Can we talk tonight?")
            code, reply = await asyncio.wait_for(
                send(layout.smtp_port, message, MENTEE["email"], pair["mentor_alias"]), 60)
            assert code == 451, reply
            assert "try again later" in reply and "busy" in reply, reply
            assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records if r.exc_info]
            # (intake's line; the delivery worker, starting meanwhile, may warn of its own try as well)
            warned = [r.getMessage() for r in caplog.records
                      if r.levelno == logging.WARNING and "busy" in r.getMessage() and "DATA" in r.getMessage()]
            assert len(warned) == 1 and "\n" not in warned[0], warned
            # several at once (one group commit): each answered 451 after one wait, not retried one by one
            others = [simple_message(MENTEE["email"], pair["mentor_alias"], f"more {n}", "and this") for n in range(4)]
            replies = await asyncio.wait_for(asyncio.gather(*(
                send(layout.smtp_port, raw, MENTEE["email"], pair["mentor_alias"]) for raw in others)), 60)
        assert [code for code, _ in replies] == [451] * 4, replies
        assert not [r for r in caplog.records if "one by one" in r.getMessage()]
        # the lock is free again: the sender's retry is taken
        code, reply = await asyncio.wait_for(send(layout.smtp_port, message, MENTEE["email"], pair["mentor_alias"]), 60)
        assert code == 250, reply
    finally:
        await other.dispose()
        await relay.stop()
    assert (await rows(layout, select(func.count()).select_from(messages)))[0][0] == 1


async def test_the_delivery_worker_outlasts_a_store_busy_as_it_starts(
        layout: Layout, sink: Sink, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """The delivery worker's first write (giving back its earlier claims) meets a store another writer holds
    longer than a writer waits: it warns and tries again, and delivers once the lock is free. (It used to end
    on the error: the relay went on taking mail in and delivered none of it until a restart; seen on a loaded
    PostgreSQL run.)"""
    pair = await acreate_pair(layout)
    monkeypatch.setattr(database, "WRITER_WAIT", 0.5)
    caplog.set_level(logging.INFO)
    relay = Relay(load_settings(layout.config))
    await relay.start()
    await relay.worker.stop()
    other = create_engine(store_url(layout))
    try:
        async with transaction(other):
            relay.worker.start()
            await eventually(lambda: [r for r in caplog.records if "earlier claims" in r.getMessage()], timeout=30)
        message = simple_message(MENTEE["email"], pair["mentor_alias"], "help", "Can we talk tonight?")
        code, reply = await asyncio.wait_for(send(layout.smtp_port, message, MENTEE["email"], pair["mentor_alias"]), 60)
        assert code == 250, reply
        (delivered,) = await sink.wait_for(1)
        assert "Can we talk tonight?" in delivered.raw.decode("utf-8", "replace")
    finally:
        await other.dispose()
        await relay.stop()
