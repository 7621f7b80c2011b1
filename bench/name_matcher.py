"""What one member's name costs the name matcher (relay/anonymize/names.py): the time to build the matcher
for a very long name (as a store may hold one: enrolment refuses such names now) and to search a message
with it, against the same for an ordinary name, in the same process.

    .venv/bin/python bench/name_matcher.py [--words 200] [--letters 5000] [--rounds 3]

Prints the median seconds for each name and the last line `long/ordinary name cost ratio: X.X`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parent.parent))

from relay.anonymize.names import NameMatcher, Person

TEXT = "Thanks for the notes on my essay, see you on Thursday!\n" * 40


def cost(name: str, rounds: int) -> float:
    """The median seconds to build a matcher for `name` and search TEXT with it."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        NameMatcher([Person("member@school.example", name)]).find(TEXT)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=200, help="words in the long name (default 200)")
    parser.add_argument("--letters", type=int, default=5000, help="letters of the long first name (default 5000)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    ordinary = cost("Siobhan O'Brien-Ivanova", args.rounds)
    many = cost(" ".join(f"Word{i}x" for i in range(args.words)), args.rounds)
    long = cost("A" * args.letters + " Doe", args.rounds)
    print(f"ordinary name: {ordinary * 1000:.1f} ms")
    print(f"{args.words}-word name: {many * 1000:.1f} ms")
    print(f"{args.letters}-letter first name: {long * 1000:.1f} ms")
    print(f"long/ordinary name cost ratio: {max(many, long) / ordinary:.1f}")


if __name__ == "__main__":
    main()
