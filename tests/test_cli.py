"""The admin's command line: enrolment rules, listings with --json, and clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support import MENTEE, MENTOR, Layout, acli, cli, create_pair, free_port


@pytest.fixture
def offline_layout(tmp_path: Path) -> Layout:
    layout = Layout(root=tmp_path / "relay", smtp_port=free_port(), sink_port=None)
    layout.write()
    return layout


def enrol(layout: Layout, **changes: str) -> tuple[int, str, str]:
    values = {
        "--program": "stem",
        "--mentor-email": MENTOR["email"], "--mentor-name": MENTOR["name"], "--mentor-handle": MENTOR["handle"],
        "--mentee-email": MENTEE["email"], "--mentee-name": MENTEE["name"], "--mentee-handle": MENTEE["handle"],
    }
    for key, value in changes.items():
        values["--" + key.replace("_", "-")] = value
    args = [item for pair in values.items() for item in pair]
    result = cli(layout, "pair", "create", *args)
    return result.returncode, result.stdout, result.stderr


def test_pair_create_prints_id_and_aliases(offline_layout: Layout) -> None:
    code, out, err = enrol(offline_layout)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "pair 1"
    assert lines[1].startswith("mentor alias: oak.") and lines[1].endswith("@relay.test")
    assert lines[2].startswith("mentee alias: maple.")
    data = create_pair(offline_layout, {"email": "b@uni.example.net", "name": "Bo Chen", "handle": "Birch"},
                       {"email": "c@mail.example.org", "name": "Cy Diaz", "handle": "Cedar"})
    assert set(data) == {"id", "mentor_alias", "mentee_alias"} and data["id"] == 2
    assert data["mentor_alias"].startswith("birch.") and data["mentee_alias"].startswith("cedar.")


def test_addresses_are_normalised_and_aliases_unguessable(offline_layout: Layout) -> None:
    code, _, err = enrol(offline_layout, mentor_email="Jose.Mueller@UNI.Example.NET")
    assert code == 0, err
    shown = json.loads(cli(offline_layout, "pair", "show", "1", "--json").stdout)
    assert shown["mentor"]["email"] == "Jose.Mueller@uni.example.net"  # domain lower-cased, local part kept
    suffix = shown["mentor_alias"].split("@")[0].split(".")[1]
    assert len(suffix) == 6


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"mentor_email": "not-an-address"}, "not a usable email address"),
        ({"mentee_email": "jane@@mail.example.org"}, "not a usable email address"),
        ({"program": "nope"}, "unknown program 'nope'"),
        ({"policy": "nope"}, "no policy named 'nope'"),
        ({"mentee_handle": "oak"}, "different handles"),
        ({"mentee_email": MENTOR["email"]}, "different addresses"),
        ({"mentee_handle": "Jane"}, "must not contain their real name"),
        ({"mentee_handle": "Doe Ray"}, "must not contain their real name"),
        ({"end_date": "next june"}, "YYYY-MM-DD"),
        ({"mentor_timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"mentor_handle": "oak@home"}, "may not contain @"),
    ],
)
def test_enrolment_errors_are_clear(offline_layout: Layout, changes: dict[str, str], message: str) -> None:
    code, out, err = enrol(offline_layout, **changes)
    assert code == 1 and out == ""
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_handles_are_unique_within_a_program(offline_layout: Layout) -> None:
    assert enrol(offline_layout)[0] == 0
    code, _, err = enrol(offline_layout, mentor_email="other@uni.example.net", mentor_name="Ada Byron",
                         mentor_handle="OAK", mentee_handle="Willow")
    assert code == 1 and "'OAK' is already used in program 'stem'" in err
    assert json.loads(cli(offline_layout, "pair", "list", "--json").stdout)[0]["id"] == 1
    assert len(json.loads(cli(offline_layout, "pair", "list", "--json").stdout)) == 1


def test_listings_and_close(offline_layout: Layout) -> None:
    enrol(offline_layout)
    programs = json.loads(cli(offline_layout, "program", "list", "--json").stdout)
    assert [(p["id"], p["policy"], p["coordinator"]) for p in programs] == [
        ("stem", "adult-professional", "coordinator@school.example")]
    listed = json.loads(cli(offline_layout, "pair", "list", "--program", "stem", "--json").stdout)
    assert [(p["id"], p["status"], p["mentor"]["handle"], p["mentee"]["handle"]) for p in listed] == [
        (1, "active", "Oak", "Maple")]
    assert "Oak" in cli(offline_layout, "pair", "list").stdout
    closed = cli(offline_layout, "pair", "close", "1", "--json")
    assert json.loads(closed.stdout) == {"id": 1, "closed": True, "changed": True}
    again = cli(offline_layout, "pair", "close", "1")
    assert again.returncode == 0 and "already closed" in again.stdout
    shown = json.loads(cli(offline_layout, "pair", "show", "1", "--json").stdout)
    assert shown["status"] == "closed" and [e["kind"] for e in shown["events"]] == [
        "pair_created", "pair_closed", "farewell", "farewell"]  # once: closing again wrote to nobody
    missing = cli(offline_layout, "pair", "show", "99")
    assert missing.returncode == 1 and missing.stderr.strip() == "error: no pair with id 99"
    unknown = cli(offline_layout, "pair", "list", "--program", "nope")
    assert unknown.returncode == 1 and "unknown program 'nope'" in unknown.stderr


@pytest.mark.parametrize(
    "args",
    [["pair", "show", "abc"], ["pair", "create", "--program", "stem"], ["frobnicate"], ["pair"],
     ["queue", "list", "--state", "lost"]],
)
def test_wrong_arguments_exit_2_with_usage(offline_layout: Layout, args: list[str]) -> None:
    result = cli(offline_layout, *args)
    assert result.returncode == 2
    assert "usage:" in result.stderr and "Traceback" not in result.stderr


def test_check_config_reports_file_and_line(offline_layout: Layout) -> None:
    assert cli(offline_layout, "check-config").returncode == 0
    relay_yaml = offline_layout.config
    relay_yaml.write_text(relay_yaml.read_text() + "smtp_port: 25\n")
    result = cli(offline_layout, "check-config")
    lines = relay_yaml.read_text().splitlines()
    assert result.returncode == 1
    assert result.stderr.strip() == f"{relay_yaml}:{len(lines)}: smtp_port: unknown key"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("id: stem\nname: S\ncoordinator: c@school.example\npolicy: adult-professional\ntimezone: Mars/Base\n",
         5, "unknown time zone"),
        ("id: stem\nname: S\ncoordinator: not-an-address\npolicy: adult-professional\n", 3, "invalid email address"),
        ("id: stem\nname: S\ncoordinator: c@school.example\npolicy: missing-policy\n", 4, "no policy named"),
        ("id: stem\nname: S\ncoordinator: c@school.example\npolicy: adult-professional\ncolour: red\n",
         5, "colour: unknown key"),
        ("id: stem\nname: [unclosed\ncoordinator: c@school.example\n", 3, "invalid YAML"),
        ("id: stem\nname: S\nname: T\ncoordinator: c@school.example\npolicy: adult-professional\n",
         3, "duplicate key 'name'"),
        ("id: other\nname: S\ncoordinator: c@school.example\npolicy: adult-professional\n",
         1, "must match the file name"),
        ("- just\n- a list\n", 1, "must be a mapping"),
        ("id: stem\nname: S\ncoordinator: c@school.example\npolicy: adult-professional\ncommunity:\n"
         "  mentors: true\n  digest: hourly\n", 7, "community.digest"),
        ("id: stem\nname: S\ncoordinator: c@school.example\npolicy: adult-professional\ncommunity:\n"
         "  mentors: perhaps\n", 6, "community.mentors"),
        ("id: stem\nname: S\ncoordinator: c@school.example\npolicy: adult-professional\ncommunity:\n"
         "  mentor: true\n", 6, "mentor: unknown key"),
        ("id: stem\nname: S\ncoordinator: c@school.example\npolicy: adult-professional\ngroup_digest: monthly\n",
         5, "group_digest"),
    ],
)
def test_program_errors_name_file_and_line(offline_layout: Layout, text: str, line: int, message: str) -> None:
    program = offline_layout.root / "programs" / "stem.yaml"
    program.write_text(text)
    result = cli(offline_layout, "check-config")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"{program}:{line}: " in result.stderr and message in result.stderr, result.stderr


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    layout = Layout(root=tmp_path / "nowhere", smtp_port=1, sink_port=None)
    result = cli(layout, "check-config")
    assert result.returncode == 1 and result.stderr.strip() == f"{layout.config}:1: file not found"


def test_a_command_imports_only_its_own_module_and_help_lists_every_command() -> None:
    """`mentor-relay --help` and a command's start do not import every other command (the relay, DKIM, the
    console...): a report on a large store starts in a fraction of a second. Each command's help still
    says what its module declares, and `--help` lists every command with its one-line help."""
    script = textwrap.dedent("""
        import contextlib, io, json, sys
        from relay.cli import COMMANDS, build_parser, parse
        args = parse(["--config", "x.yaml", "report", "--program", "stem", "--json"])
        loaded = sorted(m for m in sys.modules if m.startswith("relay.cli."))
        service = "relay.service" in sys.modules
        top = io.StringIO()
        with contextlib.redirect_stdout(top), contextlib.suppress(SystemExit):
            parse(["--help"])
        helps = {}
        for name, _, _ in COMMANDS:
            text = io.StringIO()
            with contextlib.redirect_stdout(text), contextlib.suppress(SystemExit):
                parse([name, "--help"])
            helps[name] = text.getvalue()
        print(json.dumps({"program": args.program, "loaded": loaded, "top": top.getvalue(), "helps": helps,
                          "service": service}))
    """)
    found = json.loads(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                                      env={**os.environ, "COLUMNS": "200"}).stdout)
    assert found["program"] == "stem" and not found["service"]
    assert found["loaded"] == ["relay.cli.common", "relay.cli.report"]
    for name in ("serve", "check-config", "pair", "report", "archive", "moderator"):
        assert f"usage: mentor-relay {name}" in found["helps"][name]
    assert "--program PROGRAM" in found["helps"]["report"] and "--dry-run" not in found["helps"]["report"]
    assert all(action in found["helps"]["pair"] for action in ("create", "away", "address", "resume"))
    assert "run the SMTP relay and the delivery worker" in found["top"]
    assert "a program's figures: pairs, messages, reply times" in found["top"]


async def test_the_blocking_cli_helpers_refuse_a_running_event_loop(offline_layout: Layout) -> None:
    """tests/support.py: `cli` and `create_pair` block their thread until the command is done; on the loop of a
    relay that holds the store's write lock the command waits for, that is a deadlock until the busy timeout.
    From a coroutine they refuse at once, naming the awaitable helper to use instead."""
    with pytest.raises(AssertionError, match=r"await acli\(\.\.\.\)"):
        cli(offline_layout, "check-config")
    with pytest.raises(AssertionError, match=r"await acreate_pair\(\.\.\.\)"):
        create_pair(offline_layout)
    assert (await acli(offline_layout, "check-config")).returncode == 0  # in a thread of its own: no loop there
