"""How long from the 250 of an urgent message to the safeguarding lead's alert arriving, against the routine
"waiting for review" notice of a held message in the same run.

    .venv/bin/python bench/urgent_alert.py [--messages 20]

`mentor-relay serve` runs as a subprocess on a throw-away config: the shipped youth-strict policy, a program
with a safeguarding lead, and the delivery and sweep settings left at their defaults (delivery poll_interval
2 s, the hold and safeguarding sweeps every 60 s); it delivers over SMTP to an aiosmtpd sink in this
process, and asks the tests' DNS server on loopback for sender authentication. One mentee then writes,
one message at a time: first N routine messages (held: every message is reviewed; the baseline is the time
from the 250 to the sender's "waiting for review" notice in the sink), then N disclosures (held as urgent:
the time from the 250 to the lead's URGENT alert in the sink). Both notices are queued in the commit that
answers 250, so neither waits for a sweep. The last line is `urgent alert / routine notice ratio: X.XX`
(median against median; the goal for the alert alone is well under 60 s).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.safeguarding_kit import LEAD, use_shipped_policy
from tests.support import MENTEE, Layout, ServeProcess, Sink, create_pair, free_port, send, simple_message

WAIT = 120.0  # seconds: the longest the bench waits for one notice


def default_delivery(layout: Layout) -> None:
    """The test layout's fast poll and retry settings removed: the relay's defaults apply."""
    config = yaml.safe_load(layout.config.read_text())
    for key in ("poll_interval", "retry_schedule"):
        config["delivery"].pop(key, None)
    layout.config.write_text(yaml.safe_dump(config))


async def _arrival(sink: Sink, predicate, since: int) -> float:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        for received in sink.received[since:]:
            if predicate(received):
                return time.perf_counter()
        await asyncio.sleep(0.002)
    raise SystemExit("a notice did not arrive within the bench's limit")


async def _one(layout: Layout, sink: Sink, pair: dict[str, str], body: str, index: int, urgent: bool) -> float:
    own_id = f"<bench-{'u' if urgent else 'r'}{index}@client.example>"
    raw = simple_message(f"{MENTEE['name']} <{MENTEE['email']}>", pair["mentor_alias"], f"Week {index}", body,
                         message_id=own_id)
    since = len(sink.received)
    code, reply = await send(layout.smtp_port, raw, MENTEE["email"], pair["mentor_alias"])
    answered = time.perf_counter()
    if code != 250:
        raise SystemExit(f"refused: {code} {reply}")
    queue_id = reply.rsplit(" ", 1)[-1]
    if urgent:
        arrived = await _arrival(sink, lambda r: r.rcpt_tos == [LEAD] and f"/held/{queue_id}".encode() in r.raw,
                                 since)
    else:
        arrived = await _arrival(sink, lambda r: r.rcpt_tos == [MENTEE["email"]]
                                 and r.message["In-Reply-To"] == own_id, since)
    return arrived - answered


def _describe(name: str, seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    return (f"{name:34} median {statistics.median(ms):8.1f} ms   max {ms[-1]:8.1f} ms   "
            f"(n={len(ms)})")


async def main(messages: int) -> int:
    sink = await Sink().start()
    root = Path(tempfile.mkdtemp(prefix="urgent-alert-")) / "relay"
    layout = Layout(root=root, smtp_port=free_port(), sink_port=sink.port)
    layout.write()
    use_shipped_policy(layout)
    default_delivery(layout)
    pair = await asyncio.to_thread(create_pair, layout)
    relay = ServeProcess(layout, root / "serve.log").start()
    try:
        print(f"load average before the run: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        routine = [await _one(layout, sink, pair, f"Here is my plan for week {i}.", i, False)
                   for i in range(messages)]
        urgent = [await _one(layout, sink, pair, f"I feel unsafe at home and think about self-harm ({i}).", i, True)
                  for i in range(messages)]
    finally:
        relay.terminate()
        await sink.stop()
    print(_describe("routine: 250 -> sender's notice", routine))
    print(_describe("urgent:  250 -> lead's URGENT alert", urgent))
    print(f"urgent alert / routine notice ratio: {statistics.median(urgent) / statistics.median(routine):.2f}")
    return 0 if max(urgent) < 60 else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20)
    sys.exit(asyncio.run(main(parser.parse_args().messages)))
