"""The contact rule's work grows with the text, not with its square: no timed assertion, but the work counted
(the numbers the phone matcher parses) and the reach of what a pattern may cover, bounded by construction.

A text of numbers (a pasted table of GPS points, a CSV of measurements, maths homework) or a long run of one
shape (a roster of capitalised names, a line without spaces) used to cost minutes of CPU, so that the worker's
budget refused or held it unread. bench/rules_shapes.py prints the cost per KB of each step on such shapes at two
sizes; these tests pin what makes it linear.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from phonenumbers import phonenumbermatcher

from relay.moderation.rules import contact_info
from relay.moderation.rules.contact_info import _DIGIT_RUN, find_contact_info

ISSUE_TEXT = "12.3456, 78.9 N 5° 1+2 " * 400  # 9 KB of what took over 200 s at 460 KB


def _columns(rows: int) -> str:
    """A table of measurements in columns, each row's values different."""
    values = random.Random(3)
    return "".join(f"{values.uniform(0, 100):.4f} {values.uniform(0, 100):.4f} {values.uniform(0, 1):.4f}\n"
                   for _ in range(rows))


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every candidate the phonenumbers matcher parses (in any region), as a list that grows."""
    seen: list[str] = []
    parse = phonenumbermatcher.parse
    contact_info._window_numbers.cache_clear()  # as for the first message a worker reads

    def counting(candidate: str, *args: object, **kwargs: object) -> object:
        seen.append(candidate)
        return parse(candidate, *args, **kwargs)

    monkeypatch.setattr(phonenumbermatcher, "parse", counting)
    yield seen


def test_a_repeated_text_is_parsed_once_per_window(parses: list[str]) -> None:
    """The issue's text: each of its 400 runs of digits ("2 12.3456") was parsed some 330 times (the matcher in the
    program's region and 14 others, on 40 characters around it); the same window of text is read once."""
    runs = len(list(_DIGIT_RUN.finditer(ISSUE_TEXT)))
    assert find_contact_info(ISSUE_TEXT) == []
    assert len(parses) <= runs == 399


def test_the_matcher_reads_a_table_row_by_row(parses: list[str]) -> None:
    """A table of decimals: each row is a run; the matcher no longer reads into the rows before and after it
    (no number crosses a line break), which halves what it parses (80 numbers a row before)."""
    table = _columns(400)
    findings = find_contact_info(table)
    assert len(list(_DIGIT_RUN.finditer(table))) == 400
    assert len(parses) <= 40 * 400
    assert all("\n" not in candidate for candidate in parses)
    assert findings  # what it found before, it finds (the labelled sets check the same across every test text)


def test_a_cue_decides_only_near_its_number() -> None:
    """The cue nearest before a number decides what it is, within 60 characters (and the word they cut): in a line
    without spaces, a "ref" at its start made every number on it a reference, however far, and each number's cue
    search read the line from its start (quadratic in the line's length)."""
    line = "ref:" + "5551234567;" * 40
    found = [finding.match for finding in find_contact_info(line)]
    assert found and set(found) == {"5551234567"}
    assert len(found) <= 40 - 8  # the first numbers, close to "ref", are still references


@pytest.mark.parametrize(
    "text, found",
    [
        # a roster of names before a town: the address, not the roster
        ("Anna Bell Chris Dee Emma Finn " * 30 + "Springfield, IL 62704",
         "Anna Bell Chris Dee Emma Finn Springfield, IL 62704"),
        ("Via Roma Calle Mayor Plaza Nueva " * 30 + "Via Roma 12", "Via Roma Calle Mayor Plaza Nueva Via Roma 12"),
        ("Ab" * 500 + "straße 5 during", "Ab" * 20 + "straße 5"),
    ],
)
def test_a_street_address_reaches_back_a_few_words(text: str, found: str) -> None:
    """A town's or a street's name has at most 7 words, a word at most 41 letters: the patterns that failed on
    such runs crossed each run whole from each of its words (quadratic), and a match took the run with it."""
    assert [(finding.kind, finding.match) for finding in find_contact_info(text)] == [("street_address", found)]


def test_a_spelt_out_address_reaches_back_a_few_pieces() -> None:
    """ "jane dot jane dot ..." was crossed whole from each of its words; an address is found from its last 33
    pieces."""
    text = "jane dot " * 60 + "doe at gmail dot com"
    findings = find_contact_info(text)
    assert [finding.kind for finding in findings] == ["email"]
    assert findings[0].match == "jane dot " * 32 + "doe at gmail dot com"
