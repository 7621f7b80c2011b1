"""What text of unknown charset costs to prepare (anonymise, inspect, rules, redact, serialise: relay/workers/
tasks.prepare_message, in-process), against the same text sent as ordinary UTF-8, in the same process.

A part whose bytes name no charset and are not UTF-8 is read in every legacy charset that decodes them
(relay/anonymize/readings.py): the reading the partner gets is chosen, and the rules read all of them. Printed:
milliseconds of CPU (time.process_time, the median of --rounds) for a short child's message and a 2 KB one
in Arabic, Russian and French, each as UTF-8 and undeclared in Windows-1256 / KOI8-R / Windows-1252; and a
large undeclared message (--large KB), whose readings are bounded (64 KiB a part, 256 KiB a message). The
last lines are the ratios undeclared / UTF-8.

Usage: .venv/bin/python bench/charset_cost.py [--policy supervised] [--rounds 30] [--large 400]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rules_cost import job

from relay.moderation.policy import PolicyBook
from relay.workers import tasks

REPO = Path(__file__).resolve().parent.parent
TEXTS = {
    "ar": ("cp1256", "مرحبا، هل يمكننا أن نلتقي يوم الثلاثاء لمراجعة الواجب؟ شكرا جزيلا.\n"),
    "ru": ("koi8-r", "Привет! Можно встретиться во вторник и разобрать задачу? Спасибо большое.\n"),
    "fr": ("cp1252", "Bonjour ! Est-ce qu'on peut se voir mardi pour le devoir ? Ça m'aiderait beaucoup.\n"),
}


def message(text: str, charset: str | None) -> bytes:
    declared = "; charset=utf-8" if charset is None else ""
    body = text.encode(charset or "utf-8")
    return (f"From: Jane Doe <jane.doe@example.org>\r\nTo: oak.m1@relay.example\r\nSubject: homework\r\n"
            f"Message-ID: <cost@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain{declared}\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n").encode() + body


def cost(environment: tasks.Environment, work: tasks.PrepareJob, raw: bytes, rounds: int) -> float:
    """Median CPU milliseconds of preparing `raw`."""
    spent = []
    for _ in range(rounds):
        started = time.process_time()
        tasks.in_process(environment, tasks.prepare_message, raw, work)
        spent.append(time.process_time() - started)
    return statistics.median(spent) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default="supervised")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--large", type=int, default=400, help="kilobytes of the large undeclared message")
    args = parser.parse_args()
    environment = tasks.Environment(PolicyBook(REPO / "policies"), None)
    work = job(args.policy)
    tasks.in_process(environment, tasks.prepare_message, message("warm up", None), work)
    ratios = []
    for language, (charset, line) in TEXTS.items():
        for label, text in (("short", line), ("2 KB", line * max(1, 2000 // len(line.encode())))):
            utf8 = cost(environment, work, message(text, None), args.rounds)
            legacy = cost(environment, work, message(text, charset), args.rounds)
            ratios.append((f"{language} {label}", legacy / utf8))
            print(f"{language} {label:5}: UTF-8 {utf8:6.2f} ms, undeclared {charset:6} {legacy:6.2f} ms")
    charset, line = TEXTS["ru"]
    text = line * (args.large * 1000 // len(line.encode("koi8-r")))
    utf8 = cost(environment, work, message(text, None), 3)
    legacy = cost(environment, work, message(text, charset), 3)
    ratios.append((f"ru {args.large} KB", legacy / utf8))
    print(f"ru {args.large} KB: UTF-8 {utf8:7.1f} ms, undeclared koi8-r {legacy:7.1f} ms")
    for label, ratio in ratios:
        print(f"undeclared/UTF-8 CPU ratio, {label}: {ratio:.2f}")


if __name__ == "__main__":
    main()
