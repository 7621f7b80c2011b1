"""The review console in a real browser: Playwright driving Debian's Chromium (/usr/bin/chromium, never
a downloaded browser). A moderator logs in with JavaScript off, sees the held message with its findings
marked, releases it and the loopback smarthost receives it once; a rejection's reason reaches the sender;
hostile HTML in a held message runs nothing and loads nothing. Screenshots go to the test's tmp dir."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from playwright.async_api import Browser, Page

from tests.consolekit import PASSWORD, add_moderator, base_url, prepare, serving, write
from tests.support import MENTEE, MENTOR, Layout, Sink, acli, acreate_pair, eventually, nothing_queued
from tests.test_console import by_rcpt, held_state, hostile_message, relay_copies


async def log_in(page: Page, layout: Layout, username: str) -> None:
    await page.goto(base_url(layout) + "/held")
    assert "/login" in page.url  # sent to log in first
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(base_url(layout) + "/held")


async def test_moderator_releases_a_held_message_with_javascript_off(
        layout: Layout, sink: Sink, browser: Browser, tmp_path: Path) -> None:
    prepare(layout)
    async with serving(layout):
        await add_moderator(layout, "ana", "stem")
        pair = await acreate_pair(layout)
        held_id = await write(layout, pair, "a question", "Can we keep this secret from my parents?")
        await sink.wait_for(2)  # the sender's held notice and the moderators' alert
        context = await browser.new_context(java_script_enabled=False, viewport={"width": 1100, "height": 900})
        page = await context.new_page()
        await log_in(page, layout, "ana")
        item = page.locator("ol.queue > li")
        assert await item.count() == 1
        assert "Maple → Oak" in await item.inner_text() and "secret" in await item.inner_text()
        await page.screenshot(path=str(tmp_path / "queue.png"), full_page=True)
        await page.click("text=a question")
        await page.wait_for_url(f"{base_url(layout)}/held/{held_id}")
        marks = page.locator("pre.text mark.finding")
        assert await marks.all_inner_texts() == ["secret", "secret"]  # in the message and in the preview
        preview = await page.locator("pre.text.preview").inner_text()
        assert preview.strip() == "Can we keep this secret from my parents?"
        assert "Maple" in await page.locator("dl.preview").inner_text()
        await page.screenshot(path=str(tmp_path / "message.png"), full_page=True)
        await page.click("button:has-text('Release')")
        assert "Released" in await page.locator(".outcome").inner_text()
        delivered = await eventually(lambda: by_rcpt(sink, MENTOR["email"]))
        assert delivered[0].get_content().strip() == "Can we keep this secret from my parents?"
        # Going back and pressing again (a double click, a second moderator) changes nothing.
        await page.go_back()
        await page.reload()
        assert await page.locator("button:has-text('Release')").count() == 0
        assert "released" in await page.locator(".state").inner_text()
        again = await acli(layout, "held", "release", held_id, "--json")
        assert json.loads(again.stdout)["status"] == "already-released"
        await page.goto(base_url(layout) + "/held")
        assert "Nothing is waiting for review." in await page.inner_text("main")
        phone = await browser.new_context(java_script_enabled=False, viewport={"width": 390, "height": 844})
        small = await phone.new_page()
        await log_in(small, layout, "ana")
        assert await small.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
        await small.screenshot(path=str(tmp_path / "queue-phone.png"), full_page=True)
    assert len(by_rcpt(sink, MENTOR["email"])) == 1 and relay_copies(layout, held_id) == 1
    for shot in ("queue.png", "message.png", "queue-phone.png"):
        assert (tmp_path / shot).stat().st_size > 5000, shot


async def test_moderator_rejects_with_a_reason_and_the_sender_is_told(
        layout: Layout, sink: Sink, browser: Browser, tmp_path: Path) -> None:
    prepare(layout)
    async with serving(layout):
        await add_moderator(layout, "ana", "stem")
        pair = await acreate_pair(layout)
        held_id = await write(layout, pair, "weekend", "Shall we meet at the mall on Saturday?")
        await sink.wait_for(2)
        page = await (await browser.new_context(java_script_enabled=False)).new_page()
        await log_in(page, layout, "ana")
        await page.goto(f"{base_url(layout)}/held/{held_id}")
        await page.fill("input[name=reason]", "Meetings are arranged by the program only.")
        await page.click("button:has-text('Reject')")
        assert "Rejected" in await page.locator(".outcome").inner_text()
        notices = await eventually(lambda: [m for m in by_rcpt(sink, MENTEE["email"])
                                            if "not delivered" in m["Subject"]])
        assert "wrote to you:\r\n\r\nMeetings are arranged by the program only.\r\n" in notices[0].get_content()
        await page.goto(base_url(layout) + "/audit?kind=rejected")
        assert "ana" in await page.locator("table.audit tbody").inner_text()
        await eventually(lambda: nothing_queued(layout), timeout=20)  # all of it out while the relay runs
    assert held_state(layout, held_id) == "rejected" and by_rcpt(sink, MENTOR["email"]) == []


class Trap:
    """A loopback HTTP server standing for the attacker's: it counts every request that reaches it."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = await reader.readline()
        self.hits.append(line.decode(errors="replace").strip())
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    async def __aenter__(self) -> Trap:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()


async def test_hostile_html_runs_nothing_and_loads_nothing(
        layout: Layout, sink: Sink, browser: Browser, tmp_path: Path) -> None:
    prepare(layout)
    async with Trap() as trap, serving(layout):
        await add_moderator(layout, "ana", "stem")
        pair = await acreate_pair(layout)
        held_id = await write(layout, pair, "", "", raw=hostile_message(pair, trap.port))
        # JavaScript on: the test is that the page's policy and the sanitiser stop it, not the setting.
        page = await (await browser.new_context()).new_page()
        dialogs: list[str] = []
        requests: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), asyncio.ensure_future(dialog.dismiss())))
        page.on("request", lambda request: requests.append(request.url))
        await log_in(page, layout, "ana")
        await page.goto(f"{base_url(layout)}/held/{held_id}", wait_until="load")
        frame = next(f for f in page.frames if f != page.main_frame)
        assert "Hello friend, see the plan below." in await frame.inner_text("body")
        for selector in ("script", "img", "style", "link", "iframe", "form", "meta", "[onload]", "[onerror]",
                         "[style]", "a[href]", "svg"):
            assert await frame.locator(selector).count() == 0, selector
        await frame.click("text=click me")  # a link that once said javascript: now goes nowhere
        await page.screenshot(path=str(tmp_path / "hostile.png"), full_page=True)
        await page.wait_for_load_state("networkidle")  # nothing more is on its way (Playwright's own time limit)
    assert dialogs == [] and trap.hits == []
    assert all(url.startswith(base_url(layout)) or url.startswith("about:") for url in requests), requests
    assert page.url == f"{base_url(layout)}/held/{held_id}"
