"""The engine: a message's work runs in worker processes, bounded per message, without stalling others.

The relay runs in-process with two worker processes (relay.yaml `workers: 2`), as `serve` does by default.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys

import pytest

from relay.config import load_settings
from relay.service import Relay
from relay.workers import tasks
from tests.support import MENTEE, Layout, Sink, acreate_pair, eventually, send, simple_message

UNDER_WAY = 0.2  # seconds of CPU a large task's thread has used when it counts as well under way


def _heavy_message(sender: str, to: str, name: str = "many", parts_count: int = 20_000, pad: int = 0) -> bytes:
    # 20,000 MIME parts (~0.9 MB): about 1 s of CPU to anonymise, well over the test's 0.3 s budget
    parts = "".join(f"--b\r\nContent-Type: text/plain\r\n\r\nhello {i}{' ' * pad}\r\n" for i in range(parts_count))
    return (f"From: {sender}\r\nTo: {to}\r\nSubject: Many parts\r\nMessage-ID: <{name}@example.org>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" + parts + "--b--\r\n").encode()


async def _relay_with_two_workers(layout: Layout, cpu_seconds: float) -> tuple[Relay, str]:
    """A started relay with two worker processes and this CPU budget, and the alias of a new pair's mentor."""
    layout.overrides.update(workers=2, limits={"message_cpu_seconds": cpu_seconds})
    layout.write()
    pair = await acreate_pair(layout)
    relay = Relay(load_settings(layout.config))
    await relay.start()
    return relay, pair["mentor_alias"]


async def test_a_message_over_the_cpu_budget_is_refused_while_others_pass_and_the_worker_is_replaced(
    layout: Layout, sink: Sink, caplog: pytest.LogCaptureFixture
) -> None:
    relay, alias = await _relay_with_two_workers(layout, cpu_seconds=0.3)
    try:
        assert relay.pool.workers == 2
        heavy = asyncio.create_task(send(layout.smtp_port, _heavy_message(MENTEE["email"], alias), MENTEE["email"],
                                         alias))
        small = await send(layout.smtp_port, simple_message(MENTEE["email"], alias, "Short note", "hello"),
                           MENTEE["email"], alias)
        assert small[0] == 250, small
        assert not heavy.done()  # the small one was answered while the heavy one was still at work
        status, reply = await asyncio.wait_for(heavy, 60)
        assert status == 554 and reply.startswith("5.6.0") and "CPU" in reply, (status, reply)
        assert relay.pool.replaced >= 1
        later = await send(layout.smtp_port, simple_message(MENTEE["email"], alias, "Later", "still here"),
                           MENTEE["email"], alias)
        assert later[0] == 250, later
        received = await sink.wait_for(2, timeout=30)
        assert sorted(r.message["Subject"] for r in received) == ["Later", "Short note"]
    finally:
        await relay.stop()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_huge_folded_header_gets_a_clear_reply_and_no_traceback(
    layout: Layout, sink: Sink, caplog: pytest.LogCaptureFixture
) -> None:
    layout.overrides.update(workers=1)
    layout.write()
    pair = await acreate_pair(layout)
    alias = pair["mentor_alias"]
    relay = Relay(load_settings(layout.config))
    await relay.start()
    try:
        folded = "\r\n ".join(["a folded subject line of words"] * 7_000)  # ~210 KB
        raw = (f"From: {MENTEE['email']}\r\nTo: {alias}\r\nSubject: {folded}\r\n"
               "Message-ID: <huge@example.org>\r\n\r\nhello\r\n").encode()
        status, reply = await send(layout.smtp_port, raw, MENTEE["email"], alias)
        assert status == 554 and reply.startswith("5.6.0"), (status, reply)
        assert "header" in reply and "KB" in reply
        ok = await send(layout.smtp_port, simple_message(MENTEE["email"], alias, "Normal", "hi"), MENTEE["email"],
                        alias)
        assert ok[0] == 250
        [received] = await sink.wait_for(1, timeout=30)
        assert received.message["Subject"] == "Normal"
    finally:
        await relay.stop()
    assert not [r for r in caplog.records if r.exc_info]


