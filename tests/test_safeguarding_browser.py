"""The console on a phone (Chromium at 390 px, JavaScript off): an urgent message comes first, marked in
words, with "Escalate to safeguarding lead" as its first and primary action; releasing it asks for a
confirmation naming its findings; a long finding (a sender-authentication summary) never widens the page."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Browser, Page

from tests.browserkit import PHONE, serious_violations
from tests.consolekit import add_moderator, base_url, serving
from tests.safeguarding_kit import LEAD, Inboxes, use_shipped_policy, write
from tests.support import MENTOR, Layout, Sink, acreate_pair, eventually, nothing_queued
from tests.test_console_browser import log_in

UNSIGNED = {"email": "sam.rivera@unsigned-school-with-a-long-name.example", "name": "Sam Rivera", "handle": "Birch"}
FITS = "document.scrollingElement.scrollWidth <= window.innerWidth"


async def fits(page: Page) -> bool:
    return bool(await page.evaluate(FITS))


async def test_an_urgent_message_comes_first_on_a_phone(layout: Layout, sink: Sink, browser: Browser,
                                                       tmp_path: Path) -> None:
    use_shipped_policy(layout)
    async with serving(layout):
        await add_moderator(layout, "ana", "stem")
        # first, an ordinary held message whose sender's domain publishes nothing: its finding is a long
        # "unverified" summary; then the urgent one, written later
        other = await acreate_pair(layout, {**MENTOR, "email": "pat.lee@uni.example.net", "handle": "Elm"}, UNSIGNED)
        routine = await write(layout, other, "Here is my essay plan for Friday.", sender=UNSIGNED, subject="Essay plan")
        pair = await acreate_pair(layout)
        urgent = await write(layout, pair, "I feel unsafe at home and I keep thinking about self-harm.",
                             subject="Can I tell you something")
        inbox = Inboxes(sink)
        await eventually(lambda: inbox.lead)
        context = await browser.new_context(java_script_enabled=False, viewport={"width": PHONE, "height": 844})
        page = await context.new_page()
        await log_in(page, layout, "ana")
        items = page.locator("ol.queue > li")
        assert await items.count() == 2
        first = items.nth(0)
        assert "Can I tell you something" in await first.inner_text()
        assert "URGENT" in await first.locator(".badge.urgent").first.inner_text()  # in words
        assert "Essay plan" in await items.nth(1).inner_text()
        long_reason = items.nth(1).locator(".reasons details.match")
        assert await long_reason.count() == 1  # shortened, the full text one tap away
        assert await fits(page)
        await page.screenshot(path=str(tmp_path / "queue-phone.png"), full_page=True)

        await page.click("text=Can I tell you something")
        await page.wait_for_url(f"{base_url(layout)}/held/{urgent}")
        buttons = page.locator("section.actions button")
        assert (await buttons.first.inner_text()).strip() == "Escalate to safeguarding lead"
        assert "primary" in (await buttons.first.get_attribute("class") or "")
        assert await page.locator("section.actions button.primary").count() == 1
        assert "URGENT" in await page.locator("p.flag.urgent").inner_text()
        assert await fits(page)
        await page.screenshot(path=str(tmp_path / "urgent-phone.png"), full_page=True)

        await page.click("button:has-text('Release')")  # not released: a confirmation naming the findings
        assert "Release this message?" in await page.locator("h1").inner_text()
        named = await page.locator("ul.confirm").inner_text()
        assert "self-harm" in named and "unsafe at home" in named
        assert await fits(page)
        await page.screenshot(path=str(tmp_path / "confirm-phone.png"), full_page=True)
        await page.click("button:has-text('Escalate to safeguarding lead')")
        assert LEAD in await page.locator(".outcome").inner_text()

        await page.goto(f"{base_url(layout)}/held/{routine}")
        details = page.locator(".reasons details.match")
        await details.first.locator("summary").click()  # one tap: the full summary, wrapped
        assert "dmarc=none" in await details.first.inner_text()
        assert await fits(page)
        await page.goto(base_url(layout) + "/held")
        assert "escalated" in await page.locator("ol.queue > li").nth(0).inner_text()
        assert await fits(page)
        await page.goto(base_url(layout) + "/audit")  # the decisions' reasons, the long summary among them
        assert "dmarc=none" in await page.inner_text("main") and await fits(page)
        # axe-core (it needs JavaScript in the test's page; the console sends none): no serious violation
        checker = await (await browser.new_context(viewport={"width": PHONE, "height": 844})).new_page()
        await log_in(checker, layout, "ana")
        for path in ("/held", f"/held/{urgent}"):
            await checker.goto(base_url(layout) + path)
            assert await serious_violations(checker) == [], path
        await eventually(lambda: [m for m in inbox.lead if "escalates" in m["Subject"]])  # a delivery of its own
        await eventually(lambda: nothing_queued(layout), timeout=20)  # all of it out before the mentor's absence
    assert inbox.mentor == []
    for shot in ("queue-phone.png", "urgent-phone.png", "confirm-phone.png"):
        assert (tmp_path / shot).stat().st_size > 5000, shot
