"""Long listings are streamed, and print exactly what the whole list printed: `pair list` (text and --json)
reads its pairs in chunks by id, `events list` its events in chunks of a thousand. The expected text is
made here from the whole list, read with the store's own functions, as the commands printed it before.
`held list` and `queue list` page with --limit and --after (keyset): walking the pages shows every item
once, in the list's order, and a message held between two pages is on a later one."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from relay.cli.common import json_default, pair_dict
from relay.service import Relay
from relay.store import events
from relay.store.database import create_engine, transaction
from relay.store.events import list_events
from relay.store.messages import count_by_pair
from relay.store.pairs import list_pairs
from relay.store.schema import outbound
from tests.bulkstore import enrol_many
from tests.consolekit import prepare, serving
from tests.support import (
    DOMAIN,
    MENTEE,
    Layout,
    Sink,
    acli,
    acreate_pair,
    cli,
    eventually,
    read_store,
    rows,
    send,
    simple_message,
    store_url,
)

PAIRS = 1100  # over two chunks of 500
EVENTS = 2300  # over two chunks of 1000


def _whole(data: Any) -> str:
    return json.dumps(data, indent=2, default=json_default, ensure_ascii=False) + "\n"


async def test_pair_list_streams_the_same_text_and_json(layout: Layout) -> None:
    made = await enrol_many(layout, PAIRS, datetime.now(UTC) - timedelta(days=3))
    await enrol_many(layout, 2, datetime.now(UTC), program="arts", prefix="Arts")

    async def expected(connection: Any) -> list[dict[str, Any]]:
        found = await list_pairs(connection, "stem")
        counts = await count_by_pair(connection, [p.id for p in found])
        return [pair_dict(p, DOMAIN, counts.get(p.id, 0)) for p in found]

    whole = await read_store(layout, expected)
    assert [p["id"] for p in whole] == [m.id for m in made]
    listed = await acli(layout, "pair", "list", "--program", "stem", "--json")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout == _whole(whole)
    text = await acli(layout, "pair", "list", "--program", "stem")
    assert text.stdout.splitlines() == [
        f"{p['id']:>5} {p['program']:<16} {p['status']:<7} {p['mentor']['handle']:<16} "
        f"{p['mentee']['handle']:<16} messages={p['messages']}" for p in whole]
    everyone = await acli(layout, "pair", "list", "--json")  # the other program's pairs too, after these
    assert [p["program"] for p in json.loads(everyone.stdout)] == ["stem"] * PAIRS + ["arts"] * 2


async def test_events_list_streams_the_same_json(layout: Layout) -> None:
    made = await enrol_many(layout, 3, datetime.now(UTC) - timedelta(days=3))
    engine = create_engine(store_url(layout))
    start = datetime(2026, 5, 1, 9, tzinfo=UTC)
    try:
        async with transaction(engine) as connection:
            await events.write(connection, [
                events.event_values("note" if k % 3 else "refused", start + timedelta(minutes=k),
                                    pair_id=made[k % 3].id, reason="stranger", n=k, text="café ☕")
                for k in range(EVENTS)])
    finally:
        await engine.dispose()

    async def expected(connection: Any) -> list[dict[str, Any]]:
        return await list_events(connection, limit=2100)

    whole = await read_store(layout, expected)
    listed = await acli(layout, "events", "list", "--json", "--limit", "2100")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout == _whole(whole)
    refused = await acli(layout, "events", "list", "--json", "--kind", "refused", "--limit", "5000")
    assert [e["detail"]["n"] for e in json.loads(refused.stdout)] == list(range(0, EVENTS, 3))
    assert (await acli(layout, "events", "list", "--kind", "nothing")).stdout == "no events\n"
    assert (await acli(layout, "events", "list", "--kind", "nothing", "--json")).stdout == "[]\n"


def _walk(layout: Layout, *args: str, limit: int) -> tuple[list[list[str]], str]:
    """The ids of each page of a listing (`args` and --json --limit `limit`), following the 'next page'
    cursor on stderr; and the last page's stderr."""
    found: list[list[str]] = []
    after: list[str] = []
    while len(found) < 20:
        page = cli(layout, *args, "--json", "--limit", str(limit), *after)
        assert page.returncode == 0, page.stderr
        found.append([item["id"] for item in json.loads(page.stdout)])
        if "next page: --after " not in page.stderr:
            return found, page.stderr
        after = ["--after", page.stderr.split("next page: --after ", 1)[1].split()[0]]
    raise AssertionError("more than 20 pages")


async def _send(layout: Layout, alias: str, count: int, start: int = 0) -> list[str]:
    ids: list[str] = []
    for k in range(start, start + count):
        code, reply = await send(layout.smtp_port, simple_message(MENTEE["email"], alias, f"question {k}", "Hello"),
                                 MENTEE["email"], alias)
        assert code == 250, reply
        ids.append(reply.rsplit(" ", 1)[-1])
    return ids


async def test_held_list_pages_continue_where_the_last_ended(layout: Layout) -> None:
    prepare(layout)  # the policy holds every message
    async with serving(layout):
        pair = await acreate_pair(layout)
        held_ids = await _send(layout, pair["mentor_alias"], 23)
        pages, last = await asyncio.to_thread(_walk, layout, "held", "list", limit=10)
        assert [len(p) for p in pages] == [10, 10, 3] and last == ""
        assert [i for p in pages for i in p] == held_ids  # each once, oldest first, as the whole list
        whole = json.loads((await acli(layout, "held", "list", "--json")).stdout)
        assert [item["id"] for item in whole] == held_ids

        first = await acli(layout, "held", "list", "--limit", "20")
        assert len(first.stdout.splitlines()) == 20 and first.stderr.startswith("next page: --after ")
        cursor = first.stderr.split()[-1]
        later = await _send(layout, pair["mentor_alias"], 2, start=23)  # held between two pages
        rest = json.loads((await acli(layout, "held", "list", "--json", "--after", cursor)).stdout)
        assert [item["id"] for item in rest] == held_ids[20:] + later

        bad = await acli(layout, "held", "list", "--after", "not-a-cursor")
        assert bad.returncode == 1 and bad.stderr.strip() == "error: --after: not a page cursor that this relay printed"


async def test_queue_list_pages_continue_where_the_last_ended(layout: Layout, sink: Sink, relay: Relay) -> None:
    pair = await acreate_pair(layout)
    sent_ids = await _send(layout, pair["mentor_alias"], 23)
    await sink.wait_for(23, timeout=60)

    async def all_sent() -> bool:
        return [row.state for row in await rows(layout, select(outbound.c.state))] == ["sent"] * 23

    await eventually(all_sent, timeout=30)
    whole = json.loads((await acli(layout, "queue", "list", "--json")).stdout)
    assert sorted(e["message_id"] for e in whole) == sorted(sent_ids)
    for state in ([], ["--state", "sent"]):
        pages, last = await asyncio.to_thread(_walk, layout, "queue", "list", *state, limit=10)
        assert [len(p) for p in pages] == [10, 10, 3] and last == ""
        assert [i for p in pages for i in p] == [e["id"] for e in whole]  # each once, in the list's order
    assert json.loads((await acli(layout, "queue", "list", "--json", "--state", "failed", "--limit", "5")).stdout) == []
    bad = await acli(layout, "queue", "list", "--after", "%%%")
    assert bad.returncode == 1 and "--after: not a page cursor" in bad.stderr
