"""Fixtures: a smarthost sink, a config layout in tmp, and the relay running in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from relay.config import load_settings
from relay.service import Relay
from tests.support import Layout, Sink, free_port


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    server = await Sink().start()
    yield server
    await server.stop()


@pytest.fixture
def layout(tmp_path: Path, sink: Sink) -> Layout:
    result = Layout(root=tmp_path / "relay", smtp_port=free_port(), sink_port=sink.port)
    result.write()
    return result


@pytest.fixture
async def relay(layout: Layout) -> AsyncIterator[Relay]:
    running = Relay(load_settings(layout.config))
    await running.start()
    yield running
    await running.stop()
