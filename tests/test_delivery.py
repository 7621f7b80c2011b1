"""The delivery worker: retries temporary failures, records permanent ones, resumes after restart."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap

from aiosmtpd.smtp import SMTP
from prometheus_client.parser import text_string_to_metric_families

from relay.config import load_settings
from relay.metrics import exposition
from relay.service import Relay
from tests.support import (
    MENTEE,
    MENTOR,
    REPO,
    Layout,
    Sink,
    acli,
    acreate_pair,
    eventually,
    nothing_queued,
    send,
    simple_message,
)


async def mentee_writes(layout: Layout, pair: dict, subject: str) -> None:  # type: ignore[type-arg]
    code, text = await send(layout.smtp_port, simple_message(MENTEE["email"], pair["mentor_alias"], subject, "hi"),
                            MENTEE["email"], pair["mentor_alias"])
    assert code == 250, text


async def queue(layout: Layout, state: str | None = None) -> list[dict]:  # type: ignore[type-arg]
    """`queue list --json` without blocking the loop the relay and the sink run on."""
    args = ["queue", "list", "--json"] + (["--state", state] if state else [])
    return json.loads((await acli(layout, *args)).stdout)


async def events(layout: Layout, kind: str) -> list[dict]:  # type: ignore[type-arg]
    return json.loads((await acli(layout, "events", "list", "--kind", kind, "--json")).stdout)


async def test_temporary_failure_is_retried_then_delivered(relay: Relay, layout: Layout, sink: Sink) -> None:
    pair = await acreate_pair(layout)
    sink.handler.scripted = ["451 4.7.1 greylisted, come back later", "421 4.3.2 busy"]
    await mentee_writes(layout, pair, "greylisted")
    received = await sink.wait_for(1, timeout=20)
    assert received[0].message["Subject"] == "greylisted"
    sent = await eventually(lambda: queue(layout, "sent"))
    assert sent[0]["attempts"] == 3
    deferred = await events(layout, "deferred")
    assert [("451" in e["detail"]["error"], "421" in e["detail"]["error"]) for e in deferred] == [
        (True, False), (False, True)]


async def test_permanent_failure_is_recorded_and_listed(relay: Relay, layout: Layout, sink: Sink) -> None:
    pair = await acreate_pair(layout)
    sink.handler.scripted = ["550 5.1.1 mailbox does not exist"]
    await mentee_writes(layout, pair, "to nowhere")
    failed = await eventually(lambda: queue(layout, "failed"))
    assert failed[0]["attempts"] == 1 and "550 5.1.1" in failed[0]["last_error"]
    assert "550 5.1.1" in (await events(layout, "delivery_failed"))[0]["detail"]["error"]
    text = (await acli(layout, "queue", "list", "--state", "failed")).stdout
    assert "failed" in text and "mailbox does not exist" in text
    await eventually(lambda: nothing_queued(layout), timeout=20)  # all of it out before the absence
    assert sink.received == []


async def test_retry_schedule_ends_in_failure(relay: Relay, layout: Layout, sink: Sink) -> None:
    pair = await acreate_pair(layout)  # the test layout's schedule: 1s, 1s, 1s -> 4 attempts in all
    sink.handler.scripted = ["451 4.3.0 down"] * 10
    await mentee_writes(layout, pair, "never")
    failed = await eventually(lambda: queue(layout, "failed"), timeout=20)
    assert failed[0]["attempts"] == 4 and "gave up after 4 attempts" in failed[0]["last_error"]
    assert len(await events(layout, "deferred")) == 3


async def test_an_unreachable_smarthost_pauses_delivery_and_leaves_the_queue_untried(layout: Layout,
                                                                                     sink: Sink) -> None:
    """While nobody answers on the smarthost's port, the worker pauses (the poll interval, doubled each time)
    instead of trying each queued message on its own schedule: no attempt is counted, nothing is deferred, so
    an outage neither writes a deferral per message nor brings a message nearer to giving up; once the
    smarthost is back, every message goes out."""
    port = sink.port
    await sink.stop()  # the smarthost is down: its port refuses connections
    relay = Relay(load_settings(layout.config))
    await relay.start()
    try:
        pair = await acreate_pair(layout)
        for number in range(5):
            await mentee_writes(layout, pair, f"during the outage {number}")
        await eventually(lambda: relay.worker.pauses >= 3, timeout=20)
        assert [(entry["state"], entry["attempts"]) for entry in await queue(layout)] == [("queued", 0)] * 5
        assert await events(layout, "deferred") == []
        during = await smarthost_metrics(relay)
        assert during["mentor_relay_smarthost_unreachable"] == 1 and during["mentor_relay_delivery_pauses_total"] >= 3
        back = await asyncio.get_running_loop().create_server(
            lambda: SMTP(sink.handler, hostname="sink.test", decode_data=False), "127.0.0.1", port)
        try:
            received = await sink.wait_for(5, timeout=30)
            await eventually(lambda: _reachable_again(relay))
        finally:
            back.close()
    finally:
        await relay.stop()
    assert sorted(r.message["Subject"] for r in received) == [f"during the outage {n}" for n in range(5)]


async def smarthost_metrics(relay: Relay) -> dict[str, float]:
    """The /metrics samples about the smarthost, as Prometheus's own parser reads them."""
    body = (await exposition(relay.engine, relay.clock)).decode()
    return {sample.name: sample.value for family in text_string_to_metric_families(body) for sample in family.samples
            if sample.name.startswith(("mentor_relay_smarthost", "mentor_relay_delivery_pauses"))}


