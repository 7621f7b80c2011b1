"""The email policy the relay parses and writes with: policy.default, with parsed headers cached.

policy.default re-parses a header every time it is read (get_content_type() alone parses
Content-Type again on each call), which made header handling most of the cost of anonymising a
small message. Parsed header objects are immutable, so the same (name, value) can share one parse;
the cache is bounded and simply starts again when full.
"""

from __future__ import annotations

from email import policy
from email.headerregistry import BaseHeader, HeaderRegistry

_LIMIT = 4096


class CachedHeaderRegistry(HeaderRegistry):
    def __init__(self) -> None:
        super().__init__()
        self._parsed: dict[tuple[str, str], BaseHeader] = {}

    def __call__(self, name: str, value: str) -> BaseHeader:
        if not isinstance(value, str):
            return super().__call__(name, value)
        key = (name, value)
        header = self._parsed.get(key)
        if header is None:
            header = super().__call__(name, value)
            if len(self._parsed) >= _LIMIT:
                self._parsed.clear()
            self._parsed[key] = header
        return header


POLICY = policy.default.clone(header_factory=CachedHeaderRegistry())
