"""What the store can hold: an id is an INTEGER column, a signed 32-bit integer on PostgreSQL (64-bit on
SQLite), so a number from outside (a URL, a query string, a command-line argument) becomes an id here, up to
the smaller of the two, or not at all. A bigger one names nothing; handed to the database it would overflow
(an error, not "not found")."""

from __future__ import annotations

MAX_ID = 2**31 - 1
_DIGITS = len(str(MAX_ID))


def store_id(text: str) -> int | None:
    """`text` as an id the store can hold (0 to MAX_ID), or None: not ASCII digits, or too big. Thousands of
    digits are refused by their length, before int() (which refuses more than 4300 with a ValueError)."""
    if not text or not text.isascii() or not text.isdigit():
        return None
    digits = text.lstrip("0") or "0"
    if len(digits) > _DIGITS:
        return None
    value = int(digits)
    return value if value <= MAX_ID else None
