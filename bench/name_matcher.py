"""What one member's name costs the name matcher (relay/anonymize/names.py): the time to build the matcher
for a very long name (as a store may hold one: enrolment refuses such names now) and to search a message
with it, against the same for an ordinary name, in the same process. Then what the program's other participants
cost a pair's message (their names are scrubbed too: relay.communities.read_bystanders): scrubbing a message
for its two members alone, against the two members and N others (--others), the matcher built (cold: a new
conversation, or one whose enrolment changed) and cached (every later message), and with one expression over
everyone (what relay/anonymize/names.SievedMatcher avoids). 12 others: a mentor with a group and a few pairs (a
pair's or a group's bystanders are the members of the sender's other conversations); 300: a community (everyone
enrolled in the sender's programs).

    .venv/bin/python bench/name_matcher.py [--words 200] [--letters 5000] [--rounds 3] [--others 12,300]

Prints the median seconds for each and the last line `long/ordinary name cost ratio: X.X`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parent.parent))

from relay.anonymize import names
from relay.anonymize.names import NameMatcher, Person
from relay.anonymize.scrub import Identity, Scrubber

TEXT = "Thanks for the notes on my essay, see you on Thursday!\n" * 40
# A pair's message: ordinary words that are also given names (will, hope, may, grace), and one other
# participant of the program named.
MESSAGE = ("Hi Jane, thanks for the notes on my essay. I will send the draft on Thursday and I hope we can talk about "
           "the robot. May I ask whether Grace Okafor from the other pair could join us? Mark the date!\n") * 10
FIRST = ["Amara", "Zoe", "Liam", "Noah", "Olivia", "Emma", "Sophia", "Lucas", "Mateo", "Chloe", "Priya", "Arjun",
         "Kenji", "Fatima", "Omar", "Ines", "Freya", "Tomasz", "Dmitri", "Siobhan", "Will", "Rose", "Grace", "Hope",
         "Mark", "Jack", "May", "Joy", "Frank", "José", "Théodora", "Jürgen"]
LAST = ["Okafor", "Quinlan", "Smith", "Garcia", "Nguyen", "Kowalski", "Ivanova", "O'Brien", "Mueller", "Rossi",
        "Tanaka", "Haddad", "Hansen", "Silva", "Patel", "Brown", "Young", "King", "Wood", "Green", "Stone", "Hill"]


def cost(name: str, rounds: int) -> float:
    """The median seconds to build a matcher for `name` and search TEXT with it."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        NameMatcher([Person("member@school.example", name)]).find(TEXT)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def others(count: int) -> list[Identity]:
    """`count` participants with names made of common given names and family names."""
    made = []
    for n in range(count):
        first, last = FIRST[n % len(FIRST)], LAST[(n // len(FIRST) + n) % len(LAST)]
        local = f"{first}.{last}{n}".lower().replace("'", "")
        made.append(Identity(email=f"{local}@mail{n % 9}.example.org", name=f"{first} {last}",
                             alias_address=f"h{n}@relay.example", handle=f"Handle{n}"))
    return made


def scrub_cost(people: list[Identity], rounds: int) -> tuple[float, float]:
    """Seconds to scrub MESSAGE for `people`: the first time (matcher built) and the median of later ones."""
    names.matcher_for.cache_clear()
    names._plain_matcher.cache_clear()
    names._keys.cache_clear()
    start = time.perf_counter()
    Scrubber(people).text(MESSAGE)
    cold = time.perf_counter() - start
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        Scrubber(people).text(MESSAGE)
        times.append(time.perf_counter() - start)
    return cold, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=200, help="words in the long name (default 200)")
    parser.add_argument("--letters", type=int, default=5000, help="letters of the long first name (default 5000)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--others", default="12,300",
                        help="sizes of the set of other people, comma-separated (default 12,300)")
    args = parser.parse_args()
    members = [Identity("jane.doe@mail.example.org", "Jane Doe", "maple@relay.example", "Maple"),
               Identity("jose.mueller@uni.example.net", "José Müller", "oak@relay.example", "Oak")]
    scrub_cost(others(3), 1)  # what every first use loads (word lists, fold tables), out of the figures
    alone_cold, alone = scrub_cost(members, args.rounds * 5)
    print(f"a pair's message ({len(MESSAGE)} characters), scrubbed for its 2 members: {alone * 1000:.2f} ms "
          f"({alone_cold * 1000:.1f} ms with the matcher built)")
    ratio = 0.0
    for count in (int(n) for n in args.others.split(",")):
        everyone = members + others(count)
        with_cold, with_others = scrub_cost(everyone, args.rounds * 5)
        start = time.perf_counter()
        NameMatcher([Person(p.email, p.name) for p in everyone]).find(MESSAGE)
        one_expression = time.perf_counter() - start
        print(f"... for its 2 members and {count} others: {with_others * 1000:.2f} ms "
              f"({with_cold * 1000:.1f} ms with the matcher built); one expression over all {len(everyone)}, "
              f"one search: {one_expression * 1000:.0f} ms")
        ratio = with_others / alone
    print(f"largest others/members alone scrub cost ratio: {ratio:.1f}")
    ordinary = cost("Siobhan O'Brien-Ivanova", args.rounds)
    many = cost(" ".join(f"Word{i}x" for i in range(args.words)), args.rounds)
    long = cost("A" * args.letters + " Doe", args.rounds)
    print(f"ordinary name: {ordinary * 1000:.1f} ms")
    print(f"{args.words}-word name: {many * 1000:.1f} ms")
    print(f"{args.letters}-letter first name: {long * 1000:.1f} ms")
    print(f"long/ordinary name cost ratio: {max(many, long) / ordinary:.1f}")


if __name__ == "__main__":
    main()
