"""Serving the console inside `mentor-relay serve`: uvicorn on the relay's own event loop, on
console.host:console.port (HTTPS when console.tls_cert and tls_key are set). uvicorn installs no signal
handlers here: the relay owns SIGTERM/SIGINT and stops the console with everything else."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Iterator

import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine

from relay.clock import Clock
from relay.config import ConfigError, Settings
from relay.console.app import create_app
from relay.holdqueue.actions import Offload, in_thread
from relay.moderation.policy import PolicyBook
from relay.store.state import read_state


async def console_secret(settings: Settings, engine: AsyncEngine) -> str:
    """console.secret_key ("env:NAME" or "file:PATH"), else the installation's secret in the store."""
    reference = settings.relay.console.secret_key
    if reference is None:
        return await read_state(engine, "console_secret")
    kind, _, name = reference.partition(":")
    if kind == "env":
        value = os.environ.get(name.strip(), "")
        if not value:
            raise ConfigError([f"{settings.path}: console.secret_key: the environment variable {name.strip()} "
                               "is not set"])
        return value
    path = settings.resolve(name.strip())
    try:
        value = path.read_text().strip()
    except OSError as exc:
        raise ConfigError([f"{settings.path}: console.secret_key: cannot read {path}: {exc.strerror}"]) from None
    if len(value) < 16:
        raise ConfigError([f"{settings.path}: console.secret_key: {path} must hold at least 16 characters"])
    return value


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # the relay handles the signals
        yield


class ConsoleServer:
    def __init__(self, settings: Settings, engine: AsyncEngine, clock: Clock, policies: PolicyBook,
                 offload: Offload = in_thread) -> None:
        self.offload = offload
        self.settings = settings
        self.engine = engine
        self.clock = clock
        self.policies = policies
        self.server: _Server | None = None
        self.task: asyncio.Task[None] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        console = self.settings.relay.console
        return f"{'https' if console.tls_cert else 'http'}://{console.host}:{self.port}"

    async def start(self) -> str:
        console = self.settings.relay.console
        app = create_app(self.settings, self.engine, self.clock, self.policies,
                         secret=await console_secret(self.settings, self.engine), offload=self.offload)
        family = socket.AF_INET6 if ":" in console.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP named: asyncio sets NODELAY
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((console.host, console.port))
        except OSError as exc:
            sock.close()
            raise OSError(exc.errno, f"the console cannot listen on {console.host}:{console.port}: "
                                     f"{exc.strerror}") from None
        sock.listen(128)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="off", server_header=False,
            # Behind a reverse proxy named in console.trusted_proxies, the client address (login throttling,
            # metrics_networks) and scheme come from its X-Forwarded-For / X-Forwarded-Proto; from anyone
            # else those headers are ignored.
            proxy_headers=bool(console.trusted_proxies),
            forwarded_allow_ips=",".join(str(n) for n in console.trusted_proxies) or None,
            ssl_certfile=str(self.settings.resolve(console.tls_cert)) if console.tls_cert else None,
            ssl_keyfile=str(self.settings.resolve(console.tls_key)) if console.tls_key else None,
        )
        self.server = _Server(config)
        self.task = asyncio.create_task(self.server.serve(sockets=[sock]))
        for _ in range(500):  # bounded: 5 s
            if self.server.started or self.task.done():
                break
            await asyncio.sleep(0.01)
        if self.task.done():
            self.task.result()  # raises what stopped it
        if not self.server.started:
            raise OSError(f"the console did not start on {console.host}:{console.port}")
        return self.url

    async def stop(self) -> None:
        if self.server is not None and self.task is not None:
            self.server.should_exit = True
            await self.task
