"""The console's report page (the figures of `mentor-relay report` with server-side SVG charts) and
/metrics (Prometheus text for scrapers on the allowed networks)."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.consolekit import add_moderator, base_url, prepare, serving, session, write
from tests.support import Layout, Sink, acreate_pair
from tests.test_console import body_rows


async def test_report_page_shows_the_programs_figures_and_charts(layout: Layout, sink: Sink) -> None:
    prepare(layout)
    async with serving(layout):
        await add_moderator(layout, "ana", "stem")
        await add_moderator(layout, "root", admin=True)
        pair = await acreate_pair(layout)
        await write(layout, pair, "first question", "Hi")
        await write(layout, pair, "second question", "Are you there?")
        async with session(layout, "ana") as client:
            page = await client.get("/report")
            assert page.status_code == 200
            assert "Report: STEM mentoring" in page.text
            assert page.text.count("<svg") == 3 and "<script" not in page.text
            figures = {(r["Section"], r["Figure"]): r["Value"] for r in body_rows(page.text)}
            assert figures[("messages", "total")] == "2"  # the same count as `mentor-relay report`
            assert figures[("moderation", "waiting")] == "2"
            # another program's figures are as private as its mail
            assert (await client.get("/report?program=arts")).status_code == 404
        async with session(layout, "root") as client:
            assert (await client.get("/report?program=arts")).status_code == 200
        async with session(layout) as client:
            assert (await client.get("/report")).status_code == 303  # to the login page


async def test_metrics_are_served_to_the_allowed_networks_only(layout: Layout, sink: Sink) -> None:
    prepare(layout)
    async with serving(layout):
        pair = await acreate_pair(layout)
        await write(layout, pair, "hello", "Hi")
        async with httpx.AsyncClient(base_url=base_url(layout), timeout=30) as client:
            response = await client.get("/metrics")
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
        families = {f.name: f for f in text_string_to_metric_families(response.text)}
        held = [s.value for s in families["mentor_relay_held_queue_size"].samples]
        assert held == [1.0]
    layout.overrides["console"] = {**layout.overrides.get("console", {}), "metrics_networks": ["192.0.2.0/24"]}
    layout.write()
    prepare(layout)
    async with serving(layout), httpx.AsyncClient(base_url=base_url(layout), timeout=30) as client:
        assert (await client.get("/metrics")).status_code == 403
