"""Console sessions and logins over real HTTP: sessions live in the store and end at logout, on a
password change, when an admin revokes them, and when idle; a login costs the same for a known and an
unknown username; throttling slows an attacker (per address, per account) without locking the real
moderator out (a browser that logged in before passes with the right password)."""

from __future__ import annotations

import json
import statistics
import time
from datetime import UTC, datetime, timedelta

import httpx

from relay.clock import FixedClock
from tests.consolekit import PASSWORD, add_moderator, csrf_of, login, prepare, serving, session
from tests.support import Layout, Sink, acli, acli_json


async def test_a_cookie_copied_before_logout_is_worthless_after_it(layout: Layout, sink: Sink) -> None:
    prepare(layout)
    async with serving(layout):
        await add_moderator(layout, "ana", "stem")
        async with session(layout, "ana") as browser, session(layout) as thief:
            thief.cookies.update(browser.cookies)  # the session cookie, copied while it is valid
            assert (await thief.get("/held")).status_code == 200
            page = await browser.get("/held")
            assert (await browser.post("/logout", data={"csrf_token": csrf_of(page.text)})).status_code == 303
            assert (await thief.get("/held")).status_code == 303  # to the login page: the session has ended
            assert (await thief.get("/pairs")).headers["location"].startswith("/login")
    kinds = [e["kind"] for e in await acli_json(layout, "events", "list", "--json")]
    assert kinds.count("login") == 1 and kinds.count("logout") == 1


async def test_a_password_change_and_an_admin_end_sessions(layout: Layout, sink: Sink) -> None:
    prepare(layout)
    async with serving(layout):
        await add_moderator(layout, "ana", "stem")
        await add_moderator(layout, "root", admin=True)
        async with session(layout, "ana") as phone, session(layout, "ana") as laptop, session(layout, "root") as admin:
            listed = json.loads((await acli(layout, "moderator", "sessions", "--username", "ana", "--json")).stdout)
            assert len(listed) == 2 and {s["username"] for s in listed} == {"ana"}
            # The admin sees both of ana's sessions on /sessions and ends the phone's.
            overview = await admin.get("/sessions")
            assert overview.status_code == 200 and overview.text.count('data-label="Account">ana<') == 2
            phone_id = min(s["id"] for s in listed)  # the phone logged in first
            ended = await admin.post(f"/sessions/{phone_id}/revoke", data={"csrf_token": csrf_of(overview.text)})
            assert ended.status_code == 200 and f"Session {phone_id} of ana has ended" in ended.text
            assert (await phone.get("/held")).status_code == 303
            assert (await laptop.get("/held")).status_code == 200
            # ana sees only her own sessions, and cannot end root's.
            own = await laptop.get("/sessions")
            assert "root" not in own.text and "(this one)" in own.text
            root_id = json.loads((await acli(layout, "moderator", "sessions", "--username", "root",
                                             "--json")).stdout)[0]["id"]
            refused = await laptop.post(f"/sessions/{root_id}/revoke", data={"csrf_token": csrf_of(own.text)})
            assert refused.status_code == 404 and (await admin.get("/held")).status_code == 200
            # A new password ends every session of the account at once.
            changed = await acli(layout, "moderator", "password", "--username", "ana", "--json",
                                 stdin="a brand new password\n")
            assert changed.returncode == 0, changed.stderr
            assert json.loads(changed.stdout)["sessions_ended"] == 1
            assert (await laptop.get("/held")).status_code == 303
            assert (await login(laptop, "ana")).status_code == 401  # the old password is gone
            assert (await login(laptop, "ana", "a brand new password")).status_code == 303
            # The CLI ends every session of an account too.
            revoked = await acli(layout, "moderator", "revoke", "--username", "ana", "--json")
            assert json.loads(revoked.stdout) == {"ended": 1, "token_revoked": False}
            assert (await laptop.get("/held")).status_code == 303
            assert (await admin.get("/held")).status_code == 200
    kinds = [e["kind"] for e in await acli_json(layout, "events", "list", "--json")]
    assert kinds.count("sessions_revoked") == 2 and kinds.count("password_changed") == 1


async def test_a_session_ends_after_an_idle_hour_and_after_eight_hours(layout: Layout, sink: Sink) -> None:
    prepare(layout)
    clock = FixedClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    async with serving(layout, clock):
        await add_moderator(layout, "ana", "stem")
        async with session(layout, "ana") as client:
            for _ in range(8):  # busy all day: a request every 59 minutes keeps it open, for 8 hours at most
                clock.advance(timedelta(minutes=59))
                assert (await client.get("/held")).status_code == 200, clock.now()
            clock.advance(timedelta(minutes=59))  # 9 h 51 min after login
            assert (await client.get("/held")).status_code == 303
            assert (await login(client, "ana")).status_code == 303
            clock.advance(timedelta(minutes=61))  # idle for more than an hour
            assert (await client.get("/held")).status_code == 303


