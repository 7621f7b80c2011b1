"""Cutting an account off, over real HTTP and the real CLI: an API token ends with a password change, with
`moderator revoke --username`, with `moderator token --revoke` and with `moderator disable`; a disabled
account cannot log in and its open sessions end. The login throttle holds when guesses arrive all at once:
each attempt is counted before its password is verified, so no more are verified than the limits allow,
and a flood gets clear 429s and 503s, never a 500."""

from __future__ import annotations

import asyncio
import json

import httpx

from tests.consolekit import (
    PASSWORD,
    add_moderator,
    base_url,
    csrf_of,
    login,
    prepare,
    serving,
    session,
    token_for,
    write,
)
from tests.support import Layout, Sink, acli, acli_json, acreate_pair


async def _kinds(layout: Layout) -> list[str]:
    return [e["kind"] for e in await acli_json(layout, "events", "list", "--json")]


async def _api_works(client: httpx.AsyncClient, token: str, held_id: str) -> int:
    return (await client.get(f"/api/held/{held_id}", headers={"authorization": f"Bearer {token}"})).status_code


async def test_a_password_change_and_a_revoke_end_the_api_token(layout: Layout, sink: Sink) -> None:
    prepare(layout)
    async with serving(layout):
        await add_moderator(layout, "ana", "stem")
        pair = await acreate_pair(layout)
        held_id = await write(layout, pair, "private", "I feel sad at home")
        async with session(layout) as client:
            token = await token_for(layout, "ana")
            assert await _api_works(client, token, held_id) == 200
            changed = await acli(layout, "moderator", "password", "--username", "ana", stdin="a brand new password\n")
            assert changed.returncode == 0, changed.stderr
            assert await _api_works(client, token, held_id) == 401
            released = await client.post(f"/api/held/{held_id}/release", headers={"authorization": f"Bearer {token}"})
            assert released.status_code == 401
            # A new token; `moderator revoke --username` ends it with the sessions.
            token = await token_for(layout, "ana")
            assert await _api_works(client, token, held_id) == 200
            revoked = await acli(layout, "moderator", "revoke", "--username", "ana", "--json")
            assert revoked.returncode == 0 and json.loads(revoked.stdout) == {"ended": 0, "token_revoked": True}
            assert await _api_works(client, token, held_id) == 401
            # And `moderator token --revoke` ends just the token.
            token = await token_for(layout, "ana")
            async with session(layout) as browser:
                assert (await login(browser, "ana", "a brand new password")).status_code == 303
                dropped = await acli(layout, "moderator", "token", "--username", "ana", "--revoke", "--json")
                assert dropped.returncode == 0 and json.loads(dropped.stdout) == {"username": "ana", "revoked": True}
                assert await _api_works(client, token, held_id) == 401
                assert (await browser.get("/held")).status_code == 200  # the session is not the token
            again = await acli(layout, "moderator", "token", "--username", "ana", "--revoke")
            assert again.returncode == 0 and "had no API token" in again.stdout
    kinds = await _kinds(layout)
    assert kinds.count("token_revoked") == 2 and kinds.count("token_issued") == 3


