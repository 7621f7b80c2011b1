"""Console and API lists a page at a time, over real HTTP: /held and /pairs, /api/held and /api/pairs.

More items than a page: walking the "next" links (pages) or the `Link: rel="next"` header (API) shows
every item exactly once, in the list's order, with the total over every page; a reader of another
program sees none of them; a cursor the relay did not write is a clear 400. The queue's reason filter
offers each rule of the waiting mail once.
"""

from __future__ import annotations

import asyncio
import html
import re
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import select

from relay.store.schema import held, pairs
from tests.browserkit import Pages, serious_violations
from tests.bulkstore import Made, enrol_many
from tests.consolekit import add_moderator, base_url, prepare, serving, session, token_for
from tests.support import Layout, cli, rows, send, simple_message
from tests.test_console_browser import log_in

HELD = 110  # over two pages of 50
PAIRS = 120


def _next(page: str) -> str | None:
    found = re.search(r'<a rel="next" href="([^"]+)"', page)
    return html.unescape(found.group(1)) if found else None


def _queue_ids(page: str) -> list[str]:
    """The held items of the queue (the list before "Recently decided")."""
    queue = page.split("Recently decided")[0]
    return re.findall(r'<a class="subject" href="/held/([^"]+)"', queue)


async def _walk(client: httpx.AsyncClient, path: str, pick: re.Pattern[str] | None = None) -> tuple[list[str], int]:
    """Follow the pages from `path`; returns the ids in the order shown and the number of pages."""
    found: list[str] = []
    url: str | None = path
    pages = 0
    while url is not None and pages < 20:
        response = await client.get(url)
        assert response.status_code == 200, response.text
        found += _queue_ids(response.text) if pick is None else pick.findall(response.text)
        url = _next(response.text)
        pages += 1
    return found, pages


async def _walk_api(client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> tuple[list[object], int, int]:
    found: list[object] = []
    url: str | None = path
    pages, total = 0, -1
    while url is not None and pages < 20:
        response = await client.get(url, headers=headers)
        assert response.status_code == 200, response.text
        total = int(response.headers["X-Total-Count"])
        found += [item["id"] for item in response.json()]
        link = response.headers.get("Link")
        url = re.match(r'<([^>]+)>; rel="next"', link).group(1) if link else None  # type: ignore[union-attr]
        pages += 1
    return found, pages, total


async def _hold_one_each(layout: Layout, made: list[Made]) -> list[str]:
    """Each mentee writes once (the test policy holds everything); returns the queue ids."""
    ids: list[str] = []
    for start in range(0, len(made), 10):
        replies = await asyncio.gather(*(
            send(layout.smtp_port, simple_message(m.mentee_email, m.mentor_address, f"question {m.id}", "Hello!"),
                 m.mentee_email, m.mentor_address) for m in made[start:start + 10]))
        for code, reply in replies:
            assert code == 250, reply
            ids.append(reply.rsplit(" ", 1)[-1])
    return ids


async def test_lists_come_a_page_at_a_time_each_item_once_in_order(layout: Layout) -> None:
    prepare(layout)
    made = await enrol_many(layout, PAIRS, datetime.now(UTC) - timedelta(days=1))
    others = await enrol_many(layout, 3, datetime.now(UTC) - timedelta(days=1), program="arts", prefix="Arts")
    async with serving(layout):
        await add_moderator(layout, "stem-mod", "stem")
        await add_moderator(layout, "arts-viewer", "arts", role="viewer")
        held_ids = await _hold_one_each(layout, made[:HELD])
        await _hold_one_each(layout, others[:1])
        in_order = [row.message_id for row in await rows(layout, select(held.c.message_id).where(
            held.c.program_id == "stem").order_by(held.c.held_at, held.c.message_id))]
        assert sorted(in_order) == sorted(held_ids)

        async with session(layout, "stem-mod") as client:
            shown, pages = await _walk(client, "/held")
            assert shown == in_order and pages == 3  # 50, 50, 10: each once, oldest first
            first = (await client.get("/held")).text
            assert f'<span class="count">{HELD}</span>' in first
            pair_links = re.compile(r'<a href="/pairs/(\d+)">')
            listed, pair_pages = await _walk(client, "/pairs", pair_links)
            assert [int(i) for i in listed] == [m.id for m in made] and pair_pages == 3
            assert (await client.get("/held?after=not-a-cursor")).status_code == 400

        token = await token_for(layout, "stem-mod")
        auth = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=base_url(layout), timeout=30) as api:
            items, api_pages, total = await _walk_api(api, "/api/held?limit=40", auth)
            assert items == in_order and api_pages == 3 and total == HELD
            listed_pairs, _, pair_total = await _walk_api(api, "/api/pairs?program=stem", auth)
            assert listed_pairs == [m.id for m in made] and pair_total == PAIRS
            assert (await api.get("/api/held?after=%%%", headers=auth)).status_code == 400
            assert (await api.get("/api/held?limit=0", headers=auth)).status_code == 400

            viewer = {"Authorization": f"Bearer {await token_for(layout, 'arts-viewer')}"}
            theirs, _, their_total = await _walk_api(api, "/api/held", viewer)
            assert their_total == 1 and not set(theirs) & set(held_ids)
            their_pairs, _, _ = await _walk_api(api, "/api/pairs", viewer)
            assert their_pairs == [m.id for m in others]

        async with session(layout, "arts-viewer") as client:
            shown, _ = await _walk(client, "/held")
            assert len(shown) == 1 and not set(shown) & set(held_ids)
            listed, _ = await _walk(client, "/pairs", re.compile(r'<a href="/pairs/(\d+)">'))
            assert [int(i) for i in listed] == [m.id for m in others]
            everyone = {row.id for row in await rows(layout, select(pairs.c.id).where(pairs.c.program_id == "stem"))}
            assert not everyone & {int(i) for i in listed}


