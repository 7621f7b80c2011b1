"""The keywords rule: words and phrases a program does not want in messages, however they are cased or accented.

Matching is whole-word ("kill" is not found in "skill"), case- and accent-insensitive ("cafe" finds "CAFÉ",
"strasse" finds "Straße"), and the words of a phrase match across any whitespace ("meet up" finds "Meet\n up");
relay.moderation.folding says what else is read alike (look-alike letters, stretched letters, hyphens, emoji).
Findings carry the text exactly as written, with its offsets; where listed phrases overlap the longest wins.

`unless` lists phrases that make a match not count where they overlap it: a list may hold "dad hit me" and,
unless, "hit me up about" ("my dad hit me up about the trip" is a text message, not a blow). An unless
phrase is matched like the words; keep each one narrow, since what it covers is never found ("cut myself
shaving", not "cut myself on"; never a bare "hit me up", which "my dad hit me up against the wall" holds).

A list of hundreds of phrases is one regular expression, which Python tries at every position of the text:
over the text of a 50-page attached document, the seven urgent lists took seconds. So each phrase carries a
word the text must hold for it to match (relay.moderation.folding.required_word: stretched letters and all),
and only the phrases whose word the text holds are tried; the matches are the same, since a phrase left out
could match nowhere (tests/test_rules.py checks it on every labelled text and listed phrase).
"""

from __future__ import annotations

import re
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, field_validator

from relay.moderation.findings import Finding
from relay.moderation.folding import compile_phrases, fold_phrase, not_overlapping, required_word, search, words_of
from relay.moderation.inspection import Inspection

NAME = "keywords"
DEFAULT_KIND = "keyword"


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    words: list[str] = Field(min_length=1)  # words or phrases
    name: str | None = None  # the findings' kind, e.g. "violence"; "keyword" when not given
    unless: list[str] = Field(default_factory=list)  # phrases that, where they overlap a match, cancel it

    @field_validator("words", "unless")
    @classmethod
    def _matchable(cls, words: list[str]) -> list[str]:
        for word in words:
            if not fold_phrase(word):
                raise ValueError(f"{word!r} has nothing to match")
        return words

    @field_validator("name")
    @classmethod
    def _not_blank(cls, name: str | None) -> str | None:
        if name is not None and not name.strip():
            raise ValueError("a label cannot be blank")
        return name


@lru_cache(maxsize=256)
def _phrases(words: tuple[str, ...]) -> tuple[tuple[str | None, str], ...]:
    """Each listed phrase folded, with the word a text must hold for it to match (None: always tried)."""
    return tuple((required_word(phrase), phrase) for phrase in sorted({fold_phrase(word) for word in words}))


@lru_cache(maxsize=1024)
def _compiled(phrases: frozenset[str]) -> re.Pattern[str] | None:
    return compile_phrases(phrases)


def _pattern(words: list[str], text: str) -> re.Pattern[str] | None:
    """The expression of the listed phrases that can match in text (None: none can)."""
    present = words_of(text)
    return _compiled(frozenset(phrase for required, phrase in _phrases(tuple(words))
                               if required is None or required in present))


def check(inspection: Inspection, params: Params) -> list[Finding]:
    text = inspection.text
    kind = params.name or DEFAULT_KIND
    pattern = _pattern(params.words, text)
    spans = search(text, pattern) if pattern is not None else []
    if spans and params.unless:
        cancelling = _pattern(params.unless, text)
        cancelled = search(text, cancelling) if cancelling is not None else []
        spans = not_overlapping(spans, cancelled)
    return [Finding(rule=NAME, kind=kind, match=text[start:end], start=start, end=end) for start, end in spans]