async def test_a_disabled_account_cannot_log_in_use_its_session_or_its_token(layout: Layout, sink: Sink) -> None:
    prepare(layout)
    async with serving(layout):
        await add_moderator(layout, "ana", "stem")
        pair = await acreate_pair(layout)
        held_id = await write(layout, pair, "private", "I feel sad at home")
        token = await token_for(layout, "ana")
        async with session(layout, "ana") as browser, session(layout) as other:
            assert (await browser.get("/held")).status_code == 200
            disabled = await acli(layout, "moderator", "disable", "--username", "ana", "--json")
            assert disabled.returncode == 0, disabled.stderr
            assert json.loads(disabled.stdout) == {"username": "ana", "state": "disabled", "changed": True,
                                                    "sessions_ended": 1, "token_revoked": True}
            assert (await browser.get("/held")).status_code == 303  # sent to the login page
            assert await _api_works(other, token, held_id) == 401
            refused = await login(other, "ana")
            assert refused.status_code == 403 and "disabled" in refused.text
            assert (await other.get("/held")).status_code == 303
            listed = json.loads((await acli(layout, "moderator", "list", "--json")).stdout)
            assert [m["disabled"] for m in listed if m["username"] == "ana"] == [True]
            no_token = await acli(layout, "moderator", "token", "--username", "ana")
            assert no_token.returncode != 0 and "disabled" in no_token.stderr
            twice = await acli(layout, "moderator", "disable", "--username", "ana")
            assert twice.returncode == 0 and "disabled already" in twice.stdout
            # Enabled again: the password works, the old token and sessions do not come back.
            enabled = await acli(layout, "moderator", "enable", "--username", "ana")
            assert enabled.returncode == 0, enabled.stderr
            assert await _api_works(other, token, held_id) == 401
            assert (await browser.get("/held")).status_code == 303
            assert (await login(other, "ana")).status_code == 303
            assert (await other.get("/held")).status_code == 200
        nobody = await acli(layout, "moderator", "disable", "--username", "nobody")
        assert nobody.returncode != 0 and "no account named 'nobody'" in nobody.stderr
        missing = await acli(layout, "moderator", "disable")
        assert missing.returncode == 2 and "--username" in missing.stderr
    kinds = await _kinds(layout)
    assert kinds.count("account_disabled") == 1 and kinds.count("account_enabled") == 1


async def _clients(layout: Layout, count: int) -> list[tuple[httpx.AsyncClient, str]]:
    """`count` fresh clients from one address, each with its login form (its own CSRF cookie) loaded. Each
    posts on a new connection (a kept one may have idled past the server's keep-alive by then)."""
    clients = []
    for _ in range(count):
        transport = httpx.AsyncHTTPTransport(local_address="127.0.0.1", limits=httpx.Limits(keepalive_expiry=0))
        client = httpx.AsyncClient(base_url=base_url(layout), follow_redirects=False, timeout=120,
                                   transport=transport)
        clients.append((client, csrf_of((await client.get("/login")).text)))
    return clients


async def _all_at_once(clients: list[tuple[httpx.AsyncClient, str]], passwords: list[str]) -> list[httpx.Response]:
    try:
        return list(await asyncio.gather(*[
            client.post("/login", data={"username": "ana", "password": password, "csrf_token": csrf})
            for (client, csrf), password in zip(clients, passwords, strict=True)]))
    finally:
        for client, _ in clients:
            await client.aclose()


async def test_forty_guesses_at_once_are_not_verified_past_the_lock(layout: Layout, sink: Sink) -> None:
    prepare(layout)
    async with serving(layout):
        await add_moderator(layout, "ana", "stem")
        count = 40
        passwords = [f"wrong guess {i}" for i in range(count - 1)] + [PASSWORD]
        answers = await _all_at_once(await _clients(layout, count), passwords)
        codes = [r.status_code for r in answers]
        # The account's limit is 5: at most 5 attempts are verified (401, the right one's 303, and the one that
        # set the lock, answered 429 with the lock's message); every other one is refused before verification.
        verified = codes.count(401) + codes.count(303)
        assert verified <= 5 and codes.count(429) >= count - 5, codes
        assert set(codes) <= {401, 429, 303}, codes
        if codes[-1] == 303:  # the right password may only get in among the first five
            assert codes.count(401) <= 4, codes
        async with session(layout) as late:
            after = await login(late, "ana")
            if codes[-1] != 303:
                assert after.status_code == 429 and "Too many failed attempts" in after.text
    assert (await _kinds(layout)).count("login_locked") >= 1


async def test_a_flood_of_logins_gets_429_or_503_and_no_error(layout: Layout, sink: Sink) -> None:
    prepare(layout)
    async with serving(layout):
        await add_moderator(layout, "ana", "stem")
        count = 120
        answers = await _all_at_once(await _clients(layout, count), [f"wrong {i}" for i in range(count)])
        codes = [r.status_code for r in answers]
        assert set(codes) <= {401, 429, 503}, codes
        assert codes.count(401) <= 4, codes
        busy = [r for r in answers if r.status_code == 503]
        assert all(r.headers.get("retry-after") == "5" and "busy" in r.text for r in busy)
        async with session(layout) as client:  # the console answers other requests meanwhile and after
            assert (await client.get("/login")).status_code == 200
