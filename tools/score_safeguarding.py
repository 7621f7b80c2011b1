"""Score a policy's urgent lists against the labelled safeguarding set: hits, misses and false alarms.

A row labelled urgent (its "urgent" names kinds) is a hit when the policy finds any urgent sign in it and a
miss when it finds none; a row labelled not urgent is a false alarm when the policy finds one. "exact"
counts the hits whose urgent kinds are the labelled ones. Per language, then in total:

    .venv/bin/python tools/score_safeguarding.py [--policy policies/youth-strict.yaml]
                                                 [--labelled tests/data/safeguarding_labelled.jsonl] [-v]

-v lists every miss and false alarm. Nothing is written; the exit status is 0.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from relay.moderation import decide
from relay.moderation.inspection import Inspection
from relay.moderation.policy import parse_policy

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", type=Path, default=REPO / "policies" / "youth-strict.yaml")
    parser.add_argument("--labelled", type=Path, default=REPO / "tests" / "data" / "safeguarding_labelled.jsonl")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    policy = parse_policy(args.policy)
    counts: dict[str, Counter[str]] = {}
    for line in args.labelled.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        decision = decide(policy, Inspection(text=row["text"], subject=""))
        found = sorted({r.finding.kind for r in decision.reasons if r.severity == "urgent"})
        tally = counts.setdefault(row["lang"], Counter())
        if row["urgent"]:
            outcome = "hit" if found else "miss"
            tally["exact"] += found == sorted(row["urgent"])
        else:
            outcome = "false alarm" if found else "quiet"
        tally[outcome] += 1
        if args.verbose and outcome in ("miss", "false alarm"):
            print(f"{outcome:11} {row['lang']:3} {found or row['urgent']} | {row['text']}")
    total: Counter[str] = Counter()
    print(f"{'lang':8} {'urgent rows':>11} {'hits':>5} {'exact':>5} {'misses':>6} {'quiet':>5} {'false alarms':>12}")
    for language, tally in [*sorted(counts.items()), ("all", total)]:
        if language != "all":
            total.update(tally)
        print(f"{language:8} {tally['hit'] + tally['miss']:>11} {tally['hit']:>5} {tally['exact']:>5} "
              f"{tally['miss']:>6} {tally['quiet']:>5} {tally['false alarm']:>12}")


if __name__ == "__main__":
    main()