async def test_a_second_page_in_a_real_browser_reads_well(layout: Layout, pages: Pages, tmp_path: Path) -> None:
    """Chromium, 390 px wide (a phone): the second page of /held is reached by its "Next page" link, has
    a "First page" link, and axe-core finds no serious problem on it or on /pairs."""
    prepare(layout)
    made = await enrol_many(layout, 55, datetime.now(UTC) - timedelta(days=1))
    async with serving(layout):
        await add_moderator(layout, "stem-mod", "stem")
        await _hold_one_each(layout, made[:53])
        page = await pages.open("held", 390)
        await log_in(page, layout, "stem-mod")
        await page.click("a[rel=next]")
        assert "after=" in page.url
        assert await page.locator("a.subject").count() == 3
        assert await page.get_by_role("link", name="First page").count() == 1
        assert await serious_violations(page) == []
        await page.screenshot(path=str(tmp_path / "held-page-2.png"), full_page=True)
        await page.goto(base_url(layout) + "/pairs")
        assert await serious_violations(page) == []
        await page.screenshot(path=str(tmp_path / "pairs-page-1.png"), full_page=True)


CONTACT_HOLD_POLICY = """
    default_action: hold
    rules:
      keywords:
        - name: secrecy
          action: hold
          words: [secret]
      contact_info:
        action: hold
"""


def _reason_menu(page: str) -> list[str]:
    menu = page[page.index('<select name="reason">'):]
    return re.findall(r'<option value="([^"]+)"', menu[:menu.index("</select>")])


async def test_the_reason_menu_names_each_rule_of_the_waiting_mail_once(layout: Layout) -> None:
    """The queue's reason filter offers the rules that hold mail still waiting, each once, in order (one
    aggregated query, however many messages wait); a rule whose mail was all decided leaves the menu."""
    prepare(layout)
    (layout.root / "policies" / "adult-professional.yaml").write_text(textwrap.dedent(CONTACT_HOLD_POLICY))
    made = await enrol_many(layout, 3, datetime.now(UTC) - timedelta(days=1))
    async with serving(layout):
        await add_moderator(layout, "stem-mod", "stem")
        ids = []
        for m, body in zip(made, ("a secret plan", "call me at +1 415 555 0123", "Hello"), strict=True):
            code, reply = await send(layout.smtp_port, simple_message(m.mentee_email, m.mentor_address, "Hi", body),
                                     m.mentee_email, m.mentor_address)
            assert code == 250, reply
            ids.append(reply.rsplit(" ", 1)[-1])
        async with session(layout, "stem-mod") as client:
            assert _reason_menu((await client.get("/held")).text) == ["contact_info", "keywords", "policy"]
            filtered = (await client.get("/held?reason=keywords")).text
            assert _queue_ids(filtered) == [ids[0]]
        result = await asyncio.to_thread(cli, layout, "held", "release", ids[0])
        assert result.returncode == 0, result.stderr
        async with session(layout, "stem-mod") as client:
            assert _reason_menu((await client.get("/held")).text) == ["contact_info", "policy"]
