"""How message bytes are kept in the store: compressed with zlib, handed back byte-exact.

`messages.raw` (as received) and `outbound.raw` (as delivered) are `MessageBytes` columns: every write
goes through `encode` and every read through `decode` — the column type does both, so each query that
selects a raw column (delivery, release, export, verify, digests) gets the very bytes that were
written, and the archive chain's content hashes, which are computed over those bytes, stay valid.

Stored form (chosen per value, told apart by the first bytes):
    b""                      empty (a body purged by retention: chain.TOMBSTONE)
    b"\\x00z" + zlib data     compressed
    b"\\x00p" + bytes         kept as is, escaped because the bytes themselves start with a NUL
    anything else            kept as is (rows written before migration 0013, large or incompressible values)
A message never starts with "\\x00" in practice, so the rows written before compression needed no rewrite
except the (escaped by migration 0013) few that might.

Hand-written rather than a library: the stdlib's zlib is the compressor; what is ours is only the
two-byte tag that tells the stored forms apart. Values of COMPRESS_MAX bytes or more are kept as is:
compressing them would hold the event loop (group commits run there) for tens of milliseconds, and what
makes them large (base64 attachments, already-compressed images) gains little.
"""

from __future__ import annotations

import zlib
from typing import Any

from sqlalchemy import LargeBinary
from sqlalchemy.types import TypeDecorator

COMPRESSED = b"\x00z"
ESCAPED = b"\x00p"
COMPRESS_MAX = 256 * 1024
LEVEL = 1  # level 6 costs ~3x the CPU (group commits run on the event loop) for ~3 % smaller rows


def encode(data: bytes) -> bytes:
    """The stored form of `data` (see the module docstring)."""
    data = bytes(data)
    if not data:
        return data
    if len(data) < COMPRESS_MAX:
        packed = zlib.compress(data, LEVEL)
        if len(packed) + len(COMPRESSED) < len(data):
            return COMPRESSED + packed
    return ESCAPED + data if data[:1] == b"\x00" else data


def decode(stored: bytes) -> bytes:
    """The bytes that `encode` was given."""
    stored = bytes(stored)
    if stored[:1] != b"\x00":
        return stored
    if stored[:2] == COMPRESSED:
        return zlib.decompress(stored[2:])
    if stored[:2] == ESCAPED:
        return stored[2:]
    raise ValueError("stored message bytes carry an unknown tag")


class Encoded(bytes):
    """Bytes already in their stored form (`encode`d before the write transaction, off the event loop, as
    the nudge sweep does): MessageBytes stores them as they are."""


def encoded(data: bytes) -> Encoded:
    return Encoded(encode(data))


class MessageBytes(TypeDecorator[bytes]):
    """A LargeBinary column whose values are stored through `encode` and read through `decode`."""

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: bytes | None, dialect: Any) -> bytes | None:
        if value is None or isinstance(value, Encoded):
            return value
        return encode(value)

    def process_result_value(self, value: bytes | None, dialect: Any) -> bytes | None:
        return None if value is None else decode(value)
