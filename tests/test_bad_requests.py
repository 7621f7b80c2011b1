"""Bad input to the console, its API and the command line is a clear refusal (DESIGN.md, invariant 6): an
HTTP 4xx with a message, or `error: ...` and a non-zero exit; never a 500 or a traceback, and nothing
written. Ids beyond what the store holds (a signed 32-bit integer on PostgreSQL) name nothing; JSON nested without end
or holding a lone surrogate is "invalid JSON"; command-line arguments that are not UTF-8 are refused
where the command line starts; --now is a time between 1970 and 9000."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from relay.store.schema import events, pairs
from tests.consolekit import add_moderator, base_url, csrf_of, prepare, serving, session, token_for
from tests.support import Layout, Sink, acreate_pair, cli, create_pair, free_port, rows, rows_now

BIG = "9" * 30  # far beyond any id
HUGE = "9" * 5000  # beyond int()'s 4300 digits
JUST_OVER = str(2**31)  # the first number an id cannot hold on PostgreSQL
NAMES = {"program": "stem", "mentor_email": "rosa@uni.example.net", "mentor_name": "Rosa Lind",
         "mentor_handle": "Fern", "mentee_email": "tom@school.example.org", "mentee_name": "Tom Berg",
         "mentee_handle": "Reed"}


async def _written(layout: Layout) -> tuple[int, int]:
    """How many pairs and events the store holds."""
    ((pair_count,),) = await rows(layout, select(func.count()).select_from(pairs))
    ((event_count,),) = await rows(layout, select(func.count()).select_from(events))
    return int(pair_count), int(event_count)


@contextlib.asynccontextmanager
async def admin_api(layout: Layout, **headers: str) -> AsyncIterator[httpx.AsyncClient]:
    """A serving relay and a client of its API, signed in with an admin's token (and `headers`)."""
    prepare(layout)
    async with serving(layout):
        await add_moderator(layout, "root", admin=True)
        token = await token_for(layout, "root")
        async with httpx.AsyncClient(base_url=base_url(layout), timeout=30,
                                     headers={"authorization": f"Bearer {token}", **headers}) as client:
            yield client


def _refused(response: httpx.Response, status: int, words: str) -> str:
    """The API's refusal: the status, and a JSON error naming what was wrong."""
    assert response.status_code == status, (response.request.url, response.status_code, response.text[:200])
    body: Any = response.json()
    text = str(body.get("error") or body)
    assert words in text, (response.request.url, text)
    return text


async def test_api_ids_beyond_the_store_are_not_found_and_bad_cursors_are_400(layout: Layout, sink: Sink) -> None:
    async with admin_api(layout) as client:
        pair = await acreate_pair(layout)
        before = await _written(layout)
        for number in (BIG, HUGE, JUST_OVER):
            _refused(await client.get(f"/api/pairs/{number}"), 404, "not found")
            _refused(await client.post(f"/api/pairs/{number}/close", json={}), 404, "not found")
            _refused(await client.post(f"/api/pairs/{number}/away", json={"role": "mentor", "back": True}),
                     404, "not found")
        # the largest id the store holds is an id like any other: no such pair
        _refused(await client.get(f"/api/pairs/{2**31 - 1}"), 404, "no pair with this id")
        assert (await client.get(f"/api/pairs/{pair['id']}")).status_code == 200

        _refused(await client.get("/api/pairs", params={"after": BIG}), 400, "after must be a pair id")
        _refused(await client.get("/api/pairs", params={"after": HUGE}), 400, "after must be a pair id")
        _refused(await client.get("/api/events", params={"since": BIG}), 400, "since must be an event id")
        _refused(await client.get("/api/events", params={"since": JUST_OVER}), 400, "since must be an event id")
        _refused(await client.get("/api/events", params={"limit": "abc"}), 400, "limit must be a number")
        # documented: at most 1000 events a page, so a bigger limit is 1000, however long
        for limit in ("100000", BIG, HUGE):
            page = await client.get("/api/events", params={"limit": limit})
            assert page.status_code == 200, (limit[:20], page.text[:200])
            assert page.json()["events"] and page.json()["next"] is None
        assert await _written(layout) == before


