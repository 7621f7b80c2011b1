"""The console as an admin runs it: accounts from the command line, its configuration (secrets only by
reference), served by `mentor-relay serve`, over HTTPS with a Secure cookie, and two-moderator releases."""

from __future__ import annotations

import asyncio
import json
import ssl
import textwrap
from pathlib import Path

import httpx
import trustme
from sqlalchemy import select

from relay.store.schema import moderators
from tests.consolekit import add_moderator, base_url, csrf_of, login, prepare, serving, session, write
from tests.support import MENTOR, Layout, ServeProcess, Sink, acreate_pair, cli, eventually, nothing_queued, rows_now
from tests.test_console import by_rcpt, held_state


def test_moderator_accounts_from_the_command_line(layout: Layout) -> None:
    prepare(layout)
    added = cli(layout, "moderator", "add", "--username", "Ana", "--program", "stem", "--json",
                stdin="a long enough password\n")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout) == {"username": "ana", "role": "moderator", "programs": ["stem"]}
    admin = cli(layout, "moderator", "add", "--username", "root", "--admin", stdin="another long password\n")
    assert admin.returncode == 0 and "moderator root (admin) added" in admin.stdout
    for args, stdin, error in (
        (["--username", "ana", "--program", "stem"], "a long enough password\n", "a moderator named 'ana' exists"),
        (["--username", "ben", "--program", "stem"], "short\n", "at least 10 characters"),
        (["--username", "ben", "--program", "nope"], "a long enough password\n", "unknown program 'nope'"),
        (["--username", "ben"], "a long enough password\n", "--program is required"),
        (["--username", "two words", "--program", "stem"], "a long enough password\n", "without spaces"),
    ):
        result = cli(layout, "moderator", "add", *args, stdin=stdin)
        assert result.returncode == 1 and error in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    listed = json.loads(cli(layout, "moderator", "list", "--json").stdout)
    assert [(m["username"], m["role"], m["programs"]) for m in listed] == [
        ("ana", "moderator", ["stem"]), ("root", "admin", [])]
    token = cli(layout, "moderator", "token", "--username", "ana")
    assert token.returncode == 0 and token.stdout.startswith("mr_") and "shown once" in token.stdout
    secret = token.stdout.split()[0]
    (stored,) = rows_now(layout, select(moderators.c.password_hash, moderators.c.token_hash)
                         .where(moderators.c.username == "ana"))
    assert stored[0].startswith("$argon2id$") and "a long enough password" not in stored[0]
    assert secret not in stored[1] and len(stored[1]) == 64
    missing = cli(layout, "moderator", "token", "--username", "nobody")
    assert missing.returncode == 1 and missing.stderr.strip() == "error: no moderator named 'nobody'"


def test_secret_key_is_a_reference_never_the_secret(layout: Layout, tmp_path: Path) -> None:
    text = layout.config.read_text()
    layout.config.write_text(text.replace("console:\n", "console:\n  secret_key: hunter2-in-plain-yaml\n"))
    result = cli(layout, "check-config")
    line = next(n for n, row in enumerate(layout.config.read_text().splitlines(), 1) if "secret_key" in row)
    assert result.returncode == 1
    assert result.stderr.startswith(f"{layout.config}:{line}: console.secret_key: ")
    assert "never the secret itself" in result.stderr
    secret_file = tmp_path / "console.secret"
    secret_file.write_text("0123456789abcdef0123456789abcdef\n")
    layout.config.write_text(text.replace("console:\n", f"console:\n  secret_key: file:{secret_file}\n"))
    assert cli(layout, "check-config").returncode == 0
    layout.config.write_text(text.replace("console:\n", "console:\n  secret_key: env:CONSOLE_SECRET_UNSET\n"))
    started = cli(layout, "serve", timeout=60)
    assert started.returncode == 1
    assert started.stderr.strip().endswith("console.secret_key: the environment variable CONSOLE_SECRET_UNSET is "
                                           "not set")


