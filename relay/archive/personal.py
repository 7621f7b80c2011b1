"""What counts as personal data in the record's small texts, and taking it out (pure: imports nothing
from the store).

Event details and hold reasons are JSON. Erasing a person (or a pair after its retention period) keeps
their shape and every value a report or the console reads (kinds, roles, handles, counts, times,
decisions), and replaces with ERASED:
- every value under a key that holds what a rule matched in a message (`match`): contact details, names;
- in every string, e-mail addresses and the `known` strings (the people's real names, addresses and
  nicknames), compared without regard to case;
- in free text (a moderator's note or reason, a subject, a delivery error or response), phone-like
  numbers too (7 digits or more).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

ERASED = "[erased]"
MATCH_KEYS = frozenset({"match"})
FREE_TEXT_KEYS = frozenset({"note", "reason", "reject_reason", "subject", "error", "response", "why", "text",
                            "last_error", "reply"})
_EMAIL = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
_PHONE = re.compile(r"(?<!\w)\+?\d(?:[\s().-]*\d){6,}(?!\w)")


class Eraser:
    """Takes the personal data out of strings and JSON values, given the `known` strings of the people."""

    def __init__(self, known: Iterable[str], *, generic: bool = True) -> None:
        """`generic` False: only the known strings are replaced (no `match` values, addresses or phone
        numbers of anyone else)."""
        self.generic = generic
        words = sorted({k.strip() for k in known if k and len(k.strip()) >= 3}, key=len, reverse=True)
        self.known = tuple(words)
        self._known = re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE) if words else None

    def text(self, value: str, *, free: bool = False) -> str:
        """`value` with addresses and known strings (and, for free text, phone numbers) replaced."""
        if self._known is not None:
            value = self._known.sub(ERASED, value)
        if not self.generic:
            return value
        value = _EMAIL.sub(ERASED, value)
        return _PHONE.sub(ERASED, value) if free else value

    def value(self, value: Any, key: str | None = None) -> Any:
        if isinstance(value, str):
            if key in MATCH_KEYS and self.generic:
                return ERASED
            return self.text(value, free=key in FREE_TEXT_KEYS)
        if isinstance(value, list):
            return [self.value(item, key) for item in value]
        if isinstance(value, dict):
            return {name: self.value(item, name) for name, item in value.items()}
        return value

    def json_text(self, text: str, *, events: bool = True) -> str:
        """A JSON document with the personal data taken out, written as the store writes it: an event's
        detail (sorted keys, ASCII) or, `events` False, a hold's reasons (as built, UTF-8); text that is not
        JSON is treated as free text. The same text back when nothing was personal."""
        try:
            parsed = json.loads(text)
        except ValueError:
            return self.text(text, free=True)
        cleaned = self.value(parsed)
        if cleaned == parsed:
            return text
        return json.dumps(cleaned, sort_keys=True, default=str) if events else json.dumps(cleaned, ensure_ascii=False)

    def only_known(self) -> Eraser:
        """The same known strings, without the generic patterns."""
        return Eraser(self.known, generic=False)

    def search_terms(self) -> list[str]:
        """Substrings to look for in stored JSON text: each known string as written and JSON-escaped."""
        terms = set()
        for word in self.known:
            terms.add(word)
            terms.add(json.dumps(word)[1:-1])
        return sorted(terms)