async def _timed_login(client: httpx.AsyncClient, username: str, password: str) -> float:
    form = await client.get("/login")
    token = csrf_of(form.text)
    started = time.perf_counter()
    response = await client.post("/login", data={"username": username, "password": password, "csrf_token": token})
    elapsed = time.perf_counter() - started
    assert response.status_code == 401 and "Wrong username or password." in response.text
    return elapsed


async def test_a_login_costs_the_same_for_a_known_and_an_unknown_username(layout: Layout, sink: Sink) -> None:
    prepare(layout)
    clock = FixedClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    async with serving(layout, clock):
        await add_moderator(layout, "ana", "stem")
        known: list[float] = []
        unknown: list[float] = []
        async with session(layout) as client:
            for round_ in range(7):  # alternate, so that load on the machine hits both alike
                clock.advance(timedelta(minutes=16))  # each round in a new throttling window: never locked
                known.append(await _timed_login(client, "ana", f"wrong {round_}"))
                unknown.append(await _timed_login(client, f"nobody{round_}", f"wrong {round_}"))
    ratio = statistics.median(known) / statistics.median(unknown)
    print(f"login cost: known {statistics.median(known) * 1000:.0f} ms, unknown "
          f"{statistics.median(unknown) * 1000:.0f} ms, ratio {ratio:.2f}")
    assert 0.5 <= ratio <= 2.0, (known, unknown)


async def test_throttling_slows_an_attacker_but_never_locks_the_moderator_out(layout: Layout, sink: Sink) -> None:
    prepare(layout)
    clock = FixedClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    async with serving(layout, clock):
        await add_moderator(layout, "ana", "stem")
        await add_moderator(layout, "bo", "arts")
        async with session(layout, source="127.0.0.1") as ana_phone, \
                session(layout, source="127.0.0.2") as attacker, \
                session(layout, source="127.0.0.3") as new_laptop:
            assert (await login(ana_phone, "ana")).status_code == 303  # ana's phone: a known browser from now on
            page = await ana_phone.get("/held")
            await ana_phone.post("/logout", data={"csrf_token": csrf_of(page.text)})
            # Someone guesses ana's password from another machine: after 5 failures the account is closed ...
            answers = [(await login(attacker, "ana", f"guess {n}")).status_code for n in range(5)]
            assert answers == [401, 401, 401, 401, 429]
            assert (await login(attacker, "ana", PASSWORD)).status_code == 429  # ... even to the right password
            assert (await login(new_laptop, "ana", PASSWORD)).status_code == 429  # from any unknown browser
            # ... but not to ana's own phone, which logged in before: the right password still works.
            assert (await login(ana_phone, "ana")).status_code == 303
            # The attacker's address is shut out after 10 failures, whatever the names; bo elsewhere is not.
            answers = [(await login(attacker, f"user{n}", "guess")).status_code for n in range(5)]
            assert answers == [401, 401, 401, 401, 429]
            assert (await login(attacker, "bo", PASSWORD)).status_code == 429
            assert (await login(new_laptop, "bo", PASSWORD)).status_code == 303
            # A known browser that keeps getting the password wrong is trusted no more.
            async with session(layout, source="127.0.0.1") as stolen:
                stolen.cookies.set("mentor_relay_device", ana_phone.cookies.get("mentor_relay_device") or "",
                                   domain="127.0.0.1", path="/login")
                for n in range(5):
                    assert (await login(stolen, "ana", f"guess {n}")).status_code in (401, 429)
                assert (await login(stolen, "ana", PASSWORD)).status_code == 429
        # The locks end in time.
        clock.advance(timedelta(minutes=16))
        async with session(layout, source="127.0.0.3") as other_laptop, \
                session(layout, source="127.0.0.2") as same_address:
            assert (await login(other_laptop, "ana", PASSWORD)).status_code == 303
            assert (await login(same_address, "bo", PASSWORD)).status_code == 303
    found = await acli_json(layout, "events", "list", "--json")
    locks = [e for e in found if e["kind"] == "login_locked"]
    assert {lock["detail"]["address"] for lock in locks} >= {"127.0.0.2"}
    logins = [e for e in found if e["kind"] == "login"]
    assert [e["detail"]["trusted_browser"] for e in logins if e["actor"] == "ana"] == [False, True, False]
