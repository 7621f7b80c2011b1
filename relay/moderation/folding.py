"""Case- and accent-insensitive matching of words and phrases, with offsets into the original text.

Text is folded one character at a time: compatibility decomposition (NFKD), combining marks and invisible
format characters (soft hyphens, zero-width spaces) dropped, then casefolded, so "José", "JOSE" and "jose"
fold alike, and "Straße" and "strasse"; every apostrophe form ("’", "´", "`", "ʼ", ...: the set the
anonymiser folds, relay.anonymize.fold.APOSTROPHES) folds to "'", so "don’t" and "don´t" read like "don't".
Optionally German umlauts are first transliterated ("Müller" folds like "Mueller"). Each folded character
remembers the span of the original character it came from, so a match found in the folded text maps back to
the text exactly as written.

Phrases match as whole words: at an edge made of a word character there must be no word character next to
the match, except in scripts written without spaces between words (Chinese, Japanese, Thai, ...), where no
boundary can be told. Words of a phrase match across any run of whitespace, line breaks included.
An apostrophe inside a word of a phrase may be left out in the text: a listed "don't tell" also finds
"dont tell", "it's our secret" "its our secret", "c'est notre secret" "cest notre secret", as children
type them; policy authors list the phrase once, with its apostrophe. The apostrophe is made optional in
the phrase rather than dropped from the text, so that the text keeps its word boundaries: "dad" is still
found in "dad's", and "école" in "l'école". (A phrase listed without its apostrophe, "dont tell", does
not find "don't tell": dropping apostrophes from the text would make "he'll" read as "hell".)
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from relay.anonymize.fold import APOSTROPHES

_UMLAUTS = {"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue"}
_INNER_APOSTROPHE = re.compile(r"(?<=\w)'(?=\w)")  # in an escaped word: "'" is not escaped, letters are not
_WORD_CHAR = re.compile(r"\w")
# Scripts written without spaces between words: a boundary there would never be found.
_UNSPACED = re.compile(r"[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


@dataclass(frozen=True)
class Folded:
    """Folded text; folded character i came from original characters starts[i] up to ends[i]."""

    text: str
    starts: tuple[int, ...]
    ends: tuple[int, ...]

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """The span of the original text that folded characters start..end (a non-empty match) came from."""
        return self.starts[start], self.ends[end - 1]


@lru_cache(maxsize=4096)
def _fold_char(char: str, transliterate: bool) -> str:
    if transliterate:
        char = _UMLAUTS.get(char, char)
    if char in APOSTROPHES:
        return "'"  # before NFKD, which makes "´" a space and a combining accent
    decomposed = unicodedata.normalize("NFKD", char)
    kept = "".join(c for c in decomposed if not unicodedata.combining(c) and unicodedata.category(c) != "Cf")
    return kept.casefold()


def fold(text: str, *, transliterate: bool = False) -> Folded:
    """Fold text for matching, keeping where each folded character came from."""
    pieces: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    for index, char in enumerate(text):
        folded = _fold_char(char, transliterate)
        if not folded and ends and unicodedata.combining(char):
            ends[-1] = index + 1  # a mark belongs to the character it decorates
        pieces.append(folded)
        starts.extend([index] * len(folded))
        ends.extend([index + 1] * len(folded))
    return Folded("".join(pieces), tuple(starts), tuple(ends))


def fold_phrase(phrase: str, *, transliterate: bool = False) -> str:
    """A phrase folded like text, its words separated by single spaces."""
    return " ".join(fold(phrase, transliterate=transliterate).text.split())


def _bounded(edge: str) -> bool:
    return _WORD_CHAR.match(edge) is not None and _UNSPACED.match(edge) is None


def phrase_pattern(folded_phrase: str) -> str:
    """A regular expression matching a folded phrase as whole words in folded text, an apostrophe inside a
    word optional ("don'?t")."""
    body = r"\s+".join(_INNER_APOSTROPHE.sub("'?", re.escape(word)) for word in folded_phrase.split(" "))
    before = r"(?<!\w)" if _bounded(folded_phrase[0]) else ""
    after = r"(?!\w)" if _bounded(folded_phrase[-1]) else ""
    return before + body + after


def compile_phrases(folded_phrases: Iterable[str]) -> re.Pattern[str] | None:
    """One expression for folded phrases, the longest tried first; None when there are none."""
    unique = sorted({phrase for phrase in folded_phrases if phrase}, key=lambda p: (-len(p), p))
    if not unique:
        return None
    return re.compile("|".join(phrase_pattern(phrase) for phrase in unique))


def find_spans(folded: Folded, pattern: re.Pattern[str]) -> list[tuple[int, int]]:
    """The original spans of the pattern's matches in folded text."""
    return [folded.original_span(*match.span()) for match in pattern.finditer(folded.text)]
