"""Is every step that reads a message's text linear in its size, whatever the text's shape?

A message is read by the contact rule's detectors (relay/moderation/rules/contact_info.py), the keywords lists of
the shipped policies, the identity rule, the scrub of plain text and HTML (relay/anonymize/scrub.py, names.py)
and the HTML reader (relay/anonymize/htmltext.py). A regular expression or a window that grows with the text can
make one of them quadratic on some shape of text only: a pasted table of GPS points, a long line without spaces,
a run of digits. Each shape below is repeated to two sizes (default 20 KB and 40 KB) and each step is timed on
it (CPU, time.process_time; a fast step is repeated until it has run for 50 ms). So are tables of values drawn
anew for each row (GPS points, a CSV of measurements, columns of decimals, maths homework, number codes), whose
two sizes are drawn with different seeds. Printed per shape and step:
the CPU per KB at each size and the ratio of the two times: about 2 for linear work (the sizes double), about 4
for quadratic. A ratio over 3 is marked SUPER-LINEAR; a step costing over 5 ms per KB is marked COSTLY (at that
rate the worker's default budget of 10 s of CPU is spent by 2 MB of such text). The last line counts both.

Usage: .venv/bin/python bench/rules_shapes.py [--sizes 20,40] [--shapes gps_table,one_digit] [--steps contact]
"""

from __future__ import annotations

import argparse
import html
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parent.parent))

from relay.anonymize.htmltext import view
from relay.anonymize.scrub import Identity, Scrubber
from relay.moderation import folding
from relay.moderation.inspection import Inspection
from relay.moderation.policy import PolicyBook
from relay.moderation.rules import contact_info, identity, keywords

REPO = Path(__file__).resolve().parent.parent

# name: (what comes first once, what is repeated to the size)
SHAPES: dict[str, tuple[str, str]] = {
    "gps_table": ("", "12.3456, 78.9 N 5° 1+2 "),  # the text of the issue
    "decimals": ("", "3.14159, 2.71828; 1.41421 "),
    "digits_punct": ("", "1.2,3 4.5, 6 7,8.9 "),
    "plus_degree": ("", "+°1+2°3+°"),
    "one_digit": ("", "7"),
    "phone_like": ("", "1 2 3 4 5 6 7 8 9 0 "),
    "digit_runs_no_space": ("", "1234567;"),
    "no_spaces": ("", "abc.def-ghi_jkl/Mno+pqr:"),
    "short_lines": ("", "a 1\n"),
    "at_dot": ("", "a@b.c@d.e."),
    "spaced_letters": ("", "a b c d e f g h i j k l m n o p @ "),
    "dot_words": ("", "jane dot "),
    "street_ru": ("", "ул. 5 "),
    "street_pl_no_space": ("", "ul.ul."),
    "title_case": ("", "Anna Bell Chris Dee "),
    "romance_street": ("", "Via Roma Calle Mayor "),
    "capitals_no_space": ("during ", "AbCdEfGhIj"),
    "lower_no_space": ("straat ", "abcdefghij"),
    "url_pieces": ("", "http://a//a/www."),
    "parentheses": ("", "(1(2(3"),
    "spoken_digits": ("", "one two three "),
    "name_words": ("", "i will send the rose, hope so. "),
    "html_tags": ("", "<b>x</b><i a='y'>"),
}




def _gps(rows: random.Random) -> str:
    return f"{rows.uniform(-90, 90):.4f}, {rows.uniform(-180, 180):.4f}\n"


def _csv(rows: random.Random) -> str:
    return (f"2026-03-{rows.randint(1, 28):02d},{rows.uniform(0, 2000):.3f},{rows.uniform(0, 100):.3f},"
            f"{rows.random():.4f}\n")


def _columns(rows: random.Random) -> str:
    return f"{rows.uniform(0, 100):.4f} {rows.uniform(0, 100):.4f} {rows.uniform(0, 1):.4f}\n"


def _homework(rows: random.Random) -> str:
    return (f"x = {rows.uniform(0, 99):.4f}, angle {rows.randint(0, 359)}° {rows.randint(0, 59)}', "
            f"{rows.randint(1, 9)}+{rows.randint(1, 9)} = {rows.uniform(0, 9):.4f} N {rows.randint(0, 9)}° "
            f"{rows.uniform(-90, 90):.4f} {rows.uniform(0, 9):.2f}\n")


def _codes(rows: random.Random) -> str:
    return f"{rows.randint(1000, 9999)} {rows.randint(1000, 9999)} {rows.randint(1000, 9999)}\n"


