"""Case- and accent-insensitive matching of words and phrases, with offsets into the original text.

Text is folded one character at a time: compatibility decomposition (NFKD), combining marks and invisible
format characters (soft hyphens, joiners) dropped, then casefolded, so "José", "JOSE" and "jose" fold alike,
and "Straße" and "strasse"; every apostrophe form ("’", "´", "`", "ʼ", ...: the set the anonymiser folds,
relay.anonymize.fold.APOSTROPHES) folds to "'", so "don’t" and "don´t" read like "don't". Letters of another
script that imitate a Latin letter (a Cyrillic "і" in "kіll", "о" in "hоme") fold to the Latin letter, as
the anonymiser folds them (Unicode's confusables, relay.anonymize.fold.confusables); the fold is the same
for text and lists, so Russian text still meets the Russian lists. In Arabic the tatweel that stretches a
word ("أمـــوت") is dropped like a short vowel, and "ى" and the Persian "ی", which many write for a final
"ي", fold to "ي" ("اعتدى على" reads like "اعتدى علي"); "ة" folds to the "ه" most people type for it
("عايزه اموت" reads like "عايزة أموت"), and the Persian "ک" to "ك". Emoji and other symbols fold to a
space, so the words of a phrase are still found on either side of one ("kill 😭 myself", "kill😭myself").
A zero-width space is read both ways, as nothing and as a space, because it is put inside words to hide
them and between words in place of a space. Three or more single letters each set apart by one space are
read as one word ("k i l l" reads "kill"): no listed word is spelt by a run of one-letter words. Optionally
German umlauts are first transliterated ("Müller" folds like "Mueller"). Each folded character remembers
the span of the original character it came from, so a match found in the folded text maps back to the text
exactly as written. Digits are not read as letters ("k1ll"): "1" stands for "i" and for "l", and digits inside words
are ordinary in codes and names, so guessing would find words nobody wrote. A digit matches itself, so a
list can hold Arabic written in Latin letters, where digits are letters ("ib3atli", "2entir"), as it is typed.

Phrases match as whole words: at an edge made of a word character there must be no word character next to
the match, except in scripts written without spaces between words (Chinese, Japanese, Thai, ...), where no
boundary can be told. Words of a phrase match across any run of whitespace, line breaks included.
A letter of a phrase may be stretched in the text, written three times or more ("dieee", "myselfff",
"kiiill"); written twice it is another word ("to" and "too", "of" and "off"), so a single letter does not
match a double one. A hyphen inside a word of a phrase matches a hyphen, a space or nothing ("beau-père"
finds "beau pere" and "beaupère").
An apostrophe inside a word of a phrase may be left out in the text: a listed "don't tell" also finds
"dont tell", "it's our secret" "its our secret", "c'est notre secret" "cest notre secret", as children
type them; policy authors list the phrase once, with its apostrophe. The apostrophe is made optional in
the phrase rather than dropped from the text, so that the text keeps its word boundaries: "dad" is still
found in "dad's", and "école" in "l'école". (A phrase listed without its apostrophe, "dont tell", does
not find "don't tell": dropping apostrophes from the text would make "he'll" read as "hell".)
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from relay.anonymize.fold import APOSTROPHES, confusables

_UMLAUTS = {"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue"}
TATWEEL = "\u0640"  # Arabic kashida: stretches a word, "أمـــوت" is "أموت"
ZERO_WIDTH_SPACE = "\u200b"
# After decomposition: alef maksura and the Persian yeh written for a final yeh; taa marbuta as the heh
# that most people type for it ("عايزه" for "عايزة": the letter is only ever final, and a final heh is
# also the pronoun "his", so "صوره" reads both ways, as it does to an Arabic reader); the Persian keheh
# for kaf (Persian and Urdu keyboards); the Unicode hyphens (U+2011, the non-breaking one, decomposes to
# U+2010) as the ASCII one.
_LETTERS = {"\u0649": "\u064a", "\u06cc": "\u064a", "\u0629": "\u0647", "\u06a9": "\u0643", "\u2010": "-"}
# Parts of emoji that are not symbols themselves: text/emoji variation selectors, skin-tone modifiers.
_EMOJI_PARTS = frozenset("\ufe0e\ufe0f" + "".join(chr(code) for code in range(0x1F3FB, 0x1F400)))
_SPACED_LETTERS = re.compile(r"(?<!\w)\w(?: \w){2,}(?!\w)")  # "k i l l": one-letter words, one space apart
_RUN = re.compile(r"(.)\1*", re.DOTALL)
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
    if char == TATWEEL:
        return ""
    if char in _EMOJI_PARTS or (len(char) == 1 and unicodedata.category(char) == "So"):
        return " "  # an emoji (or another symbol) between two words of a phrase stands for a space
    decomposed = unicodedata.normalize("NFKD", char)
    kept = "".join(_LETTERS.get(c, c) for c in decomposed
                   if not unicodedata.combining(c) and unicodedata.category(c) != "Cf")
    lookalikes = confusables()
    return "".join(lookalikes.get(c, c) for c in kept.casefold())


def _joined_spaces(text: str) -> frozenset[int]:
    """The offsets of the spaces inside runs of three or more one-letter words ("k i l l")."""
    return frozenset(match.start() + offset for match in _SPACED_LETTERS.finditer(text)
                     for offset in range(1, match.end() - match.start(), 2))


def fold(text: str, *, transliterate: bool = False, zero_width_space: str = "") -> Folded:
    """Fold text for matching, keeping where each folded character came from; a zero-width space folds to
    zero_width_space (nothing, or " ")."""
    pieces: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    joined = _joined_spaces(text) if " " in text else frozenset()
    for index, char in enumerate(text):
        if char == ZERO_WIDTH_SPACE:
            folded = zero_width_space
        elif joined and index in joined:
            folded = ""
        else:
            folded = _fold_char(char, transliterate)
        if not folded and ends and (unicodedata.combining(char) or char == TATWEEL):
            ends[-1] = index + 1  # a mark (or a tatweel) belongs to the character it follows
        pieces.append(folded)
        starts.extend([index] * len(folded))
        ends.extend([index + 1] * len(folded))
    return Folded("".join(pieces), tuple(starts), tuple(ends))


def fold_phrase(phrase: str, *, transliterate: bool = False) -> str:
    """A phrase folded like text, its words separated by single spaces."""
    return " ".join(fold(phrase, transliterate=transliterate).text.split())


def _bounded(edge: str) -> bool:
    return _WORD_CHAR.match(edge) is not None and _UNSPACED.match(edge) is None


def _word_pattern(word: str) -> str:
    """One folded word of a phrase: a letter stretched (three times or more) or as written, an apostrophe
    inside the word optional, a hyphen inside it a hyphen, a space or nothing."""
    parts: list[str] = []
    for run in _RUN.finditer(word):
        char, count = run.group(1), len(run.group())
        inner = run.start() > 0 and run.end() < len(word) and bool(
            _WORD_CHAR.match(word[run.start() - 1]) and _WORD_CHAR.match(word[run.end()]))
        escaped = re.escape(char)
        if inner and count == 1 and char == "'":
            parts.append("'?")
        elif inner and count == 1 and char == "-":
            parts.append(r"(?:-|\s+)?")
        elif char.isalpha():
            parts.append(f"{escaped}(?:{escaped}{escaped}+)?" if count == 1 else f"{escaped}{{{count},}}")
        else:
            parts.append(escaped * count)
    return "".join(parts)


def phrase_pattern(folded_phrase: str) -> str:
    """A regular expression matching a folded phrase as whole words in folded text (see the module
    docstring: stretched letters, an apostrophe inside a word optional, a hyphen optional)."""
    body = r"\s+".join(_word_pattern(word) for word in folded_phrase.split(" "))
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


@lru_cache(maxsize=2)
def _folded(text: str, transliterate: bool, zero_width_space: str) -> Folded:
    """The fold of the text being checked: a policy's lists (eight in the shipped youth policies) and their
    unless phrases all search the same text, which is folded once."""
    return fold(text, transliterate=transliterate, zero_width_space=zero_width_space)


def search(text: str, pattern: re.Pattern[str], *, transliterate: bool = False) -> list[tuple[int, int]]:
    """The original spans of the pattern's matches in text, in order; a zero-width space is read as nothing
    and, where that finds more, as a space."""
    spans = find_spans(_folded(text, transliterate, ""), pattern)
    if ZERO_WIDTH_SPACE in text:
        spaced = find_spans(_folded(text, transliterate, " "), pattern)
        spans = sorted(spans + not_overlapping(spaced, spans))
    return spans


def squeeze(folded_text: str) -> str:
    """Every run of one character written as one ("kiiilll" and "kill" both read "kil"): what a word of a
    phrase and the words of a text that it may match have in common, whatever the stretching."""
    return _RUN.sub(r"\1", folded_text)


_WHOLE_WORD = re.compile(r"\w+")


def required_word(folded_phrase: str) -> str | None:
    """A word that a text must hold (squeezed, among `words_of` the text) for the phrase to match anywhere in
    it, or None when no word is required (the phrase is then always tried). It is the phrase's longest word made
    of word characters only: such a word matches a whole run of word characters of the folded text (the
    phrase's words are bounded by whitespace inside and by word edges at its ends), stretched or not. A word
    with an apostrophe or a hyphen is never required (either may be left out, joining it to its neighbours),
    nor is one in a script written without spaces (no edge is required there)."""
    if _UNSPACED.search(folded_phrase):
        return None
    words = [word for word in folded_phrase.split(" ") if _WHOLE_WORD.fullmatch(word)]
    return squeeze(max(words, key=len)) if words else None


@lru_cache(maxsize=2)
def words_of(text: str, transliterate: bool = False) -> frozenset[str]:
    """The squeezed words of the text as `search` reads it (both readings of a zero-width space): a phrase
    whose required_word is not among them cannot match, so a long text is searched only for the phrases
    that can (hundreds of phrases in one expression cost a try at every position of the text)."""
    readings = [_folded(text, transliterate, "")]
    if ZERO_WIDTH_SPACE in text:
        readings.append(_folded(text, transliterate, " "))
    return frozenset(word for folded in readings for word in _WHOLE_WORD.findall(squeeze(folded.text)))


def not_overlapping(spans: list[tuple[int, int]], others: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The spans that share no character with any of others (spans found in order by one search: sorted, none
    overlapping another), in O(n log m): a long text with thousands of matches is not compared pair by pair."""
    ends = [end for _, end in others]
    kept = []
    for span in spans:
        index = bisect.bisect_right(ends, span[0])  # the first of others ending after this span starts
        if index == len(others) or others[index][0] >= span[1]:
            kept.append(span)
    return kept