async def _reachable_again(relay: Relay) -> bool:
    return (await smarthost_metrics(relay))["mentor_relay_smarthost_unreachable"] == 0


async def test_restart_resumes_the_queue(layout: Layout, sink: Sink) -> None:
    await sink.stop()  # the smarthost is down while the message is accepted
    first = Relay(load_settings(layout.config))
    await first.start()
    try:
        pair = await acreate_pair(layout)
        await mentee_writes(layout, pair, "survives a restart")
        await eventually(lambda: first.worker.pauses >= 1)  # tried, and paused: the smarthost is down
    finally:
        await first.stop()
    restarted_sink = await Sink().start()
    try:
        layout.sink_port = restarted_sink.port
        layout.write()
        second = Relay(load_settings(layout.config))
        await second.start()
        try:
            received = await restarted_sink.wait_for(1, timeout=20)
            assert received[0].message["Subject"] == "survives a restart"
        finally:
            await second.stop()
    finally:
        await restarted_sink.stop()


QUEUE_FROM_OTHER_PROCESS = textwrap.dedent("""
    import asyncio, sys
    from pathlib import Path
    from datetime import timedelta
    from relay.clock import SystemClock
    from relay.config import load_settings
    from relay.store.committer import Committer
    from relay.store.database import create_engine
    from relay.store.messages import Accepted, OutboundEntry, store_accepted
    from relay.store.pairs import get_pair

    async def main(config, pair_id):
        settings = load_settings(Path(config))
        engine = create_engine(settings.database_url)
        committer = Committer(engine)
        async with engine.connect() as c:
            pair = await get_pair(c, pair_id)
        now = SystemClock().now()
        raw = b"Subject: from another process\\r\\nFrom: a@b\\r\\n\\r\\nqueued elsewhere\\r\\n"
        item = Accepted(id="otherproc1", pair_id=pair.id, sender_id=pair.mentee.id, sender_role="mentee",
            recipient_id=pair.mentor.id, envelope_from="cli", remote_addr=None, original_message_id=None,
            body_hash="x", subject="from another process", raw=raw, decision="deliver", reasons=[],
            received_at=now, duplicate_window=timedelta(days=1), domain="relay.test",
            outbound=OutboundEntry(rcpt=pair.mentor.email, out_message_id="<otherproc1@relay.test>", raw=raw))
        await committer.run(lambda c: store_accepted(c, item))
        await committer.close()
        await engine.dispose()

    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
""")


async def test_entries_queued_by_another_process_are_picked_up(relay: Relay, layout: Layout, sink: Sink) -> None:
    pair = await acreate_pair(layout)
    # Another process (as a CLI release will) writes a queue entry; the serving worker was not woken. It runs
    # in a thread: run on this loop, it would stop the relay's loop, so a write transaction the relay had begun
    # (a start-up sweep's) could not end, and the other process could wait for its lock until it gave up.
    await asyncio.to_thread(subprocess.run, [sys.executable, "-c", QUEUE_FROM_OTHER_PROCESS, str(layout.config),
                                             str(pair["id"])], check=True, cwd=REPO, timeout=60)
    received = await sink.wait_for(1, timeout=10)
    assert received[0].message["Subject"] == "from another process"
    assert received[0].rcpt_tos == [MENTOR["email"]]
