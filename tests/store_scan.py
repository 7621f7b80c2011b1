"""Where strings are left in the store after an erasure: every text and binary column of every table, read
through the store's own types (stored messages are compressed: relay.store.rawbytes), each stored message
decoded as its reader would read it (tests/decode_all.everything: MIME parts, base64 and quoted-printable,
RFC 2047 words, attachments), each JSON text with its \\u escapes undone. A search of the file's bytes, or of
the raw column, misses a name in a base64 body; this one does not."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from sqlalchemy import LargeBinary, String, Text, select

from relay.store.rawbytes import MessageBytes
from relay.store.schema import metadata
from tests.decode_all import everything
from tests.support import Layout, rows


def _readings(value: Any) -> list[str]:
    if isinstance(value, bytes | bytearray | memoryview):
        return everything(bytes(value)) if value else []
    if isinstance(value, str):
        found = [value]
        with contextlib.suppress(ValueError):
            found.append(json.dumps(json.loads(value), ensure_ascii=False))
        return found
    return []


def _textual(column: Any) -> bool:
    return isinstance(column.type, String | Text | LargeBinary | MessageBytes)


async def traces(layout: Layout, *needles: str) -> list[tuple[str, str, str, str]]:
    """(table, row key, column, needle) for each needle found, case-insensitively, anywhere in the store."""
    wanted = [n.casefold() for n in needles]
    found = []
    for table in metadata.sorted_tables:
        columns = [c for c in table.columns if _textual(c)]
        if not columns:
            continue
        key = list(table.primary_key.columns)
        for row in await rows(layout, select(*key, *columns)):
            ident = "/".join(str(row._mapping[k]) for k in key)
            for column in columns:
                text = "\n".join(_readings(row._mapping[column])).casefold()
                found += [(table.name, ident, column.name, needle) for needle in wanted if needle in text]
    return found
