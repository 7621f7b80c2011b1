"""Delivery to a smarthost that demands STARTTLS and AUTH, with the password from the environment."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from relay.config import load_settings
from relay.service import Relay
from tests.support import (
    MENTEE,
    MENTOR,
    Layout,
    SinkHandler,
    acli_json,
    acreate_pair,
    cli,
    eventually,
    free_port,
    send,
    simple_message,
)

USER, PASSWORD = "relay", "s3cret-from-env"


class SecureSink:
    """A real aiosmtpd server on loopback that requires STARTTLS and then AUTH before it takes mail."""

    def __init__(self, cert_dir: Path) -> None:
        self.handler = SinkHandler()
        self.logins: list[tuple[bytes, bool]] = []
        authority = trustme.CA()
        self.ca_file = cert_dir / "ca.pem"
        authority.cert_pem.write_to_path(str(self.ca_file))
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        authority.issue_cert("127.0.0.1", "localhost").configure_cert(self.context)

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:  # type: ignore[no-untyped-def]
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            USER.encode(), PASSWORD.encode())
        self.logins.append((auth_data.login if isinstance(auth_data, LoginPassword) else b"?", ok))
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself

    async def start(self) -> int:
        self.server = await asyncio.get_running_loop().create_server(
            lambda: SMTP(self.handler, hostname="smarthost.test", decode_data=False, tls_context=self.context,
                         require_starttls=True, authenticator=self._authenticate, auth_required=True),
            "127.0.0.1", 0,
        )
        return int(self.server.sockets[0].getsockname()[1])


@contextlib.asynccontextmanager
async def relay_with_one_message(layout: Layout) -> AsyncIterator[Relay]:
    """A running relay that has just accepted one message from the mentee to the mentor."""
    relay = Relay(load_settings(layout.config))
    await relay.start()
    try:
        pair = await acreate_pair(layout)
        code, _ = await send(layout.smtp_port, simple_message(MENTEE["email"], pair["mentor_alias"], "tls", "hi"),
                             MENTEE["email"], pair["mentor_alias"])
        assert code == 250
        yield relay
    finally:
        await relay.stop()


@pytest.fixture
async def secure(tmp_path: Path) -> AsyncIterator[tuple[SecureSink, Layout]]:
    sink = SecureSink(tmp_path)
    port = await sink.start()
    layout = Layout(root=tmp_path / "relay", smtp_port=free_port(), sink_port=port, overrides={"delivery": {
        "starttls": True, "ca_file": str(sink.ca_file), "username": USER, "password_env": "TEST_SMARTHOST_PASSWORD",
    }})
    layout.write()
    yield sink, layout
    sink.server.close()


async def test_starttls_and_auth_to_the_smarthost(secure: tuple[SecureSink, Layout],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    sink, layout = secure
    monkeypatch.setenv("TEST_SMARTHOST_PASSWORD", PASSWORD)
    async with relay_with_one_message(layout):
        received = await sink.handler.wait_for(1)
        assert received[0].rcpt_tos == [MENTOR["email"]]
        assert sink.logins == [(USER.encode(), True)]
    config_text = layout.config.read_text()
    assert PASSWORD not in config_text  # the secret lives in the environment only


async def test_the_password_can_come_from_a_file(secure: tuple[SecureSink, Layout]) -> None:
    sink, layout = secure
    (layout.root / "smarthost.secret").write_text(PASSWORD + "\n")  # as `echo` or a secrets manager writes it
    layout.overrides["delivery"] = {**layout.overrides["delivery"], "password_env": None,
                                    "password_file": "smarthost.secret"}
    layout.write()
    async with relay_with_one_message(layout):
        assert len(await sink.handler.wait_for(1)) == 1
        assert sink.logins == [(USER.encode(), True)]
    assert PASSWORD not in layout.config.read_text()


def test_a_username_without_a_password_source_is_a_config_error(secure: tuple[SecureSink, Layout]) -> None:
    _, layout = secure
    layout.overrides["delivery"] = {**layout.overrides["delivery"], "password_env": None}
    layout.write()
    result = cli(layout, "check-config")
    assert result.returncode == 1 and "username needs password_env or password_file" in result.stderr
    assert result.stderr.startswith(f"{layout.config}:")


async def test_wrong_password_keeps_the_message_queued(secure: tuple[SecureSink, Layout],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    sink, layout = secure
    monkeypatch.setenv("TEST_SMARTHOST_PASSWORD", "wrong")
    async with relay_with_one_message(layout):
        deferred = await eventually(lambda: acli_json(layout, "events", "list", "--kind", "deferred", "--json"))
        assert "refused our credentials" in deferred[0]["detail"]["error"]
        assert "wrong" not in json.dumps(deferred)  # a password never reaches the record or the logs
        queued = await acli_json(layout, "queue", "list", "--state", "queued", "--json")
        assert len(queued) == 1 and sink.handler.received == []
