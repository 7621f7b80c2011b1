"""The console's pages in a real browser at a phone's width (390 px) and a desktop's (1280 px): nothing
scrolls sideways, tables turn into labelled cards on the phone (each value under its column's name, by
CSS alone) and stay tables on the desktop, the skip link is the first thing the keyboard reaches, and
axe-core finds no serious or critical accessibility violation on any page. Screenshots of the open pages
are saved to the test's tmp dir when it fails (tests/browserkit.py)."""

from __future__ import annotations

import json

import pytest
from playwright.async_api import Page

from tests.browserkit import DESKTOP, PHONE, Pages, serious_violations
from tests.consolekit import PASSWORD, add_moderator, base_url, prepare, serving, write
from tests.support import Layout, Sink, acreate_pair, send, simple_message


async def _log_in(page: Page, layout: Layout, username: str) -> None:
    await page.goto(base_url(layout) + "/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(base_url(layout) + "/held")


async def _check_layout(page: Page, width: int, path: str) -> None:
    assert await page.evaluate("document.documentElement.scrollWidth") <= width, f"{path} scrolls sideways"
    cells = await page.evaluate("""() => [...document.querySelectorAll('table.cards td[data-label]')].map(td => ({
        label: td.dataset.label, before: getComputedStyle(td, '::before').content,
        display: getComputedStyle(td).display}))""")
    heads = await page.evaluate("""() => [...document.querySelectorAll('table.cards thead')].map(
        h => h.getBoundingClientRect().height)""")
    if width == PHONE:
        for cell in cells:  # a card: every value shows its column's name before it
            assert cell["before"] == json.dumps(cell["label"]), (path, cell)
            assert cell["display"] == "grid", (path, cell)
        assert all(height <= 1 for height in heads), (path, heads)  # headings only for screen readers
    else:
        assert all(cell["before"] in ("none", "normal") and cell["display"] == "table-cell" for cell in cells), path
        assert all(height > 10 for height in heads), (path, heads)


@pytest.mark.parametrize("width", [PHONE, DESKTOP])
async def test_every_page_fits_the_screen_reads_as_cards_and_passes_axe(
        layout: Layout, sink: Sink, pages: Pages, width: int) -> None:
    prepare(layout)
    async with serving(layout):
        await add_moderator(layout, "carla", "stem", role="coordinator")
        pair = await acreate_pair(layout)
        held_id = await write(layout, pair, "a question about our next meeting and the reading list",
                              "Can we keep this secret from my parents? " * 5)
        stranger = "stranger@elsewhere.example"
        code, _ = await send(layout.smtp_port, simple_message(stranger, pair["mentor_alias"], "hi", "hello"),
                             stranger, pair["mentor_alias"])
        assert code == 550
        await sink.wait_for(2)
        login = await pages.open("login", width)
        await login.goto(base_url(layout) + "/login")
        assert await serious_violations(login) == []
        await _check_layout(login, width, "/login")

        page = await pages.open("console", width)
        await _log_in(page, layout, "carla")
        await page.keyboard.press("Tab")  # the first stop of the keyboard: the skip link
        assert await page.evaluate("[document.activeElement.className, document.activeElement.hash]") == [
            "skip", "#main"]
        await page.keyboard.press("Enter")
        assert await page.evaluate("document.activeElement.id") == "main"
        checked = []
        for path in ("/held", f"/held/{held_id}", "/pairs", f"/pairs/{pair['id']}", "/pairs/new", "/audit",
                     "/sessions", "/report"):
            response = await page.goto(base_url(layout) + path)
            assert response is not None and response.status == 200, path
            violations = await serious_violations(page)
            assert violations == [], (path, violations)
            await _check_layout(page, width, path)
            checked.append(path)
        # The cards carry the data: the pairs page on the phone names each value.
        await page.goto(base_url(layout) + "/pairs")
        row = await page.locator("table.pairs tbody tr").first.inner_text()
        assert "Oak & Maple" in row and "active" in row
        assert len(checked) == 8
