"""Long listings are streamed, and print exactly what the whole list printed: `pair list` (text and --json)
reads its pairs in chunks by id, `events list` its events in chunks of a thousand. The expected text is
made here from the whole list, read with the store's own functions, as the commands printed it before."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from relay.cli.common import json_default, pair_dict
from relay.store import events
from relay.store.database import create_engine, transaction
from relay.store.events import list_events
from relay.store.messages import count_by_pair
from relay.store.pairs import list_pairs
from tests.bulkstore import enrol_many
from tests.support import DOMAIN, Layout, cli, read_store, store_url

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
    listed = cli(layout, "pair", "list", "--program", "stem", "--json")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout == _whole(whole)
    text = cli(layout, "pair", "list", "--program", "stem")
    assert text.stdout.splitlines() == [
        f"{p['id']:>5} {p['program']:<16} {p['status']:<7} {p['mentor']['handle']:<16} "
        f"{p['mentee']['handle']:<16} messages={p['messages']}" for p in whole]
    everyone = cli(layout, "pair", "list", "--json")  # the other program's pairs too, after these
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
    listed = cli(layout, "events", "list", "--json", "--limit", "2100")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout == _whole(whole)
    refused = cli(layout, "events", "list", "--json", "--kind", "refused", "--limit", "5000")
    assert [e["detail"]["n"] for e in json.loads(refused.stdout)] == list(range(0, EVENTS, 3))
    assert cli(layout, "events", "list", "--kind", "nothing").stdout == "no events\n"
    assert cli(layout, "events", "list", "--kind", "nothing", "--json").stdout == "[]\n"