async def test_serve_runs_the_console_and_stops_cleanly(layout: Layout, tmp_path: Path) -> None:
    prepare(layout)
    process = await asyncio.to_thread(ServeProcess(layout, tmp_path / "serve.log").start)  # the sink shares this loop
    try:
        async with httpx.AsyncClient(base_url=base_url(layout), timeout=10) as client:
            async def login_page() -> httpx.Response | None:
                try:
                    return await client.get("/login")
                except httpx.TransportError:
                    return None
            page = await eventually(login_page, timeout=20)
            assert page.status_code == 200 and 'name="password"' in page.text
            css = await client.get("/static/console.css")
            assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    finally:
        code = await asyncio.to_thread(process.terminate)
    log = (tmp_path / "serve.log").read_text()
    assert code == 0 and f"review console on http://127.0.0.1:{layout.console_port}" in log


async def test_over_https_the_session_cookie_is_secure(layout: Layout, sink: Sink, tmp_path: Path) -> None:
    prepare(layout)
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1")
    certificate.cert_chain_pems[0].write_to_path(str(tmp_path / "console.crt"))
    certificate.private_key_pem.write_to_path(str(tmp_path / "console.key"))
    text = layout.config.read_text()
    layout.config.write_text(text.replace("console:\n", f"console:\n  tls_cert: {tmp_path / 'console.crt'}\n"
                                                       f"  tls_key: {tmp_path / 'console.key'}\n"))
    trust = ssl.create_default_context()
    authority.configure_trust(trust)
    async with serving(layout):
        await add_moderator(layout, "ana", "stem")
        url = f"https://127.0.0.1:{layout.console_port}"
        async with httpx.AsyncClient(base_url=url, verify=trust, timeout=30) as client:
            response = await login(client, "ana")
            assert response.status_code == 303
            cookie = response.headers["set-cookie"].lower()
            assert "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie
            assert (await client.get("/held")).status_code == 200
        async with httpx.AsyncClient(base_url=base_url(layout), timeout=5) as plain:
            try:
                answered = (await plain.get("/login")).status_code
            except httpx.TransportError:
                answered = 0
            assert answered != 200  # no plain-HTTP console beside the HTTPS one


TWO_MODERATORS = """
    default_action: deliver
    rules:
      keywords:
        - name: wellbeing
          action: hold
          release_requires: 2
          words: [self-harm]
    moderators:
      notify: [moderators@school.example]
"""


async def test_a_release_that_needs_two_moderators_waits_for_the_second(layout: Layout, sink: Sink) -> None:
    prepare(layout)
    (layout.root / "policies" / "adult-professional.yaml").write_text(textwrap.dedent(TWO_MODERATORS))
    async with serving(layout):
        await add_moderator(layout, "ana", "stem")
        await add_moderator(layout, "ben", "stem")
        pair = await acreate_pair(layout)
        held_id = await write(layout, pair, "worried", "I read about self-harm and it scares me")
        async with session(layout, "ana") as client:
            token = csrf_of((await client.get(f"/held/{held_id}")).text)
            first = await client.post(f"/held/{held_id}/release", data={"csrf_token": token})
            assert "approval is recorded (1 of 2)" in first.text
            again = await client.post(f"/held/{held_id}/release", data={"csrf_token": token})
            assert "approval is recorded (1 of 2)" in again.text  # the same moderator counts once
        await eventually(lambda: nothing_queued(layout), timeout=20)  # a release would have queued the mentor's
        assert held_state(layout, held_id) == "held" and by_rcpt(sink, MENTOR["email"]) == []
        async with session(layout, "ben") as client:
            view = await client.get(f"/held/{held_id}")
            assert "approved by ana" in view.text
            second = await client.post(f"/held/{held_id}/release", data={"csrf_token": csrf_of(view.text)})
            assert "Released" in second.text
        delivered = await eventually(lambda: by_rcpt(sink, MENTOR["email"]))
        assert len(delivered) == 1