# name: what makes one row of an honest table, its values drawn anew for each row (a repeated text is cheaper: the
# phone matcher's answers for a window of text are cached)
TABLES: dict[str, Callable[[random.Random], str]] = {
    "gps_points": _gps, "csv_values": _csv, "value_columns": _columns, "homework": _homework, "number_codes": _codes,
}


def text_of(shape: str, kilobytes: int) -> str:
    size = kilobytes * 1000
    if shape in TABLES:
        rows = random.Random(kilobytes)
        parts: list[str] = []
        while sum(map(len, parts)) < size:
            parts.append(TABLES[shape](rows))
        return "".join(parts)[:size]
    prefix, unit = SHAPES[shape]
    return prefix + (unit * (size // len(unit) + 1))[: size - len(prefix)]


def steps() -> dict[str, Callable[[str], object]]:
    """Every step timed, by name: the contact rule's detectors one by one, then the other rules and the scrub."""
    found: dict[str, Callable[[str], object]] = {}
    for detector in contact_info._DETECTORS:  # a bench may look inside
        found[f"contact{detector.__name__}"] = lambda text, detector=detector: list(detector(scan(text)))
    book = PolicyBook(REPO / "policies")
    lists = [setting.params for name in ("youth-strict", "supervised", "adult-professional")
             for setting in book.get(name).rules if setting.rule == keywords.NAME]
    people = {"sender_email": "will.rose@example.org", "sender_name": "Will Rose",
              "recipient_email": "hope@example.net", "recipient_name": "Hope Grace Mark"}
    found["keywords"] = lambda text: [keywords.check(Inspection(text=text, subject=""), p) for p in lists]
    found["identity"] = lambda text: identity.check(Inspection(text=text, subject="", **people), identity.Params())
    scrubber = Scrubber([Identity("will.rose@example.org", "Will Rose", "oak.m1@relay.example", "Oak"),
                         Identity("hope@example.net", "Hope Grace Mark", "elm.m2@relay.example", "Elm")])
    found["scrub.text"] = scrubber.text
    found["scrub.html"] = lambda text: scrubber.html("<p>" + html.escape(text) + "</p>")
    found["htmltext.view"] = view
    return found


def scan(text: str) -> contact_info._Scan:
    lower = contact_info._lowered(text)
    words = contact_info._WORD.findall(lower)
    return contact_info._Scan(text, lower, words, frozenset(words), "US",
                              contact_info._Allowed(frozenset(), ()))


def cold() -> None:
    """Forget what is cached about a text (not what is cached about people or lists): each call as for a new
    message. Without it, the fast steps repeated to fill 50 ms would mix the cost of one cold call and of warm
    ones, in proportions that change with the size."""
    contact_info._window_numbers.cache_clear()
    folding._folded.cache_clear()
    folding.words_of.cache_clear()


def cpu(step: Callable[[str], object], text: str) -> float:
    """CPU seconds of one call, averaged over repeated calls when one takes under 50 ms."""
    rounds, started = 0, time.process_time()
    while True:
        cold()
        step(text)
        rounds += 1
        spent = time.process_time() - started
        if spent >= 0.05 or rounds >= 200:
            return spent / rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20,40", help="two sizes in KB, the second double the first")
    every = [*SHAPES, *TABLES]
    parser.add_argument("--shapes", default=",".join(every), help="comma-separated, of: " + ", ".join(every))
    parser.add_argument("--steps", default="", help="only the steps whose name holds one of these (comma-separated)")
    args = parser.parse_args()
    small, large = (int(size) for size in args.sizes.split(","))
    chosen = {name: step for name, step in steps().items()
              if not args.steps or any(part in name for part in args.steps.split(","))}
    for step in chosen.values():
        step(text_of("gps_table", 1))  # warm-up: compiled patterns, word lists, the name matcher
    super_linear = costly = 0
    print(f"{'shape':<20} {'step':<26} {f'ms/KB @{small}':>11} {f'ms/KB @{large}':>11} {'ratio':>6}")
    for shape in args.shapes.split(","):
        texts = (text_of(shape, small), text_of(shape, large))
        for name, step in chosen.items():
            first, second = (cpu(step, text) for text in texts)
            ratio = second / first if first > 0 else 0.0
            marks = []
            if ratio > 3 and second > 0.005:
                marks.append("SUPER-LINEAR")
                super_linear += 1
            if second / large * 1000 > 5:
                marks.append("COSTLY")
                costly += 1
            print(f"{shape:<20} {name:<26} {first / small * 1000:11.3f} {second / large * 1000:11.3f} {ratio:6.1f}"
                  f" {' '.join(marks)}", flush=True)
    print(f"super-linear steps: {super_linear}, costly steps: {costly}")


if __name__ == "__main__":
    main()