async def test_api_refuses_json_nested_without_end_or_with_lone_surrogates(layout: Layout, sink: Sink) -> None:
    async with admin_api(layout, **{"content-type": "application/json"}) as client:
        pair = await acreate_pair(layout)
        before = await _written(layout)

        async def post(path: str, body: bytes) -> httpx.Response:
            return await client.post(path, content=body)

        deep = b"[" * 100_000 + b"]" * 100_000
        _refused(await post("/api/pairs", deep), 400, "invalid JSON: nested deeper than")
        _refused(await post("/api/pairs", b'{"program": ' + b"[" * 40 + b"]" * 40 + b"}"), 400,
                 "invalid JSON: nested deeper than")
        surrogate = json.dumps(NAMES).replace("Rosa Lind", "Rosa \\udc80").encode()
        _refused(await post("/api/pairs", surrogate), 400, "invalid JSON: a string holds a lone surrogate")
        key = b'{"\\udc80": "x"}'
        _refused(await post("/api/pairs", key), 400, "invalid JSON: a string holds a lone surrogate")
        _refused(await post("/api/pairs", b'{"a": 1' + b"0" * 5000 + b"}"), 400, "invalid JSON")
        _refused(await post("/api/pairs", b"\xff\xfe{"), 400, "invalid JSON: the body is not UTF-8")
        closing = f"/api/pairs/{pair['id']}/close"
        _refused(await post(closing, b'{"reason": "\\udc80"}'), 400, "invalid JSON: a string holds a lone")
        _refused(await post(closing, b"[" * 5000 + b"]" * 5000), 400, "invalid JSON: nested deeper than")
        _refused(await post(f"/api/pairs/{pair['id']}/away", b'{"role": "mentor", "until": "\\ud800"}'),
                 400, "invalid JSON: a string holds a lone")
        shown = await client.get(f"/api/pairs/{pair['id']}")
        assert shown.json()["status"] == "active"
        assert await _written(layout) == before  # no pair enrolled, none closed, nobody marked away


async def test_api_takes_json_with_a_byte_order_mark_or_in_utf16(layout: Layout, sink: Sink) -> None:
    """Windows tools (Notepad, PowerShell 5's Out-File) write JSON with a byte order mark, or in UTF-16: both
    are JSON (RFC 8259, 8.1) and enrol a pair."""
    async with admin_api(layout, **{"content-type": "application/json"}) as client:
        with_bom = b"\xef\xbb\xbf" + json.dumps(NAMES).encode()
        created = await client.post("/api/pairs", content=with_bom)
        assert created.status_code == 201, created.text
        other = {**NAMES, "mentor_email": "ana@uni.example.net", "mentee_email": "ida@school.example.org",
                 "mentor_handle": "Ash", "mentee_handle": "Ivy"}
        created = await client.post("/api/pairs", content=json.dumps(other).encode("utf-16"))
        assert created.status_code == 201, created.text


async def test_console_pages_with_ids_beyond_the_store_are_not_found(layout: Layout, sink: Sink) -> None:
    prepare(layout)
    async with serving(layout):
        await add_moderator(layout, "root", admin=True)
        pair = await acreate_pair(layout)
        async with session(layout, "root") as browser:
            before = await _written(layout)
            listing = await browser.get("/pairs")
            assert listing.status_code == 200
            token = csrf_of(listing.text)
            for number in (BIG, HUGE, JUST_OVER):
                for path in (f"/pairs/{number}", f"/held/1a243266e8ddf75mf9yq/attachments/{number}"):
                    answer = await browser.get(path)
                    assert answer.status_code == 404, (path[:40], answer.status_code, answer.text[:200])
                for action in ("close", "away", "resume"):
                    answer = await browser.post(f"/pairs/{number}/{action}",
                                                data={"csrf_token": token, "confirm": "yes", "role": "mentor"})
                    assert answer.status_code == 404, (action, answer.status_code, answer.text[:200])
                answer = await browser.post(f"/sessions/{number}/revoke", data={"csrf_token": token})
                assert answer.status_code == 404, answer.text[:200]
                assert "not found" in answer.text.lower()
            for number in (BIG, HUGE):
                page = await browser.get("/pairs", params={"after": number})
                assert page.status_code == 400 and "No such page" in page.text
                audit = await browser.get("/audit", params={"pair": number})
                assert audit.status_code == 400 and "No such pair" in audit.text
            assert (await browser.get(f"/pairs/{pair['id']}")).status_code == 200
        assert await _written(layout) == before


# --- the command line --------------------------------------------------------------------------------


