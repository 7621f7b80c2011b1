"""Fan-out benchmark: a message to a group of 30 through `serve`, against a pair message in the same run.

What it measures (one relay, `python -m relay serve` with its worker processes, delivering over SMTP to a
counting aiosmtpd sink in another subprocess; CPU is the relay's and its worker processes'; the helpers
and the relay's config come from bench/throughput.py):
  1. Baseline: N messages from a mentee to her mentor's pair alias, sent one after the other; for each,
     the time from MAIL until the sink holds its one copy, and the relay's CPU time over the N.
  2. Group: N messages from the same mentee to a group of 30 (one mentor, 29 mentees, all enrolled in
     process before the relay starts), one after the other; for each, the time from MAIL until the sink
     holds all 29 copies, and the relay's CPU time over the N, per message and per copy.
Three pair messages go first to warm the relay up (worker processes, caches); they are not counted.
The last lines: `group/pair time-to-delivered ratio: X.XX` and `group copy/pair message CPU ratio: X.XX`.

Usage: .venv/bin/python bench/fanout.py [--messages 10] [--members 30]
Exit status 1 if a message was refused or copies are missing (the figures are printed all the same).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import throughput as tp

FIRST = ["Alex", "Bianca", "Carlos", "Dana", "Emeka", "Farah", "Goran", "Hana", "Ivan", "Jun", "Kwame", "Lucia",
         "Mateo", "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Sami", "Tariq", "Uma", "Viktor", "Wen", "Ximena",
         "Yusuf", "Zara", "Anika", "Bruno", "Chloe", "Diego"]
LAST = ["Okafor", "Lindqvist", "Moreau", "Tanaka", "Haddad", "Novak", "Ferreira", "Kowalski", "Mensah", "Ortiz"]
HANDLES = ["Alder", "Beech", "Cedar", "Dogwood", "Elm", "Fir", "Ginkgo", "Hazel", "Ironwood", "Juniper", "Kapok",
           "Larch", "Magnolia", "Nutmeg", "Olive", "Palm", "Quince", "Rowan", "Spruce", "Teak", "Ulmus", "Vine",
           "Walnut", "Xylem", "Yew", "Zelkova", "Acacia", "Baobab", "Cypress", "Dracaena"]


def make_group(config: Path, members: int) -> str:
    """A group of `members` (the pair's mentor and mentee among them), enrolled in process; its alias."""
    from relay.cli.common import with_store
    from relay.clock import SystemClock
    from relay.config import load_settings
    from relay.enrol import Person
    from relay.groups import add_member, create_group

    settings = load_settings(config)

    async def work(engine: Any) -> str:
        clock = SystemClock()
        group = await create_group(settings, engine, clock, program_id="stem", name="Bench group")
        people = [("mentor", Person(tp.MENTOR["email"], tp.MENTOR["name"], tp.MENTOR["handle"])),
                  ("mentee", Person(tp.MENTEE["email"], tp.MENTEE["name"], tp.MENTEE["handle"]))]
        for index in range(members - 2):
            first, last = FIRST[index % len(FIRST)], LAST[index % len(LAST)]
            people.append(("mentee", Person(f"{first.lower()}.{last.lower()}{index}@mail.example.org",
                                            f"{first} {last}", HANDLES[index % len(HANDLES)])))
        for role, person in people:
            await add_member(settings, engine, clock, group.id, role=role, person=person)
        return group.alias_address(settings.relay.domain) or ""

    return str(asyncio.run(with_store(settings, work)))


def distinct(messages: list[tp.Mail], tag: bytes) -> list[tp.Mail]:
    """Message-IDs of their own: the warm-up's would otherwise repeat, and the relay drops a resend."""
    return [(raw.replace(b"Message-ID: <bench.", b"Message-ID: <bench-" + tag + b".", 1), sender, rcpt)
            for raw, sender, rcpt in messages]


async def send_one(port: int, mail: tp.Mail) -> bool:
    raw, sender, rcpt = mail
    client = await tp.open_session(port)
    try:
        await client.sendmail(sender, [rcpt], raw)
        return True
    except Exception as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return False
    finally:
        await tp.close_session(client)


def timed_phase(relay: tp.Child, sink: tp.Child, workdir: Path, port: int, messages: Sequence[tp.Mail],
                copies: int, timeout: float) -> tuple[list[float], float | None, int]:
    """Send each message, wait until the sink has its `copies`; returns the waits, CPU seconds, failures."""
    waits: list[float] = []
    failures = 0
    cpu_before = relay.tree_cpu_seconds()
    for mail in messages:
        expected = tp.sink_status(workdir)["count"] + copies
        began = time.perf_counter()
        if not asyncio.run(send_one(port, mail)):
            failures += 1
            continue
        try:
            tp.wait_until(lambda e=expected: tp.sink_status(workdir)["count"] >= e, [relay, sink], timeout,
                          f"{copies} copies at the sink")
        except RuntimeError as exc:
            print(str(exc).splitlines()[0], file=sys.stderr)
            failures += 1
            continue
        waits.append(time.perf_counter() - began)
    cpu_after = relay.tree_cpu_seconds()
    return waits, None if cpu_before is None or cpu_after is None else cpu_after - cpu_before, failures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10)
    parser.add_argument("--members", type=int, default=30)
    parser.add_argument("--policy", default="adult-professional", help="as bench/throughput.py's --policy")
    parser.add_argument("--dkim", choices=("rsa", "ed25519", "off"), default="rsa",
                        help="as bench/throughput.py's --dkim")
    args = parser.parse_args(argv)
    copies = args.members - 1
    load = os.getloadavg()[0]
    children: list[tp.Child] = []
    with tempfile.TemporaryDirectory(prefix="mentor-relay-fanout-") as temp:
        workdir = Path(temp)
        with tp.stopped_at_the_end(children):
            sink, sink_port = tp.start_helper("sink", workdir, children)
            _dns, dns_port = tp.start_helper("dns", workdir, children)
            config = tp.write_relay_config(workdir / "relay", sink_port, dns_port, args.policy, args.dkim)
            program_file = config.parent / "programs" / "stem.yaml"
            program = yaml.safe_load(program_file.read_text())
            program["welcome"] = False  # the sink counts copies only
            program_file.write_text(yaml.safe_dump(program))
            (pair,) = tp.enrol_pairs(config, 1)
            group = tp.Pair(tp.MENTEE["email"], tp.MENTEE["name"], make_group(config, args.members))
            relay, port = tp.start_relay(config, workdir, children)
            warm = tp.build_messages(3, [pair])
            timed_phase(relay, sink, workdir, port, warm, 1, 120.0)
            pair_messages = distinct(tp.build_messages(args.messages, [pair]), b"pair")
            group_messages = distinct(tp.build_messages(args.messages, [group]), b"group")
            pair_waits, pair_cpu, pair_failed = timed_phase(relay, sink, workdir, port, pair_messages, 1, 120.0)
            group_waits, group_cpu, group_failed = timed_phase(relay, sink, workdir, port, group_messages,
                                                               copies, 300.0)
            problems, first = tp.relay_log_problems(relay.log)
            if os.environ.get("FANOUT_LOG"):
                print(relay.tail(60), file=sys.stderr)
    n = args.messages
    print(f"fan-out bench: {n} pair messages, then {n} messages to a group of {args.members} ({copies} copies each); "
          f"load average {load:.2f}, {os.cpu_count()} CPUs")
    pair_median = statistics.median(pair_waits) if pair_waits else None
    group_median = statistics.median(group_waits) if group_waits else None
    print(f"pair message : time to delivered median {tp.fmt(pair_median, '.1f', 1000)} ms, "
          f"max {tp.fmt(max(pair_waits, default=None), '.1f', 1000)} ms; "
          f"relay CPU {tp.fmt(pair_cpu / n if pair_cpu is not None else None, '.1f', 1000)} ms per message")
    per_group = group_cpu / n if group_cpu is not None else None
    per_copy = per_group / copies if per_group is not None else None
    print(f"group message: time to all {copies} delivered median {tp.fmt(group_median, '.1f', 1000)} ms, "
          f"max {tp.fmt(max(group_waits, default=None), '.1f', 1000)} ms; "
          f"relay CPU {tp.fmt(per_group, '.1f', 1000)} ms per message, {tp.fmt(per_copy, '.2f', 1000)} ms per copy")
    if problems:
        print(f"relay log has {problems} warning/refusal lines, first ones:", *first, sep="\n  ")
    if pair_median and group_median:
        print(f"group/pair time-to-delivered ratio: {group_median / pair_median:.2f}")
    if pair_cpu and per_copy is not None:
        print(f"group copy/pair message CPU ratio: {per_copy / (pair_cpu / n):.2f}")
    return 0 if not pair_failed and not group_failed else 1


if __name__ == "__main__":
    sys.exit(main())
