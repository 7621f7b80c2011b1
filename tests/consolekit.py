"""Helpers of the console tests: a relay serving its console in-process with two programs, moderator
accounts made through the real CLI, logging in over real HTTP, and mail that gets held."""

from __future__ import annotations

import asyncio
import html
import re
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import yaml

from relay.clock import Clock
from relay.config import load_settings
from relay.service import Relay
from tests.support import MENTEE, Layout, cli, send, simple_message

PASSWORD = "correct horse battery"
PUBLIC_URL = "http://review.school.example"  # console.public_url, the base of links in mail (tests talk HTTP)
MODERATOR_MAILBOX = "moderators@school.example"
ARTS_MENTOR = {"email": "ravi.patel@studio.example.net", "name": "Ravi Patel", "handle": "Willow"}
ARTS_MENTEE = {"email": "lena.fischer@pupil.example.org", "name": "Lena Fischer", "handle": "Brook"}

HOLD_POLICY = f"""
    default_action: hold
    rules:
      keywords:
        - name: secrecy
          action: hold
          words: [secret]
    moderators:
      notify: [{MODERATOR_MAILBOX}]
"""


def prepare(layout: Layout, public_url: str | None = PUBLIC_URL) -> None:
    """Every message is held; a second program `arts` with its own coordinator; the console's public
    address is `public_url` (served here on loopback, as behind a reverse proxy)."""
    console = {k: v for k, v in layout.overrides.get("console", {}).items() if k != "public_url"}
    layout.overrides["console"] = console if public_url is None else {**console, "public_url": public_url}
    layout.write()
    (layout.root / "policies" / "adult-professional.yaml").write_text(textwrap.dedent(HOLD_POLICY))
    program = {"id": "arts", "name": "Arts mentoring", "coordinator": "arts-coordinator@school.example",
               "policy": "adult-professional", "region": "US", "timezone": "UTC"}
    (layout.root / "programs" / "arts.yaml").write_text(yaml.safe_dump(program))


@asynccontextmanager
async def serving(layout: Layout, clock: Clock | None = None) -> AsyncIterator[Relay]:
    relay = Relay(load_settings(layout.config), clock=clock, console=True)
    await relay.start()
    try:
        yield relay
    finally:
        await relay.stop()


def base_url(layout: Layout) -> str:
    return f"http://127.0.0.1:{layout.console_port}"


async def add_moderator(layout: Layout, username: str, *programs: str, admin: bool = False,
                        password: str = PASSWORD, role: str | None = None) -> None:
    args = ["moderator", "add", "--username", username]
    for program in programs:
        args += ["--program", program]
    if admin:
        args.append("--admin")
    if role is not None:
        args += ["--role", role]
    result = await asyncio.to_thread(cli, layout, *args, stdin=password + "\n")
    assert result.returncode == 0, result.stderr


async def token_for(layout: Layout, username: str) -> str:
    result = await asyncio.to_thread(cli, layout, "moderator", "token", "--username", username, "--json")
    assert result.returncode == 0, result.stderr
    return str(yaml.safe_load(result.stdout)["token"])


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "no CSRF field on the page"
    return html.unescape(found.group(1))


async def login(client: httpx.AsyncClient, username: str, password: str = PASSWORD) -> httpx.Response:
    form = await client.get("/login")
    return await client.post("/login", data={"username": username, "password": password,
                                             "csrf_token": csrf_of(form.text)})


@asynccontextmanager
async def session(layout: Layout, username: str | None = None, *,
                  source: str = "127.0.0.1") -> AsyncIterator[httpx.AsyncClient]:
    """A browser-like client (keeps cookies, follows nothing) connecting from the loopback address
    `source` (127.0.0.2, ... stand for other machines: the console sees them as other clients)."""
    transport = httpx.AsyncHTTPTransport(local_address=source)
    async with httpx.AsyncClient(base_url=base_url(layout), follow_redirects=False, timeout=30,
                                 transport=transport) as client:
        if username is not None:
            response = await login(client, username)
            assert response.status_code == 303, response.text
        yield client


async def write(layout: Layout, pair: dict[str, Any], subject: str, body: str, *, sender: dict[str, str] = MENTEE,
                alias_key: str = "mentor_alias", raw: bytes | None = None) -> str:
    """The sender writes to their partner's alias; returns the queue id (the held message's id)."""
    message = raw or simple_message(f"{sender['name']} <{sender['email']}>", pair[alias_key], subject, body,
                                    message_id=f"<{subject.replace(' ', '.')}@client.example>")
    code, reply = await send(layout.smtp_port, message, sender["email"], pair[alias_key])
    assert code == 250, reply
    return reply.rsplit(" ", 1)[-1]