async def test_a_small_message_is_answered_while_large_ones_fill_their_lane(
    layout: Layout, sink: Sink, caplog: pytest.LogCaptureFixture
) -> None:
    """Two large messages at work (one in the large lane, one waiting for it) do not hold up a small message
    from another session: it gets its 250 first, and the large ones are accepted afterwards."""
    relay, alias = await _relay_with_two_workers(layout, cpu_seconds=60)
    try:
        large = [asyncio.create_task(send(layout.smtp_port, _heavy_message(
            MENTEE["email"], alias, f"large-{i}", parts_count=4_000, pad=40),
                                          MENTEE["email"], alias)) for i in range(2)]
        small = await asyncio.wait_for(send(layout.smtp_port, simple_message(
            MENTEE["email"], alias, "Short note", "See you on Tuesday."), MENTEE["email"], alias), 60)
        assert small[0] == 250, small
        assert not all(task.done() for task in large)  # answered while large work was still under way
        answers = await asyncio.wait_for(asyncio.gather(*large), 120)
        assert [code for code, _ in answers] == [250, 250], answers
        received = await sink.wait_for(3, timeout=60)
        assert sorted(r.message["Subject"] for r in received) == ["Many parts", "Many parts", "Short note"]
        assert relay.pool.replaced == 0
    finally:
        await relay.stop()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a nice value per thread is Linux's")
def test_large_work_runs_at_a_lower_priority_and_leaves_the_worker_at_its_own() -> None:
    before = os.getpriority(os.PRIO_PROCESS, 0)
    assert tasks.at_low_priority(os.getpriority, os.PRIO_PROCESS, 0) == min(19, before + tasks.LOW_PRIORITY)
    assert os.getpriority(os.PRIO_PROCESS, 0) == before
    with pytest.raises(ZeroDivisionError):  # what the work raises reaches the caller as it was
        tasks.at_low_priority(divmod, 1, 0)


async def test_a_worker_killed_under_a_message_costs_it_a_temporary_refusal_and_nothing_else(
    layout: Layout, sink: Sink, caplog: pytest.LogCaptureFixture
) -> None:
    """A worker that dies under a message (killed from outside, out of memory) costs that message a 451 (the
    client tries again later); the worker is replaced and the next messages pass."""
    relay, alias = await _relay_with_two_workers(layout, cpu_seconds=60)
    try:
        pids = relay.pool.pids()
        heavy = asyncio.create_task(send(layout.smtp_port, _heavy_message(MENTEE["email"], alias), MENTEE["email"],
                                         alias))
        await eventually(lambda: _at_work(pids), timeout=20, interval=0.02)
        for pid in pids:
            os.kill(pid, 9)
        status, reply = await asyncio.wait_for(heavy, 60)
        assert status == 451 and reply.startswith("4.3.0"), (status, reply)
        assert relay.pool.replaced >= 1
        for subject in ("After", "And again"):  # each worker, the replacements, takes one
            code, text = await send(layout.smtp_port, simple_message(MENTEE["email"], alias, subject, "still here"),
                                    MENTEE["email"], alias)
            assert code == 250, text
        received = await sink.wait_for(2, timeout=30)
        assert sorted(r.message["Subject"] for r in received) == ["After", "And again"]
    finally:
        await relay.stop()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    # the worker killed while idle was found dead as a task was sent to it, and the task went to another
    assert any("had died while idle" in r.getMessage() for r in caplog.records)


async def _at_work(pids: list[int]) -> bool:
    """Whether a worker of these processes is well into a large message's work: a thread at the large tasks'
    priority (tasks.at_low_priority starts one per task) that has used UNDER_WAY seconds of CPU. Only a long
    task (the heavy message's anonymising, about 1 s) gets there; the same message's header read, a short
    task before it, does not, and a kill after it and before the next found the workers idle (the task then
    went to their replacements and was answered 250: not what this test is about)."""
    ticks = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        with contextlib.suppress(OSError):
            for thread in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{thread}/stat", "rb") as stat:
                    fields = stat.read().rpartition(b")")[2].split()  # fields from the third (state) on
                utime, stime, nice = int(fields[11]), int(fields[12]), int(fields[16])
                if nice == tasks.LOW_PRIORITY and (utime + stime) / ticks >= UNDER_WAY:
                    return True
    return False
