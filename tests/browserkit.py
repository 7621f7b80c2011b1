"""Browser fixtures of the console tests: Playwright driving Debian's Chromium (/usr/bin/chromium, never a
downloaded browser), a `pages` fixture that opens pages at a given width and, when the test fails, saves a
screenshot of each into the test's tmp dir (named in the test's output), and the accessibility check:
axe-core (bundled by the axe-playwright-python package, MPL-2.0) run on the page, its serious and critical
violations returned."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, Page, async_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PHONE = 390  # CSS pixels: a common phone's width
DESKTOP = 1280
_AXE = Axe()
OUTCOMES = pytest.StashKey[dict[str, pytest.TestReport]]()  # each phase's report, kept by tests/conftest.py


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"the browser tests drive Debian's Chromium at {CHROMIUM}, which is missing: install it with "
                    "`apt-get install chromium` (.ci/run does so), then run the tests again", pytrace=False)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


class Pages:
    """Opens pages (each in its own browser context, i.e. its own cookies) and remembers them."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self.opened: list[tuple[str, Page]] = []

    async def open(self, name: str, width: int, height: int = 900) -> Page:
        # JavaScript stays on only so that the test itself can evaluate in the page (axe-core, computed
        # styles); the console sends none, and its Content-Security-Policy would refuse any.
        context = await self.browser.new_context(viewport={"width": width, "height": height})
        page = await context.new_page()
        self.opened.append((name, page))
        return page


@pytest.fixture
async def pages(browser: Browser, request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Pages]:
    opened = Pages(browser)
    yield opened
    outcome = request.node.stash.get(OUTCOMES, {}).get("call")
    if outcome is not None and outcome.failed:
        for name, page in opened.opened:
            if page.is_closed():
                continue
            shot = tmp_path / f"failure-{name}.png"
            try:
                await page.screenshot(path=str(shot), full_page=True)
            except Exception as exc:  # a screenshot must not hide the test's own failure
                print(f"no screenshot of {name}: {exc}")
            else:
                print(f"screenshot of {name} at failure: {shot}")


async def serious_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's violations of impact serious or critical on the page as it is now."""
    results = await _AXE.run(page)
    return [{"id": v["id"], "impact": v["impact"], "help": v["help"],
             "targets": [n["target"] for n in v["nodes"]][:5]}
            for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
