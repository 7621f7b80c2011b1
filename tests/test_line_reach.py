"""Whether a word that is also a name ("will", "rose") reads as the name is judged from its line, read at most
relay.anonymize.names.LINE_REACH characters either side: a line read whole for each such word on it made the
scrub and the identity rule quadratic in the length of a long line (an HTML part without line breaks, a text
pasted as one line). No timed assertion: the text handed to the judgement counts the characters read out of it
(bench/rules_shapes.py prints the cost per KB of the scrub and the identity rule on such a line).
"""

from __future__ import annotations

from typing import SupportsIndex

from relay.anonymize.names import LINE_REACH, Person, matcher_for, reads_as_name


class CountedText(str):
    """A str that counts the characters taken out of it by slicing."""

    taken = 0

    def __getitem__(self, key: SupportsIndex | slice) -> str:
        piece = super().__getitem__(key)
        CountedText.taken += len(piece)
        return piece


def test_a_word_on_a_long_line_reads_a_bounded_part_of_it() -> None:
    line = "will rose hope " * 10_000  # 150 KB on one line
    text = CountedText(line)
    middle = line.index("will", len(line) // 2)
    CountedText.taken = 0
    assert reads_as_name(text, middle, middle + 4) is False  # "will" in running lower-case text is the word
    assert CountedText.taken <= 4 * LINE_REACH + 100


def test_what_reads_as_a_name_on_a_line_is_unchanged() -> None:
    """Within the reach, the judgement is the one it was: a signature alone on its line, a greeting's vocative, a
    capital, the word in running text."""
    assert reads_as_name("thanks,\n- will\n", 10, 14)
    assert reads_as_name("x" * 500 + "\nhi will, see you\n", 504, 508)
    assert reads_as_name("ok " * 300 + "I saw Will there", 906, 910)
    assert not reads_as_name("ok " * 300 + "I will go", 902, 906)


def test_a_long_line_of_name_words_is_scrubbed_as_a_short_one() -> None:
    person = Person("will.rose@example.org", "Will Rose")
    short = "Thanks, Will Rose. I will send the rose tomorrow.\n"
    long_line = short.replace("\n", " ") * 2_000
    hits = matcher_for((person,)).find(long_line)
    per_copy = matcher_for((person,)).find(short)
    assert len(hits) == 2_000 * len(per_copy)
