"""Replace the real addresses and names of both members by aliases and handles, in any text.

One combined regular expression is applied in a single pass, so a replacement is never itself
rewritten. Patterns cover: addresses with or without +tags, in any case; full names in any case, with
accents or without (José / Jose), with German transliteration (Müller / Mueller), in "Last, First"
order, across line breaks and non-breaking spaces; and each name part alone, as written or in capitals.
HTML is first relieved of entity-encoded letters and percent-encoded mailto: links, and RFC 2047
encoded words pasted into a body are decoded, so no encoding hides an identity from the scrub.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from email.errors import MessageError
from email.header import decode_header, make_header
from urllib.parse import unquote

from relay.anonymize.writable import writable

_GAP = r"(?:\s|&nbsp;|&#160;|&#xa0;)+"
_TRANSLIT = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss"})
_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_MAILTO = re.compile(r"mailto:[^\"'\s<>]+", re.IGNORECASE)
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")


@dataclass(frozen=True)
class Identity:
    """One member: what must disappear (real address and name) and what stands in for it."""

    email: str
    name: str
    alias_address: str
    handle: str


def _variants(word: str) -> list[str]:
    stripped = "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))
    found = [word, word.translate(_TRANSLIT), stripped]
    return list(dict.fromkeys(found))


def _word(word: str) -> str:
    return "(?:" + "|".join(re.escape(v) for v in sorted(_variants(word), key=len, reverse=True)) + ")"


def _bounded(pattern: str) -> str:
    return rf"(?<![\w@.+-]){pattern}(?![\w-])"


def _address_pattern(address: str) -> str:
    # No left boundary: text glued in front ("x" + "jane@...", as adjacent encoded words join) must
    # not shield the address; replacing the tail of a longer address is the safe mistake.
    local, _, domain = address.rpartition("@")
    base = local.split("+", 1)[0]
    return rf"(?i:{re.escape(base)}(?:\+[^@\s<>\"']*)?@{re.escape(domain)}(?![\w-]|\.\w))"


def _name_patterns(name: str) -> list[str]:
    tokens = [t for t in re.split(r"\s+", name.strip()) if t]
    patterns: list[str] = []
    if len(tokens) > 1:
        full = _GAP.join(_word(t) for t in tokens)
        last_first = _word(tokens[-1]) + r",?" + _GAP + _GAP.join(_word(t) for t in tokens[:-1])
        patterns.append(f"(?i:{_bounded(full)})")
        patterns.append(f"(?i:{_bounded(last_first)})")
    for token in sorted(set(tokens), key=len, reverse=True):
        if len(token) < 2:
            continue
        forms = set(_variants(token)) | {v.upper() for v in _variants(token)}
        if len(tokens) == 1:
            patterns.append(f"(?i:{_bounded(_word(token))})")
        else:
            alternatives = "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
            patterns.append(_bounded(f"(?:{alternatives})"))
    return patterns


class Scrubber:
    """Replaces the identities it was built with; build one per message (cheap)."""

    def __init__(self, identities: Iterable[Identity]) -> None:
        replacements: list[tuple[str, str]] = []
        people = list(identities)
        for person in people:  # addresses first: they contain name-like words
            replacements.append((_address_pattern(person.email), person.alias_address))
        for person in people:
            replacements.extend((pattern, person.handle) for pattern in _name_patterns(person.name))
        self._replacements = [r for _, r in replacements]
        # A lookahead on the characters any match can start with lets the engine skip most positions
        # at once instead of trying every alternative there (the scrub runs on every part).
        starts = {c for person in people for word in [person.email, *person.name.split()]
                  for v in _variants(word) for c in (v[:1].lower(), v[:1].upper()) if c}
        first = "[" + "".join(re.escape(c) for c in sorted(starts)) + "]"
        alternatives = "|".join(f"(?P<g{i}>{p})" for i, (p, _) in enumerate(replacements))
        self._pattern = re.compile(f"(?={first})(?:{alternatives})")

    def _substitute(self, match: re.Match[str]) -> str:
        return self._replacements[int(match.lastgroup[1:])]  # type: ignore[index]

    def text(self, value: str) -> str:
        """Scrub plain text (also the decoded value of a header)."""
        return self._pattern.sub(self._substitute, decode_encoded_words(value))

    def html(self, value: str) -> str:
        """Scrub HTML source: decode letter entities and mailto: escapes first, then scrub."""
        value = _MAILTO.sub(lambda m: unquote(m.group(0)), decode_letter_entities(value))
        return self.text(value)

    def calendar(self, value: str) -> str:
        """Scrub iCalendar text: unfold continuation lines first so no address is split."""
        return self.text(re.sub(r"\r?\n[ \t]", "", value))

    def found_in(self, value: str) -> bool:
        return self._pattern.search(value) is not None


def decode_letter_entities(source: str) -> str:
    """Turn entities that stand for letters, digits and address punctuation back into characters
    (&#106;&#97;ne&#64; -> jane@); entities that matter to HTML (&lt; &amp; &quot;) stay as they are."""
    return _ENTITY.sub(_plain_entity, source)


def _plain_entity(match: re.Match[str]) -> str:
    decoded = html.unescape(match.group(0))
    if len(decoded) == 1 and (decoded.isalnum() or decoded in "@._+-"):
        return decoded
    return match.group(0)


def decode_encoded_words(value: str) -> str:
    """RFC 2047 encoded words in `value` decoded (those that cannot be are left as written)."""
    if "=?" not in value:
        return value

    def decode(match: re.Match[str]) -> str:
        try:
            return writable(str(make_header(decode_header(match.group(0)))))
        except (LookupError, UnicodeError, ValueError, MessageError):  # bad base64, odd charset names
            return match.group(0)

    return _ENCODED_WORD.sub(decode, value)
