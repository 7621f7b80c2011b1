"""The identity rule: defence in depth after anonymisation, a real address or name that survived it.

The message is checked for the sender's own real address and name and for the recipient's (the partner's).
An address is found in any case, with or without a +tag. A name is found as a whole word, in any case, with
or without accents ("Jose" for José), with German umlauts written out or dropped ("Mueller" and "Muller" for
Müller): the full name in any case, and, unless check_name_parts is off, each part of it that has at least
three letters where it is written with a capital (so that "will" is not taken for a mentor called Will).
A name found inside a found address or a longer found name is not reported again, and nothing inside one
of the relay's own alias addresses counts, since aliases are built from handles.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from pydantic import BaseModel, ConfigDict, Field

from relay.moderation.findings import Finding
from relay.moderation.folding import Folded, compile_phrases, find_spans, fold, fold_phrase
from relay.moderation.inspection import Inspection

NAME = "identity"
MIN_PART_LETTERS = 3

_PART_SEPARATOR = re.compile(r"[\s\-‐‑]+")


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    check_name_parts: bool = Field(True, strict=True)


def check(inspection: Inspection, params: Params) -> list[Finding]:
    text = inspection.text
    foldings = (fold(text), fold(text, transliterate=True))
    people = (
        ("own", inspection.sender_email, inspection.sender_name),
        ("partner", inspection.recipient_email, inspection.recipient_name),
    )
    findings: list[Finding] = []
    for who, address, name in people:
        for start, end in _address_spans(text, address):
            findings.append(Finding(rule=NAME, kind=f"{who}_address", match=text[start:end], start=start, end=end))
        for start, end in _name_spans(text, foldings, name, params.check_name_parts):
            findings.append(Finding(rule=NAME, kind=f"{who}_name", match=text[start:end], start=start, end=end))
    covered = _covered({*_alias_spans(text, inspection.aliases), *((f.start, f.end) for f in findings)})
    kept = [f for f in findings if (f.start, f.end) not in covered]
    return sorted(kept, key=lambda f: (f.start, f.end, f.kind))


def _address_spans(text: str, address: str) -> list[tuple[int, int]]:
    local, _, domain = address.strip().rpartition("@")
    base = local.split("+", 1)[0]
    if not base or not domain:
        return []
    pattern = rf"(?<![\w.+-]){re.escape(base)}(?:\+[^@\s<>\"']*)?@{re.escape(domain)}(?![\w-]|\.\w)"
    return [match.span() for match in re.finditer(pattern, text, re.IGNORECASE)]


def _name_spans(text: str, foldings: Iterable[Folded], name: str, with_parts: bool) -> list[tuple[int, int]]:
    """The full name in any case; a single part only where it is written with a capital, as names are
    ("Will" the mentor, not "will" the verb: the scrub replaced the capitalised forms already)."""
    foldings = list(foldings)
    spans = _spans(foldings, [name])
    if with_parts:
        spans |= {(s, e) for s, e in _spans(foldings, list(_parts(name))) if text[s:s + 1].isupper()}
    return sorted(spans)


def _spans(foldings: list[Folded], candidates: list[str]) -> set[tuple[int, int]]:
    variants = [fold_phrase(c, transliterate=t) for c in candidates for t in (False, True)]
    pattern = compile_phrases(variants)
    if pattern is None:
        return set()
    return {span for folded in foldings for span in find_spans(folded, pattern)}


def _parts(name: str) -> Iterator[str]:
    """The words of a name, and the pieces of a hyphenated one, that have enough letters to mean something."""
    for word in [*name.split(), *_PART_SEPARATOR.split(name)]:
        if sum(char.isalpha() for char in word) >= MIN_PART_LETTERS:
            yield word


def _covered(spans: set[tuple[int, int]]) -> set[tuple[int, int]]:
    """The spans that lie within a larger one: "José" found inside "José Müller", or a name inside an address."""
    covered: set[tuple[int, int]] = set()
    reach = -1
    for span in sorted(spans, key=lambda s: (s[0], -s[1])):  # whatever could cover a span comes before it
        if span[1] <= reach:
            covered.add(span)
        reach = max(reach, span[1])
    return covered


def _alias_spans(text: str, aliases: Iterable[str]) -> Iterator[tuple[int, int]]:
    for alias in aliases:
        if alias:
            yield from (match.span() for match in re.finditer(re.escape(alias), text, re.IGNORECASE))
