"""The keywords rule: words and phrases a program does not want in messages, however they are cased or accented.

Matching is whole-word ("kill" is not found in "skill"), case- and accent-insensitive ("cafe" finds "CAFÉ",
"strasse" finds "Straße"), and the words of a phrase match across any whitespace ("meet up" finds "Meet\n up").
Findings carry the text exactly as written, with its offsets; where listed phrases overlap the longest wins.
"""

from __future__ import annotations

import re
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, field_validator

from relay.moderation.findings import Finding
from relay.moderation.folding import compile_phrases, find_spans, fold, fold_phrase
from relay.moderation.inspection import Inspection

NAME = "keywords"
DEFAULT_KIND = "keyword"


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    words: list[str] = Field(min_length=1)  # words or phrases
    name: str | None = None  # the findings' kind, e.g. "violence"; "keyword" when not given

    @field_validator("words")
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
    return [
        Finding(rule=NAME, kind=kind, match=text[start:end], start=start, end=end)
        for start, end in find_spans(fold(text), _pattern(tuple(params.words)))
    ]
