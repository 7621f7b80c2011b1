"""Rules cost against message size: is preparing a message (anonymise, inspect, the policy's rules, redact,
serialise: relay/workers/tasks.prepare_message, as a worker runs it) linear in the size of its text?

The text is the worst ordinary case the issue met: plain text full of addresses and phone numbers (each line
"Write to me at someone.else@example.org or call Ms Example on 555-0100, please."), from a member named
Jane Doe, under a shipped policy (default adult-professional). Printed: CPU seconds (time.process_time) for
100 KB, 400 KB and 1.6 MB of such text, and the ratios against 100 KB; linear work gives about 4 and 16.
Before the contact rule resolved its overlapping hits by bisect, 1.6 MB took about 62 s (ratio far above 16).

Usage: .venv/bin/python bench/rules_cost.py [--policy adult-professional] [--sizes 100,400,1600]
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from pathlib import Path

from relay.anonymize.scrub import Identity
from relay.moderation.inspection import PairStats
from relay.moderation.policy import PolicyBook
from relay.workers import tasks

REPO = Path(__file__).resolve().parent.parent
LINE = "Write to me at someone.else@example.org or call Ms Example on 555-0100, please.\n"
DOMAIN = "relay.example"


def message(kilobytes: int) -> bytes:
    body = LINE * max(1, kilobytes * 1000 // len(LINE))
    return ("From: Jane Doe <jane.doe@example.org>\r\nTo: oak.m1@relay.example\r\nSubject: Contact details\r\n"
            "Message-ID: <cost@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "\r\n" + body).encode()


def job(policy: str) -> tasks.PrepareJob:
    sender = Identity("jane.doe@example.org", "Jane Doe", f"oak.m1@{DOMAIN}", "Oak")
    recipient = Identity("sam.rare@example.net", "Samwell Quist", f"elm.m2@{DOMAIN}", "Elm")
    context = {"sender_role": "mentor", "sender_email": sender.email, "sender_name": sender.name,
               "recipient_email": recipient.email, "recipient_name": recipient.name, "sender_nicknames": (),
               "recipient_nicknames": (), "region": "US", "domain": DOMAIN,
               "aliases": (sender.alias_address, recipient.alias_address), "stats": PairStats(5, 1)}
    return tasks.PrepareJob(sender=sender, recipient=recipient, thread_map={}, new_message_id=f"<n@{DOMAIN}>",
                            now=datetime(2026, 11, 4, 9, 0, tzinfo=UTC), domain=DOMAIN, policy=policy,
                            context=context)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default="adult-professional")
    parser.add_argument("--sizes", default="100,400,1600", help="kilobytes of text, comma-separated")
    args = parser.parse_args()
    environment = tasks.Environment(PolicyBook(REPO / "policies"), None)
    work = job(args.policy)
    tasks.in_process(environment, tasks.prepare_message, message(5), work)  # warm-up: tries, word lists, patterns
    sizes = [int(s) for s in args.sizes.split(",")]
    costs: list[float] = []
    for kilobytes in sizes:
        raw = message(kilobytes)
        started = time.process_time()
        prepared = tasks.in_process(environment, tasks.prepare_message, raw, work)
        costs.append(time.process_time() - started)
        print(f"{len(raw) / 1e6:6.2f} MB: {costs[-1]:7.2f} s CPU, decision {prepared.decision.action}, "
              f"{len(prepared.decision.reasons)} findings")
    for kilobytes, cost in zip(sizes[1:], costs[1:], strict=True):
        print(f"CPU ratio {kilobytes} KB / {sizes[0]} KB: {cost / costs[0]:.1f} "
              f"(linear: {kilobytes / sizes[0]:.0f})")


if __name__ == "__main__":
    main()
