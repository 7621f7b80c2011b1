"""Bad values are refused where they are entered, with `file:line: message` or `error: ...`, never a
traceback and never a half-written record (DESIGN.md, invariant 6); none may wait for a sweep at 3 a.m.

Each case here was reproduced by a review: a 200-word real name made the name matcher take most of a
minute per message, so the pair could never write; an end date of 9999-12-31 made every nudge sweep fail
for every pair of the relay; a policy name could point outside policies_dir; durations, numbers and
YAML constructs (merge keys, aliases, 5000-digit integers) ended check-config in a traceback or passed
it and failed every message later; `database: mysql://` passed check-config.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select, update

from relay.store.database import create_engine, transaction
from relay.store.schema import pairs
from tests.consolekit import base_url, prepare
from tests.support import (
    MENTEE,
    MENTOR,
    REPO,
    Layout,
    ServeProcess,
    cli,
    create_pair,
    eventually,
    free_port,
    in_thread,
    rows_now,
    store_url,
)
from tests.test_api_enrolment import token_for

HEADER = ("mentor_email,mentor_name,mentor_handle,mentee_email,mentee_name,mentee_handle,mentor_nickname,"
          "policy,end_date")


@pytest.fixture
def offline_layout(tmp_path: Path) -> Layout:
    layout = Layout(root=tmp_path / "relay", smtp_port=free_port(), sink_port=None)
    layout.write()
    return layout


def count_pairs(layout: Layout) -> int:
    return int(rows_now(layout, select(func.count()).select_from(pairs))[0][0])


LONG_NAME = " ".join(f"Word{i}" for i in range(200))

# (option to change in `pair create`, its value, words of the error)
PAIR_CREATE_CASES = {
    "a 200-word real name": ("--mentor-name", LONG_NAME,
                             f"the mentor's real name is {len(LONG_NAME)} characters long; at most 150"),
    "a real name of 21 words": ("--mentee-name", " ".join(f"Ann{i}" for i in range(21)),
                                "has 21 words; at most 20"),
    "a 5000-character first name": ("--mentor-name", "R" * 5000 + " Smith", "at most 150 are allowed"),
    "a right-to-left override in a name": ("--mentor-name", "José \u202eMüller", "control or text-direction "
                                                                                  "character (U+202E)"),
    "a control character in a handle": ("--mentee-handle", "Ma\x07ple", "the mentee's handle contains a control"),
    "an isolate in a handle": ("--mentor-handle", "Oak\u2066", "U+2066"),
    "a long nickname": ("--mentor-nickname", "Z" * 61, "the mentor's nickname is 61 characters long; at most 60"),
    "a nickname of many words": ("--mentor-nickname", "a b c d e f g h i", "has 9 words; at most 8"),
    "an end date in year 9999": ("--end-date", "9999-12-31", "end date 9999-12-31 is out of range: it must be "
                                                             "between 2000-01-01 and 2100-12-31"),
    "a policy given as a path": ("--policy", "/tmp/x/evil", "no policy named '/tmp/x/evil': a policy name is "
                                                            "a file name, never a path"),
    "a policy going up a folder": ("--policy", "../policies/adult-professional",
                                   "a policy name is a file name, never a path"),
}


def pair_create(layout: Layout, option: str, value: str) -> list[str]:
    args = {"--mentor-email": MENTOR["email"], "--mentor-name": MENTOR["name"], "--mentor-handle": MENTOR["handle"],
            "--mentee-email": MENTEE["email"], "--mentee-name": MENTEE["name"], "--mentee-handle": MENTEE["handle"]}
    args[option] = value
    return ["pair", "create", "--program", "stem", *[part for item in args.items() for part in item]]


@pytest.mark.parametrize("case", PAIR_CREATE_CASES)
def test_pair_create_refuses_a_bad_value(offline_layout: Layout, case: str) -> None:
    option, value, words = PAIR_CREATE_CASES[case]
    result = cli(offline_layout, *pair_create(offline_layout, option, value))
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.startswith("error: ") and words in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert count_pairs(offline_layout) == 0


def test_a_long_real_name_within_the_bounds_is_enrolled(offline_layout: Layout) -> None:
    """The bounds refuse what no real name is, not long real ones: nine words, as many Spanish names have."""
    name = "María de los Ángeles García Fernández de la Torre"
    result = cli(offline_layout, *pair_create(offline_layout, "--mentee-name", name))
    assert result.returncode == 0, result.stderr
    assert count_pairs(offline_layout) == 1


def test_group_add_refuses_an_unbounded_name(offline_layout: Layout) -> None:
    created = cli(offline_layout, "group", "create", "--program", "stem", "--name", "Robotics", "--json")
    assert created.returncode == 0, created.stderr
    group = json.loads(created.stdout)["id"]
    result = cli(offline_layout, "group", "add", str(group), "--role", "mentee", "--email", "kid@school.example.org",
                 "--name", LONG_NAME, "--handle", "Fern")
    assert result.returncode == 1 and f"the mentee's real name is {len(LONG_NAME)} characters long" in result.stderr
    assert "Traceback" not in result.stderr
    shown = json.loads(cli(offline_layout, "group", "show", str(group), "--json").stdout)
    assert shown["members"] == []
    refused = cli(offline_layout, "group", "create", "--program", "stem", "--name", "Chess", "--policy", "../x")
    assert refused.returncode == 1 and "a policy name is a file name, never a path" in refused.stderr


def test_pair_import_refuses_each_bad_row_and_writes_nothing(offline_layout: Layout, tmp_path: Path) -> None:
    good = "m{i}@uni.example.net,Rob Smith{i},Oak{i},s{i}@school.example.org,Al Wu{i},Maple{i},{nick},{policy},{end}"
    lines = [
        HEADER,
        good.format(i=1, nick="", policy="", end="2099-06-30"),  # line 2: good
        good.format(i=2, nick="", policy="", end="9999-12-31"),  # line 3
        good.format(i=3, nick="", policy="../policies/adult-professional", end=""),  # line 4
        good.format(i=4, nick="", policy="", end="").replace("Rob Smith4", LONG_NAME),  # line 5
        good.format(i=5, nick="", policy="", end="").replace("Al Wu5", "Al\x00Wu"),  # line 6
        good.format(i=6, nick="Bo\u202bby", policy="", end=""),  # line 7
        good.format(i=7, nick="", policy="", end="").replace("Maple7", "Map\x1ble"),  # line 8
    ]
    file = tmp_path / "cohort.csv"
    file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = cli(offline_layout, "pair", "import", "--program", "stem", str(file))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    errors = result.stderr.strip().splitlines()
    assert errors == [
        f"{file}:3: end date 9999-12-31 is out of range: it must be between 2000-01-01 and 2100-12-31",
        f"{file}:4: no policy named '../policies/adult-professional': a policy name is a file name, never a path "
        f"(the file in {offline_layout.root / 'policies'} without .yaml)",
        f"{file}:5: the mentor's real name is {len(LONG_NAME)} characters long; at most 150 are allowed",
        f"{file}:6: the mentee's real name contains a control or text-direction character (U+0000); type it "
        f"again without it",
        f"{file}:7: the mentor's nickname contains a control or text-direction character (U+202B); type it "
        f"again without it",
        f"{file}:8: the mentee's handle contains a control or text-direction character (U+001B); type it "
        f"again without it",
        f"error: 6 problems in {file}; nothing was written",
    ], result.stderr
    assert count_pairs(offline_layout) == 0


def test_a_stored_end_date_out_of_range_does_not_stop_the_sweep(offline_layout: Layout) -> None:
    """A store written before end dates were bounded may hold 9999-12-31: the sweep logs that pair and
    still serves every pair (it used to fail with OverflowError, so no pair got reminders or endings)."""
    over = create_pair(offline_layout)  # its end date is set below, as an older relay accepted it
    quiet = create_pair(offline_layout, {"email": "m2@uni.example.net", "name": "Tom Jones", "handle": "Birch"},
                        {"email": "s2@school.example.org", "name": "Bo Li", "handle": "Fern"})
    due = create_pair(offline_layout, {"email": "m3@uni.example.net", "name": "Rob Smith", "handle": "Cedar"},
                      {"email": "s3@school.example.org", "name": "Al Wu", "handle": "Ivy"}, "stem",
                      "--end-date", "2020-06-30")

    async def set_end_date() -> None:
        engine = create_engine(store_url(offline_layout))
        try:
            async with transaction(engine) as connection:
                await connection.execute(update(pairs).where(pairs.c.id == over["id"]).values(end_date="9999-12-31"))
        finally:
            await engine.dispose()

    in_thread(set_end_date)
    # a month on, in the afternoon in New York (the program's time zone): both silent pairs get a check-in
    later = (datetime.now(UTC) + timedelta(days=30)).replace(hour=18, minute=0, second=0, microsecond=0)
    result = cli(offline_layout, "nudges", "run", "--now", later.isoformat(), "--json")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert f"pair {over['id']}: end date '9999-12-31' cannot be used" in result.stderr
    data = json.loads(result.stdout)
    assert data["ended"] == [due["id"]]
    assert sorted((s["kind"], s["pair_id"], s["to_role"]) for s in data["sent"]) == sorted(
        ("nudge.checkin", pair["id"], role) for pair in (over, quiet) for role in ("mentor", "mentee"))
    status = dict(rows_now(offline_layout, select(pairs.c.id, pairs.c.status)))
    assert status == {over["id"]: "active", quiet["id"]: "active", due["id"]: "ended"}


def write_config(layout: Layout, text: str) -> None:
    layout.config.write_text(layout.config.read_text() + text)


# (text added to relay.yaml, or (file, text) replacing a file; the line and words of the error)
RELAY = "relay.yaml"
POLICY = "policies/adult-professional.yaml"
PROGRAM = "programs/stem.yaml"
CONFIG_CASES = {
    "review_within: .inf": (POLICY, "name: adult-professional\nreview_within: .inf\n", 2,
                            "review_within: Value error, expected a duration such as 30m, 48h or 7d, not infinity"),
    "review_within: 999999999999999d": (POLICY, "review_within: 999999999999999d\n", 1,
                                        "review_within: Value error, a duration can be at most 36525d"),
    "escalate_after: 99999999999w": (POLICY, "\nescalate_after: 99999999999w\n", 2, "escalate_after: Value error, "
                                     "a duration can be at most 36525d"),
    "hold_first_messages: 99999999999999999999999": (
        POLICY, "hold_first_messages: 99999999999999999999999\n", 1,
        "hold_first_messages: Input should be less than or equal to 1000"),
    "a merge key in a policy": (POLICY, "name: adult-professional\n<<: {review_within: 1h}\n", 2,
                                "merge keys (<<) are not supported"),
    "retry_schedule: [99999999999999999999d]": (
        RELAY, "retry_schedule: [99999999999999999999d]", None, "delivery.retry_schedule.0: Value error, a duration "
        "can be at most 36525d"),
    "poll_interval: .inf": (RELAY, "poll_interval: .inf", None, "delivery.poll_interval: Value error, expected a "
                            "duration"),
    "poll_interval: 0s": (RELAY, "poll_interval: 0s", None, "delivery.poll_interval: Value error, must be longer "
                          "than zero"),
    "data_timeout: 1000000000000d": (RELAY, "data_timeout: 1000000000000d", None, "smtp.data_timeout: Value error, "
                                     "a duration can be at most 36525d"),
    "max_message_size: 1e400": (RELAY, "max_message_size: 100000000000000000000000000000", None,
                                "smtp.max_message_size: Input should be less than or equal to 1073741824"),
    "a merge key in relay.yaml": (RELAY, "<<: {x: 1}", None, "merge keys (<<) are not supported"),
    "an integer of 5000 digits": (RELAY, "workers: 1" + "0" * 5000, None,
                                  "invalid value: a number with thousands of digits is not a setting"),
    "an alias bomb": (RELAY, "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
                      "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
                      "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
                      "g: [*f,*f,*f,*f,*f,*f,*f,*f,*f]", 1, "aliases (*a) are not supported"),
    "database: mysql://x": (RELAY, "database: mysql://x", None, "database: Value error, database 'mysql://x': the "
                            "relay stores its data in SQLite"),
    "a missing smtp.tls_cert": (RELAY, "tls_cert: nope.crt\n  tls_key: nope.key", None, "smtp.tls_cert: no such file "),
    "a program policy given as a path": (
        PROGRAM, "id: stem\nname: S\ncoordinator: c@school.example\npolicy: ../policies/adult-professional\n", 4,
        "policy: Value error, policy '../policies/adult-professional' is not a plain name"),
    "a program end date in year 9999": (
        PROGRAM, "id: stem\nname: S\ncoordinator: c@school.example\npolicy: adult-professional\n"
                 "end_date: 9999-12-31\n", 5, "end_date: Value error, end_date 9999-12-31 is out of range"),
}


def apply_case(layout: Layout, target: str, text: str) -> tuple[Path, int]:
    """Write the case into the layout; returns the file and the line the error must name."""
    if target != RELAY:
        file = layout.root / target
        file.write_text(text)
        return file, 0
    lines = layout.config.read_text().splitlines()
    key = text.split(":", 1)[0]
    where = {"retry_schedule": "delivery", "poll_interval": "delivery", "data_timeout": "smtp",
             "max_message_size": "smtp", "tls_cert": "smtp"}.get(key)
    if where is None:  # a top-level key: replace it, or add it at the end
        found = [i for i, line in enumerate(lines) if line.startswith(f"{key}:")]
        if found:
            lines[found[0]] = text
            index = found[0]
        else:
            index = len(lines)
            lines.append(text)
    else:  # a key of a section (yaml.safe_dump writes sections as blocks indented by two)
        section = lines.index(f"{where}:")
        index = next((i for i in range(section + 1, len(lines)) if lines[i].startswith(f"  {key}:")), section + 1)
        if lines[index].startswith(f"  {key}:"):
            lines[index] = f"  {text}"
            while index + 1 < len(lines) and lines[index + 1].startswith("  - "):  # the block list it replaces
                del lines[index + 1]
        else:
            lines.insert(index, f"  {text}")
    layout.config.write_text("\n".join(lines) + "\n")
    return layout.config, index + 1


@pytest.mark.parametrize("case", CONFIG_CASES)
def test_check_config_and_serve_refuse_a_bad_value_with_its_line(offline_layout: Layout, case: str) -> None:
    target, text, line, words = CONFIG_CASES[case]
    file, found_line = apply_case(offline_layout, target, text)
    line = found_line + (line or 0) if target == RELAY else line  # in relay.yaml: lines after the case's first
    for command in ("check-config", "serve"):
        result = cli(offline_layout, command, timeout=30)
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        assert f"{file}:{line}: " in result.stderr and words in result.stderr, (command, result.stderr)


@pytest.mark.parametrize("command", [("archive", "export", "--pair", "1"), ("person", "export", "--email",
                                                                           "jane.doe@mail.example.org")])
def test_export_to_a_directory_names_the_mistake(offline_layout: Layout, tmp_path: Path,
                                                  command: tuple[str, ...]) -> None:
    create_pair(offline_layout)
    result = cli(offline_layout, *command, "-o", str(tmp_path))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == f"error: -o must name a file, {tmp_path} is a directory"


async def test_the_enrolment_api_refuses_the_same_values(layout: Layout, tmp_path: Path) -> None:
    """POST /api/pairs goes through the same checks: a 422 naming the field, and no pair written."""
    prepare(layout)
    token = await token_for(layout, "cora", "coordinator", "stem")
    process = await asyncio.to_thread(ServeProcess(layout, tmp_path / "serve.log").start)
    try:
        async with httpx.AsyncClient(base_url=base_url(layout), timeout=20,
                                     headers={"authorization": f"Bearer {token}"}) as client:
            async def up() -> httpx.Response | None:
                try:
                    return await client.get("/api/openapi.json")
                except httpx.TransportError:
                    return None

            await eventually(up, timeout=30)
            for change, field in (({"mentor_name": LONG_NAME}, "mentor_name"),
                                  ({"mentee_handle": "Ma\u202eple"}, "mentee_handle"),
                                  ({"mentor_nickname": "Bob\x00by"}, "mentor_nickname"),
                                  ({"end_date": "9999-12-31"}, "end_date"),
                                  ({"policy": "../policies/adult-professional"}, "policy")):
                refused = await client.post("/api/pairs", json={**API_PAIR, **change})
                assert refused.status_code == 422, (change, refused.text)
                assert refused.json()["errors"][0]["field"] == field, (change, refused.text)
    finally:
        await asyncio.to_thread(process.terminate)
    assert count_pairs(layout) == 0


API_PAIR = {"program": "stem", "mentor_email": "robert@uni.example.net", "mentor_name": "Robert Smithson",
            "mentor_handle": "Oak", "mentee_email": "alice@school.example.org", "mentee_name": "Alice Walker",
            "mentee_handle": "Maple"}


# ----------------------------------------------------------------------- what the bounds must still take


def test_real_values_the_bounds_must_take(offline_layout: Layout, tmp_path: Path) -> None:
    """The bounds refuse what no real value is: policies named with a dot or in another language, a
    retention of 25 years, a long Arabic name of generations, a title in a nickname, a name carrying the
    invisible direction mark a right-to-left keyboard types (dropped), and a CSV whose file name is not
    UTF-8 (an old Latin-1 share)."""
    import os
    import shutil

    import yaml

    layout = offline_layout
    for name in ("youth-strict.v2", "jóvenes"):
        shutil.copy(REPO / "policies" / "adult-professional.yaml", layout.root / "policies" / f"{name}.yaml")
    program = layout.root / "programs" / "stem.yaml"
    data = yaml.safe_load(program.read_text())
    data.update(policy="jóvenes", retention={"after_close": "365d", "after_concern": "9125d"})
    program.write_text(yaml.safe_dump(data, allow_unicode=True))
    checked = cli(layout, "check-config")
    assert checked.returncode == 0, checked.stderr

    arabic = "عبد الرحمن بن محمد بن عبد الله بن إبراهيم بن عبد العزيز الحسيني"
    assert len(arabic.split()) == 13
    created = cli(layout, *pair_create(layout, "--mentee-name", arabic), "--policy", "youth-strict.v2",
                  "--mentor-nickname", "Dr. María José García Ruiz")
    assert created.returncode == 0, created.stderr

    rows = [HEADER, "ana@uni.example.net,Ana Paz,Ash,dav@school.example.org,\u200fדוד כהן,Ivy,,,",
            "sam@uni.example.net,Sam Roe,Elm,sara@school.example.org,سارة\u061c,Yew,,,"]
    latin1 = os.fsdecode(str(tmp_path).encode() + b"/cohorte-espa\xf1a.csv")
    Path(latin1).write_text("\n".join(rows) + "\n", encoding="utf-8")
    imported = cli(layout, "pair", "import", "--program", "stem", latin1)
    assert imported.returncode == 0, imported.stderr
    listed = json.loads(cli(layout, "pair", "list", "--json").stdout)
    names = {member["name"] for pair in listed for member in (pair["mentor"], pair["mentee"])}
    assert {"דוד כהן", "سارة", arabic} <= names, names
