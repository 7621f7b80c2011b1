"""Fail at start, not at 3 a.m.: `serve` and `check-config` validate every program and every policy
before anything is opened, and refuse to start on any error, each as `file:line: message`.

Policies used to be read only when the first message needed one: an invalid policy (or the unquoted
`sender_auth: off` that YAML reads as the boolean false) let `serve` start, then answered every DATA
with 451 and a traceback in the log.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from relay.config import load_settings
from relay.service import Relay
from relay.yamlsource import ConfigError
from tests.support import (
    DOMAIN,
    MENTEE,
    Layout,
    Sink,
    acli,
    acreate_pair,
    cli,
    eventually,
    free_port,
    send,
    simple_message,
)

PROGRAM = "id: stem\nname: S\ncoordinator: c@school.example\npolicy: adult-professional\n"


@pytest.fixture
def offline_layout(tmp_path: Path) -> Layout:
    layout = Layout(root=tmp_path / "relay", smtp_port=free_port(), sink_port=None)
    layout.write()
    return layout


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


# (file relative to the layout, its text, the line and words of the error)
CASES = {
    "a policy no program uses, with an unknown rule": (
        "policies/unused.yaml", "name: unused\nrules:\n  telepathy:\n    action: hold\n", 3,
        "rules.telepathy: unknown rule"),
    "a policy with an unknown key": (
        "policies/adult-professional.yaml", "name: adult-professional\ncolour: red\n", 2, "colour: unknown key"),
    "sender_auth: on (a YAML boolean naming neither require nor prefer)": (
        "policies/adult-professional.yaml", "name: adult-professional\nsender_auth: on\n", 2,
        "sender_auth: Value error, write require or prefer"),
    "a policy that is not a mapping": ("policies/youth-strict.yaml", "- hold\n", 1, "must be a mapping"),
    "a program naming a missing policy": (
        "programs/stem.yaml", PROGRAM.replace("adult-professional", "gone"), 4, "policy: no policy named 'gone'"),
    "a program with an unknown time zone": ("programs/stem.yaml", PROGRAM + "timezone: Mars/Base\n", 5,
                                            "unknown time zone 'Mars/Base'"),
    "a program with an unknown phone region": ("programs/stem.yaml", PROGRAM + "region: QQ\n", 5,
                                               "unknown phone region 'QQ'"),
}


@pytest.mark.parametrize("case", CASES)
def test_serve_and_check_config_refuse_to_start(offline_layout: Layout, case: str) -> None:
    relative, text, line, words = CASES[case]
    file = offline_layout.root / relative
    file.write_text(text)
    for command in ("check-config", "serve"):
        result = cli(offline_layout, command, timeout=60)  # a serve that started would not return: timeout
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr and "serving" not in result.stdout
        assert f"{file}:{line}: " in result.stderr and words in result.stderr, (command, result.stderr)
    assert not listening(offline_layout.smtp_port)


def test_relay_refuses_to_start_in_process_too(offline_layout: Layout) -> None:
    (offline_layout.root / "policies" / "unused.yaml").write_text("name: unused\ndefault_action: maybe\n")
    with pytest.raises(ConfigError) as refused:
        Relay(load_settings(offline_layout.config))
    assert f"{offline_layout.root / 'policies' / 'unused.yaml'}:2: default_action: " in str(refused.value)


async def test_unquoted_sender_auth_off_means_off(layout: Layout, sink: Sink) -> None:
    """YAML reads `sender_auth: off` as false: taken as "off", and mail flows (it used to get 451)."""
    (layout.root / "policies" / "adult-professional.yaml").write_text("name: adult-professional\nsender_auth: off\n")
    assert (await acli(layout, "check-config")).returncode == 0
    pair = await acreate_pair(layout)
    relay = Relay(load_settings(layout.config))
    await relay.start()
    try:
        assert relay.intake.policies.get("adult-professional").sender_auth == "off"
        message = simple_message(MENTEE["email"], pair["mentor_alias"], "Hello", "Hello from the mentee")
        code, text = await send(layout.smtp_port, message, MENTEE["email"], pair["mentor_alias"])
        assert code == 250, text
        delivered = await eventually(lambda: sink.received)
        assert delivered[0].rcpt_tos != [] and DOMAIN in str(delivered[0].message["From"])
    finally:
        await relay.stop()


def test_a_store_written_by_a_newer_version_is_one_line_from_every_command(offline_layout: Layout) -> None:
    """A package downgraded without restoring the backup (or an older instance beside a newer one): the store's
    schema revision is one this version has no migration for. Every command that opens the store, `serve` and
    `check-config` (systemd's pre-start check) say so in one line and exit 1; nothing is written. (They used to
    end in alembic's 90-line traceback, and check-config said OK.)"""
    from sqlalchemy import text

    from tests.support import in_thread, rows_now, store_url

    assert cli(offline_layout, "pair", "list").returncode == 0  # the store made, at this version's newest revision

    async def newer() -> None:
        from relay.store.database import create_engine

        engine = create_engine(store_url(offline_layout))
        try:
            async with engine.begin() as connection:
                await connection.execute(text("UPDATE alembic_version SET version_num = '0099_from_a_newer_release'"))
        finally:
            await engine.dispose()

    in_thread(newer)
    for command in (["check-config"], ["pair", "list"], ["held", "list", "--json"], ["archive", "verify"], ["serve"]):
        result = cli(offline_layout, *command, timeout=60)  # a serve that started would not return: timeout
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr and "serving" not in result.stdout, (command, result.stderr)
        problem = [line for line in result.stderr.splitlines() if not line.startswith(str(offline_layout.config))]
        assert problem == [
            "error: the store was written by a newer version of mentor-relay (its schema revision "
            "'0099_from_a_newer_release' is unknown to this version, whose newest is "
            f"{_newest()!r}); install that version, or restore the backup taken before it was installed"], command
    assert not listening(offline_layout.smtp_port)
    stored = rows_now(offline_layout, text("SELECT version_num FROM alembic_version"))
    assert [row[0] for row in stored] == ["0099_from_a_newer_release"]  # left as it was


def test_check_config_leaves_a_store_that_is_not_made_yet_unmade(offline_layout: Layout) -> None:
    """check-config reads the store's revision only where there is a store: it makes no SQLite file."""
    from relay.config import load_settings

    url = load_settings(offline_layout.config).database_url
    if not url.startswith("sqlite"):
        pytest.skip("only a SQLite store is a file that check-config could create; PostgreSQL has none to check")
    database = Path(url.split(":///", 1)[1])
    result = cli(offline_layout, "check-config")
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout and not database.exists()


def _newest() -> str:
    from relay.store.database import _head

    head = _head()
    assert head is not None
    return head
