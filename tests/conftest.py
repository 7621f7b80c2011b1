"""Fixtures: a smarthost sink, a config layout in tmp, the relay running in-process, and the store.

    sink            a real SMTP server on 127.0.0.1 (the relay's smarthost); `await sink.wait_for(n)`
    layout          relay.yaml + programs/ + policies/ in the test's tmp dir, with the test's own store
    relay           the relay started in-process on `layout` (stopped after the test)
    database_url    a fresh, empty store's URL for relay.store.database.create_engine (no layout needed)
    browser, pages  Chromium through Playwright; pages opened at a width, screenshot on failure (tests/browserkit.py)
    postgres_url    a PostgreSQL server URL (postgresql://...) for tests that need PostgreSQL itself (several
                    relay instances on one database): MENTOR_RELAY_TEST_DATABASE when set, else a throw-away
                    cluster this session starts from /usr/lib/postgresql/*/bin (tests/pgcluster.py)

The backend: MENTOR_RELAY_TEST_DATABASE unset, SQLite files; set to a PostgreSQL server URL, every store
is a fresh database on that server, dropped after the test (tests/database.py). `make test` runs the
SQLite suite, `make test-postgres` the PostgreSQL one (starting a throw-away cluster when the variable is
unset). Each test is isolated in its own tmp dir, ports and store, so the suite runs under pytest-xdist.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from relay.config import load_settings
from relay.service import Relay
from tests import database
from tests.browserkit import OUTCOMES, browser, pages  # noqa: F401 - fixtures of the console's browser tests
from tests.support import REPO, Layout, Sink, free_port


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that declare a longer timeout (@pytest.mark.timeout(N), the long scenarios) run first, so that
    under pytest-xdist they do not start last and keep one worker busy after the others are done."""
    def declared(item: pytest.Item) -> float:
        marker = item.get_closest_marker("timeout")
        return float(marker.args[0]) if marker is not None and marker.args else 0.0

    items.sort(key=lambda item: -declared(item))  # stable: the others keep their order


def pytest_report_header() -> str:
    url = database.server_url()
    if url is None:
        return "store: SQLite files (set MENTOR_RELAY_TEST_DATABASE=postgresql://... for PostgreSQL)"
    return f"store: a fresh PostgreSQL database per test on {url.split('@')[-1]}"


@pytest.fixture(autouse=True)
def _drop_test_databases() -> Iterator[None]:
    """Drop the PostgreSQL databases the test made (nothing to do on SQLite: tmp dirs go by themselves)."""
    before = database.mark()
    yield
    database.drop_since(before)


@pytest.fixture(scope="session", autouse=True)
def _drop_remaining_databases() -> Iterator[None]:
    yield
    database.drop_all()


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return database.engine_url(tmp_path)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    url = database.server_url()
    if url is not None:
        yield url
        return
    from tests import pgcluster

    if pgcluster.server_binaries() is None:
        pytest.fail("these tests run several relays on one PostgreSQL database, and no PostgreSQL server was "
                    "given (MENTOR_RELAY_TEST_DATABASE) or can be started here: " + pgcluster.INSTALL_HINT,
                    pytrace=False)
    cluster = pgcluster.Cluster(pgcluster.new_directory())
    try:
        yield cluster.start()
    finally:
        cluster.stop()


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



@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    """Keep each phase's report on the test item, so that a fixture's teardown knows whether the test
    failed (tests/browserkit.py saves screenshots of the open pages then)."""
    report = yield
    item.stash.setdefault(OUTCOMES, {})[report.when] = report
    return report


@pytest.fixture
def shipped_policies(layout: Layout) -> Layout:
    """The layout with the shipped adult-professional and youth-strict policies (its own test ones replaced)."""
    for name in ("adult-professional", "youth-strict"):
        shutil.copy(REPO / "policies" / f"{name}.yaml", layout.root / "policies" / f"{name}.yaml")
    return layout
