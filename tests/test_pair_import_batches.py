"""`pair import` writes its pairs in short batches, so that a relay serving on the same store keeps accepting
mail meanwhile, and an import that stops part-way (Ctrl-C, a crash) is finished by importing the file again.

10,000 rows used to be written in one transaction that held the store's only write lock for minutes: a
mentee's disclosure sent meanwhile got 451 after 15 s, and reached nobody until the sender's server retried.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from relay.config import load_settings
from relay.service import Relay
from relay.store.schema import members, outbound, pairs
from tests.nudging import write_program
from tests.support import (
    MENTEE,
    REPO,
    Layout,
    Sink,
    acli,
    acreate_pair,
    eventually,
    rows,
    send,
    simple_message,
)

HEADER = "mentor_email,mentor_name,mentor_handle,mentee_email,mentee_name,mentee_handle"
ROWS = 400
BATCH = 10


def cohort(path: Path, count: int = ROWS) -> Path:
    lines = [HEADER] + [f"mentor{i}@uni.example.net,Robert Smithson{i},Oak{i},mentee{i}@school.example.org,"
                        f"Alice Walker{i},Maple{i}" for i in range(count)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def imported_pairs(layout: Layout) -> int:
    """Pairs of the cohort (their mentors are mentor<N>@) in the store."""
    found = await rows(layout, select(func.count()).select_from(members).where(
        members.c.role == "mentor", members.c.email.like("mentor%@uni.example.net")))
    return int(found[0][0])


async def partly_imported(layout: Layout) -> int:
    """Some but not all of the cohort's pairs are in the store (0 otherwise): the import is under way, and what
    it wrote so far is committed."""
    count = await imported_pairs(layout)
    return count if 0 < count < ROWS else 0


async def test_a_message_sent_during_a_large_import_is_accepted(layout: Layout, sink: Sink, tmp_path: Path) -> None:
    write_program(layout, welcome=True)
    pair = await acreate_pair(layout)
    file = cohort(tmp_path / "cohort.csv")
    relay = Relay(load_settings(layout.config))
    await relay.start()
    try:
        importing = asyncio.create_task(acli(layout, "pair", "import", "--program", "stem", str(file), "--batch",
                                             str(BATCH), "--json", timeout=300))
        await eventually(lambda: partly_imported(layout), timeout=60, interval=0.02)  # batches are committed
        disclosure = simple_message(MENTEE["email"], pair["mentor_alias"], "help", "I want to die")
        code, reply = await asyncio.wait_for(send(layout.smtp_port, disclosure, MENTEE["email"],
                                                  pair["mentor_alias"]), 60)
        assert code == 250, reply
        result = await asyncio.wait_for(importing, 300)
    finally:
        await relay.stop()
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["created"] == ROWS and data["skipped"] == 0 and "interrupted" not in data
    assert await imported_pairs(layout) == ROWS
    welcomes = await rows(layout, select(func.count()).select_from(outbound).where(
        outbound.c.kind == "notice", outbound.c.rcpt.like("mentee%@school.example.org")))
    assert welcomes[0][0] == ROWS


def start_import(layout: Layout, file: Path) -> subprocess.Popen[str]:
    """The real command line, as a process of its own (so that the test can signal it)."""
    return subprocess.Popen(
        [sys.executable, "-m", "relay", "--config", str(layout.config), "pair", "import", "--program", "stem",
         str(file), "--batch", str(BATCH)],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGKILL], ids=["interrupted", "killed"])
async def test_an_import_stopped_part_way_is_finished_by_importing_the_file_again(
        layout: Layout, tmp_path: Path, stop: signal.Signals) -> None:
    """Ctrl-C ends the import after the batch under way and says how many pairs were written; a kill (a crash,
    the machine going down) leaves whole batches. Either way the same file imported again writes the rest: every
    row once, each pair with its two welcomes, none twice."""
    write_program(layout, welcome=True)
    file = cohort(tmp_path / "cohort.csv")
    assert (await acli(layout, "pair", "list")).returncode == 0  # the store made, for the test to watch
    process = start_import(layout, file)
    try:
        await eventually(lambda: partly_imported(layout), timeout=60, interval=0.02)
        process.send_signal(stop)
        out, err = await asyncio.to_thread(process.communicate, timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
    written = await imported_pairs(layout)
    assert 0 < written < ROWS
    if stop == signal.SIGINT:
        assert process.returncode == 130, err
        assert "Traceback" not in err
        said = re.search(r"interrupted: (\d+) pairs were written before it stopped \(lines 2-(\d+)\), (\d+) not; "
                         r"import the same file again to write the rest", err)
        assert said is not None, err
        assert int(said.group(1)) == written and int(said.group(2)) == written + 1
        assert int(said.group(3)) == ROWS - written
        assert written % BATCH == 0  # whole batches
        assert f"created {written} pairs, skipped 0" in out
    again = await acli(layout, "pair", "import", "--program", "stem", str(file), "--json", timeout=300)
    assert again.returncode == 0, again.stderr
    data = json.loads(again.stdout)
    assert data["created"] == ROWS - written and data["skipped"] == written
    assert await imported_pairs(layout) == ROWS
    twice = await rows(layout, select(members.c.email).where(members.c.role == "mentor")
                       .group_by(members.c.email).having(func.count() > 1))
    assert twice == []
    per_pair = await rows(layout, select(outbound.c.pair_id, func.count()).where(outbound.c.kind == "notice")
                          .group_by(outbound.c.pair_id))
    assert len(per_pair) == ROWS and {count for _, count in per_pair} == {2}  # both welcomes, once
    assert (await rows(layout, select(func.count()).select_from(pairs)))[0][0] == ROWS
    verified = await acli(layout, "archive", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
