"""The enrolment API over HTTP against a real `mentor-relay serve`: enrol, field errors, close, away and
back, the record paged by event id, program-scoped tokens and a read-only viewer's token."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from tests.consolekit import base_url, prepare
from tests.support import Layout, ServeProcess, acli, eventually

PAIR = {"program": "stem", "mentor_email": "robert@uni.example.net", "mentor_name": "Robert Smithson",
        "mentor_handle": "Oak", "mentee_email": "alice@school.example.org", "mentee_name": "Alice Walker",
        "mentee_handle": "Maple", "mentee_language": "es", "end_date": "2099-06-30"}


async def token_for(layout: Layout, username: str, role: str, program: str) -> str:
    added = await acli(layout, "moderator", "add", "--username", username, "--role", role, "--program", program,
                stdin="a long enough password\n")
    assert added.returncode == 0, added.stderr
    issued = await acli(layout, "moderator", "token", "--username", username)
    assert issued.returncode == 0, issued.stderr
    return issued.stdout.split()[0]


async def test_enrolment_api_over_http(layout: Layout, tmp_path: Path) -> None:
    prepare(layout)
    coordinator = await token_for(layout, "cora", "coordinator", "stem")
    other = await token_for(layout, "arty", "coordinator", "arts")
    viewer = await token_for(layout, "vic", "viewer", "stem")
    # the sink smarthost shares this event loop: start and stop serve off it, or its deliveries wait on us
    process = await asyncio.to_thread(ServeProcess(layout, tmp_path / "serve.log").start)
    try:
        async with httpx.AsyncClient(base_url=base_url(layout), timeout=20) as client:
            async def up() -> httpx.Response | None:
                try:
                    return await client.get("/api/openapi.json")
                except httpx.TransportError:
                    return None

            described = (await eventually(up, timeout=30)).json()
            for path in ("/api/pairs", "/api/pairs/{id}/close", "/api/pairs/{id}/away", "/api/events"):
                assert path in described["paths"], path
            assert "post" in described["paths"]["/api/pairs"]

            def auth(token: str) -> dict[str, str]:
                return {"authorization": f"Bearer {token}"}

            assert (await client.post("/api/pairs", json=PAIR)).status_code == 401
            made = await client.post("/api/pairs", json=PAIR, headers=auth(coordinator))
            assert made.status_code == 201, made.text
            pair = made.json()
            assert set(pair) == {"id", "mentor_alias", "mentee_alias"} and pair["mentor_alias"].startswith("oak.")

            bad = await client.post("/api/pairs", headers=auth(coordinator), json={
                **PAIR, "mentor_email": "robert2@uni.example.net", "mentee_email": "alice2@school.example.org",
                "mentor_handle": "Robert", "mentee_timezone": "Mars/Base"})
            assert bad.status_code == 422
            assert bad.json()["errors"][0]["field"] == "mentor_handle"
            missing = await client.post("/api/pairs", headers=auth(coordinator),
                                        json={"program": "stem", "mentor_email": "not an address"})
            assert missing.status_code == 422
            assert {e["field"] for e in missing.json()["errors"]} >= {"mentor_name", "mentee_email"}
            past = await client.post("/api/pairs", headers=auth(coordinator), json={
                **PAIR, "mentor_email": "r3@uni.example.net", "mentor_handle": "Elm", "mentee_handle": "Ash",
                "mentee_email": "a3@school.example.org", "end_date": "2001-01-01"})
            assert past.status_code == 422 and past.json()["errors"][0]["field"] == "end_date"

            # another program's coordinator and a viewer
            assert (await client.post("/api/pairs", json=PAIR, headers=auth(other))).status_code == 403
            assert (await client.post(f"/api/pairs/{pair['id']}/close", headers=auth(other))).status_code == 404
            assert (await client.post("/api/pairs", json=PAIR, headers=auth(viewer))).status_code == 403
            assert (await client.post(f"/api/pairs/{pair['id']}/away", headers=auth(viewer),
                                      json={"role": "mentor", "until": "2099-01-01"})).status_code == 403
            assert (await client.get("/api/events", headers=auth(viewer))).status_code == 200

            away = await client.post(f"/api/pairs/{pair['id']}/away", headers=auth(coordinator),
                                     json={"role": "mentor", "until": "2099-01-10"})
            assert away.status_code == 200, away.text
            assert away.json()["away_until"] == "2099-01-10"
            back = await client.post(f"/api/pairs/{pair['id']}/away", headers=auth(coordinator),
                                     json={"role": "mentor", "back": True})
            assert back.status_code == 200 and back.json()["away_until"] is None
            assert (await client.post(f"/api/pairs/{pair['id']}/away", headers=auth(coordinator),
                                      json={"role": "mentor", "until": "soon"})).status_code == 422
            bad = await client.post(f"/api/pairs/{pair['id']}/close", headers=auth(coordinator), json={"reason": 7})
            assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "reason"
            closed = await client.post(f"/api/pairs/{pair['id']}/close", headers=auth(coordinator),
                                       json={"reason": "Maple moved school"})
            assert closed.status_code == 200 and closed.json()["changed"] is True
            again = await client.post(f"/api/pairs/{pair['id']}/close", headers=auth(coordinator))
            assert again.status_code == 200 and again.json()["changed"] is False

            seen: list[dict[str, object]] = []
            since = ""
            for _ in range(20):  # bounded paging, two events a page
                page = (await client.get("/api/events", params={"since": since, "limit": 2},
                                         headers=auth(coordinator))).json()
                seen.extend(page["events"])
                if page["next"] is None:
                    break
                since = str(page["next"])
            kinds = [e["kind"] for e in seen]
            assert kinds.index("pair_created") < kinds.index("pair_closed")
            (closing,) = [e for e in seen if e["kind"] == "pair_closed"]
            assert closing["detail"]["reason"] == "Maple moved school" and closing["actor"] == "cora"
            assert kinds.count("farewell") == 2  # both members, once
            assert {e["program"] for e in seen} == {"stem"}
            assert [e["id"] for e in seen] == sorted({e["id"] for e in seen})  # no page repeats or skips one
            assert (await client.get("/api/events", headers=auth(other))).json()["events"] == []
            by_time = (await client.get("/api/events", params={"since": "2000-01-01T00:00:00Z"},
                                        headers=auth(coordinator))).json()
            # serve's sweeps may record more meanwhile: the earlier pages come first, in the same order
            assert [e["id"] for e in by_time["events"]][:len(seen)] == [e["id"] for e in seen]
            assert (await client.get("/api/events", params={"since": "yesterday"},
                                     headers=auth(coordinator))).status_code == 400
    finally:
        await asyncio.to_thread(process.terminate)
