"""The keywords rule: words and phrases a program does not want in messages, however they are cased or accented.

Matching is whole-word ("kill" is not found in "skill"), case- and accent-insensitive ("cafe" finds "CAFÉ",
"strasse" finds "Straße"), and the words of a phrase match across any whitespace ("meet up" finds "Meet\n up");
relay.moderation.folding says what else is read alike (look-alike letters, stretched letters, hyphens, emoji).
Findings carry the text exactly as written, with its offsets; where listed phrases overlap the longest wins.

`unless` lists phrases that make a match not count where they overlap it: a list may hold "dad hit me" and,
unless, "hit me up" ("my dad hit me up last night" is a text message, not a blow). An unless phrase is
matched like the words; keep each one narrow, since what it covers is never found ("cut myself shaving",
not "cut myself on").
"""

from __future__ import annotations

import re
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, field_validator

from relay.moderation.findings import Finding
from relay.moderation.folding import compile_phrases, fold_phrase, overlaps, search
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
def _pattern(words: tuple[str, ...]) -> re.Pattern[str]:
    pattern = compile_phrases(fold_phrase(word) for word in words)
    assert pattern is not None  # Params holds at least one matchable word
    return pattern


def check(inspection: Inspection, params: Params) -> list[Finding]:
    text = inspection.text
    kind = params.name or DEFAULT_KIND
    spans = search(text, _pattern(tuple(params.words)))
    if spans and params.unless:
        cancelled = search(text, _pattern(tuple(params.unless)))
        spans = [span for span in spans if not overlaps(span, cancelled)]
    return [Finding(rule=NAME, kind=kind, match=text[start:end], start=start, end=end) for start, end in spans]
