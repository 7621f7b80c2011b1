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