@pytest.fixture
def offline_layout(tmp_path: Path) -> Layout:
    layout = Layout(root=tmp_path / "relay", smtp_port=free_port(), sink_port=None)
    layout.write()
    return layout


def _counts(layout: Layout) -> tuple[int, int]:
    ((pair_count,),) = rows_now(layout, select(func.count()).select_from(pairs))
    ((event_count,),) = rows_now(layout, select(func.count()).select_from(events))
    return int(pair_count), int(event_count)


def _refused_by_parser(layout: Layout, args: list[str], words: str) -> None:
    """argparse's refusal: exit status 2, `error: argument ...` on stderr, no traceback, nothing written."""
    before = _counts(layout)
    result = cli(layout, *args)
    assert result.returncode == 2, (args[:3], result.returncode, result.stderr[-500:])
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert "error: argument " in result.stderr and words in result.stderr, result.stderr[-500:]
    assert _counts(layout) == before


@pytest.mark.parametrize("number", [JUST_OVER, BIG])
@pytest.mark.parametrize("args", [
    ["pair", "show", "ID"], ["pair", "close", "ID"], ["pair", "resume", "ID"],
    ["pair", "away", "ID", "--role", "mentor", "--back"],
    ["pair", "address", "add", "ID", "--role", "mentor", "--email", "second@uni.example.net"],
    ["group", "add", "ID", "--role", "mentee", "--email", "g@x.example", "--name", "Nia Long", "--handle", "Hazel"],
    ["group", "close", "ID"], ["group", "resume", "ID"], ["events", "list", "--pair", "ID"],
    ["archive", "export", "--pair", "ID", "-o", "OUT"], ["archive", "hold", "--pair", "ID", "--reason", "audit"],
    ["archive", "release-hold", "--pair", "ID"], ["moderator", "revoke", "--session", "ID"],
])
def test_cli_ids_beyond_the_store_are_argument_errors(offline_layout: Layout, tmp_path: Path, args: list[str],
                                                      number: str) -> None:
    create_pair(offline_layout)
    line = [number if a == "ID" else str(tmp_path / "out.mbox") if a == "OUT" else a for a in args]
    _refused_by_parser(offline_layout, line, "expected a number from 1 to 2147483647")
    assert not (tmp_path / "out.mbox").exists()


@pytest.mark.parametrize(("args", "argument"), [
    (["events", "list", "--kind", "\udcff"], "--kind"),
    (["events", "list", "--kind=\udcff"], "--kind"),
    (["person", "erase", "--email", "\udcff@x"], "--email"),
    (["moderator", "sessions", "--username", "\udcff"], "--username"),
    (["pair", "create", "--program", "stem", "--mentor-email", "rosa@uni.example.net", "--mentor-name", "Rosa Lind",
      "--mentor-handle", "H\udc80", "--mentee-email", "tom@school.example.org", "--mentee-name", "Tom Berg",
      "--mentee-handle", "Reed"], "--mentor-handle"),
])
def test_cli_arguments_that_are_not_utf8_are_refused_at_the_start(offline_layout: Layout, args: list[str],
                                                                   argument: str) -> None:
    """Python hands a byte that is not UTF-8 (0xff, 0x80) to the program as a lone surrogate."""
    create_pair(offline_layout)
    _refused_by_parser(offline_layout, args, f"argument {argument}: not valid UTF-8")


@pytest.mark.parametrize("args", [
    ["report", "--program", "stem", "--now", "0001-01-01T00:00:00Z"],
    ["report", "--program", "stem", "--now", "9999-12-31T23:59:59Z"],
    ["nudges", "run", "--dry-run", "--now", "9999-12-31T23:59:59Z"],
    ["nudges", "run", "--dry-run", "--now", "0001-01-01T00:00:00Z"],
    ["nudges", "run", "--now", "9999-12-31T23:59:59Z"],
    ["archive", "purge", "--dry-run", "--now", "9999-12-31T23:59:59Z"],
])
def test_cli_now_outside_1970_to_9000_is_refused(offline_layout: Layout, args: list[str]) -> None:
    create_pair(offline_layout)
    _refused_by_parser(offline_layout, args, "argument --now: expected a time in the years 1970 to 9000")
    sane = cli(offline_layout, *args[:-1], "2030-01-01T00:00:00Z")
    assert sane.returncode == 0, sane.stderr
