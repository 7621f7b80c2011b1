"""Fold text for identity matching, keeping where each folded character came from.

A name must be found however it is written: in any case, with or without accents, decomposed the way
macOS writes file names (NFD), in fullwidth or mathematical letters (NFKC compatibility forms), or with
look-alike letters from another script (a Cyrillic "о" in "Theоdora"). Each character is folded the
same way, in the text and in the enrolled names, so that both meet in one form:

  compatibility decomposition (NFKD) -> combining marks and invisible format characters dropped
  -> casefold -> the letters of LETTERS replaced -> confusable letters mapped to the Latin letter they
  imitate -> lower case

LETTERS holds what that decomposition cannot give: Latin letters whose mark is part of the letter, not a
combining mark ("ł", "ø", "đ", "ħ", ligatures "æ", "œ", "þ"), which a partner types with the plain letter
("Lukasz Wojcik" for Łukasz Wójcik, "Soren" for Søren, "Duc" for Đức); and the Arabic letters that people
write one for another in names: "ة" and "ه" at a word's end (فاطمة, فاطمه), "ى", the Persian "ی" and "ي"
(مصطفى, مصطفي, علی), the Persian "ک" and "ك". Hamza on alef (أ إ آ), waw (ؤ) and yeh (ئ) is a combining
mark after NFKD, so "أحمد" already folds to "احمد". Listed here rather than taken from a transliteration
library: `unidecode` is GPL; `anyascii` (ISC) has the Latin ones but turns every script into Latin letters,
while a name in Cyrillic or Arabic is matched in its own script, so it would have to be fenced to these
letters anyway (and it has no Arabic-to-Arabic folds): a dependency for a table of two dozen entries.

Every apostrophe form (APOSTROPHES) folds to the ASCII "'" first: phones and word processors type "’" by
default, Spanish and German keyboards give "´", others "`" or "ʼ", so "O’Brien" and "O'Brien" must meet.

The confusables come from Unicode's confusables data as shipped by the `confusable-homoglyphs` package
(confusables.json, MIT licence, generated from https://www.unicode.org/Public/security/latest/
confusables.txt); only mappings onto an ASCII letter are used. Folding is symmetrical, so names written
in another script (Cyrillic, Arabic) still match themselves.

Speed: the fold of each distinct character is cached; when every character of a text folds to exactly
one character (almost every message), the folded text keeps the original offsets and is built by
str.translate in one C call; only otherwise are per-character offsets kept.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from functools import cache
from importlib import resources


@cache
def confusables() -> dict[str, str]:
    """Look-alike letter -> the ASCII letter it imitates (lower case)."""
    data = json.loads(resources.files("confusable_homoglyphs").joinpath("confusables.json").read_text("utf-8"))
    mapping: dict[str, str] = {}
    for key, entries in data.items():
        if len(key) == 1 and key.isascii() and key.isalpha():
            for entry in entries:
                glyph = entry.get("c", "")
                if len(glyph) == 1 and not glyph.isascii() and glyph.isalpha():
                    mapping.setdefault(glyph, key.lower())
        elif len(key) == 1 and not key.isascii() and key.isalpha():
            for entry in entries:
                glyph = entry.get("c", "")
                if len(glyph) == 1 and glyph.isascii() and glyph.isalpha():
                    mapping.setdefault(key, glyph.lower())
    return mapping


# What people type for an apostrophe: the characters that Unicode's confusables data (above) lists as
# look-alikes of "'" and that are used as one in mail (punctuation, symbols and modifier letters; not the
# Greek tonos, Armenian comma or letters of other scripts). Listed here, not read from the data, so
# that moderation (relay.moderation.folding) folds exactly the same set and a reader can see it.
APOSTROPHES = frozenset(
    "\u2019\u2018\u201b"  # ’ ‘ ‛ quotation marks: iPhone, Word, Outlook "smart" punctuation
    "\u02bc\u02bb\u02b9"  # ʼ ʻ ʹ modifier letters (apostrophe, okina, prime)
    "\u00b4\u02ca`\u02cb"  # ´ ˊ ` ˋ acute and grave accents typed alone (Spanish, German, French keyboards)
    "\u2032\u2035"  # ′ ‵ primes
    "\uff07\uff40"  # ＇ ｀ fullwidth (Chinese and Japanese input methods)
    "\u055a\u05f3"  # ՚ ׳ Armenian apostrophe, Hebrew geresh
)


# Latin letters with a stroke, a bar or a hook, and ligatures: their plain letters as typed on a keyboard
# without them (Polish ł, Danish and Norwegian ø æ, Icelandic ð þ, Vietnamese and Croatian đ, Maltese ħ,
# Turkish ı, French œ; Hausa ɓ ɗ ƙ ƴ, Akan and Ewe ɛ ɔ; Azerbaijani ə, written "a": Əliyev, Aliyev).
# Lower case only: they are looked up after casefold.
LATIN_LETTERS = {
    "ł": "l", "ø": "o", "đ": "d", "ð": "d", "ħ": "h", "ı": "i", "ŧ": "t", "ƀ": "b",
    "æ": "ae", "œ": "oe", "þ": "th",
    "ɓ": "b", "ɗ": "d", "ƙ": "k", "ƴ": "y", "ɛ": "e", "ɔ": "o", "ə": "a",
}  # fmt: skip
# Arabic letters written one for another: teh marbuta (only ever at a word's end) as heh; alef maksura and
# the Persian and Urdu yeh as yeh; the Persian keheh and swash kaf as kaf; the Urdu heh forms and the
# Kurdish ae as heh; alef wasla as alef; the tatweel (a stretch of the line between letters) dropped.
ARABIC_LETTERS = {
    "ة": "ه", "ۃ": "ه",  # ة ۃ -> ه
    "ى": "ي", "ی": "ي",  # ى ی -> ي
    "ک": "ك", "ڪ": "ك",  # ک ڪ -> ك
    "ہ": "ه", "ھ": "ه", "ە": "ه",  # ہ ھ ە -> ه
    "ٱ": "ا",  # ٱ -> ا
    "ـ": "",  # ـ tatweel
}  # fmt: skip
LETTERS = {**LATIN_LETTERS, **ARABIC_LETTERS}


class _Table(dict[int, str]):
    """str.translate table that folds each character on first sight and remembers it."""

    def __missing__(self, code: int) -> str:
        folded = fold_char(chr(code))
        self[code] = folded
        return folded


_TABLE = _Table()


@cache
def fold_char(char: str) -> str:
    """One character folded (see the module docstring); may be empty (a combining mark) or longer ("ß")."""
    if char in APOSTROPHES:
        return "'"
    decomposed = unicodedata.normalize("NFKD", char)
    kept = "".join(c for c in decomposed if not unicodedata.combining(c) and unicodedata.category(c) != "Cf")
    folded = "".join(LETTERS.get(c, c) for c in kept.casefold())
    lookalikes = confusables()
    return "".join(lookalikes.get(c, c) for c in folded).lower()


@dataclass(frozen=True)
class Folded:
    """Folded text; folded character i came from original characters starts[i] up to ends[i] (None: the
    same offsets as the original)."""

    text: str
    starts: tuple[int, ...] | None = None
    ends: tuple[int, ...] | None = None

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The span of the original text that the folded characters start..end (non-empty) came from."""
        if self.starts is None or self.ends is None:
            return start, end
        return self.starts[start], self.ends[end - 1]


def fold(text: str) -> Folded:
    """Text folded for matching, with the map back to the original offsets when they differ."""
    if text.isascii():
        lowered = text.lower()
        return Folded(lowered.replace("`", "'") if "`" in lowered else lowered)  # the one ASCII apostrophe form
    if all(len(fold_char(char)) == 1 for char in set(text)):
        return Folded(text.translate(_TABLE))
    pieces: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    for index, char in enumerate(text):
        folded = fold_char(char)
        if not folded and ends and unicodedata.combining(char):
            ends[-1] = index + 1  # a mark belongs to the character it decorates
        pieces.append(folded)
        starts.extend([index] * len(folded))
        ends.extend([index + 1] * len(folded))
    return Folded("".join(pieces), tuple(starts), tuple(ends))


def fold_word(word: str) -> str:
    """A word (a name, a word of the shipped lists) folded the way text is."""
    return fold(unicodedata.normalize("NFC", word)).text
