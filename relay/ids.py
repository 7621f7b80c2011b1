"""Identifiers the relay mints: queue ids, Message-IDs on the relay domain, alias tokens."""

from __future__ import annotations

import re
import secrets
import time
import unicodedata

# Crockford-style alphabet without look-alikes (no i, l, o, u) for tokens people may read aloud.
_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
assert len(_ALPHABET) == 32


def token(length: int) -> str:
    """A random token from an unambiguous alphabet: each character from 5 bits of one random byte (the
    alphabet has 32 characters, so every character is equally likely), one system call per token."""
    return "".join(_ALPHABET[byte & 31] for byte in secrets.token_bytes(length))


def queue_id() -> str:
    """A message's id in the store: time-ordered (milliseconds, hex) plus 45 random bits. A burst of ids in
    one millisecond (a batch of 256 accepted messages and their queue entries) must not collide: with 30
    bits, bench/scale.py's build of a million messages once failed on a duplicate id."""
    return f"{time.time_ns() // 1_000_000:011x}{token(9)}"


def message_id(domain: str) -> str:
    """A fresh RFC 5322 Message-ID on the relay domain, revealing nothing about the sender."""
    return f"<{queue_id()}.{token(10)}@{domain}>"


def slug(text: str) -> str:
    """ASCII, lower-case, dash-separated form of a handle, for the local part of an alias."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    cleaned = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return cleaned[:24] or "member"


def alias_local_part(handle: str) -> str:
    """An alias local part: the handle's slug and a random suffix, so aliases are not guessable."""
    return f"{slug(handle)}.{token(6)}"
