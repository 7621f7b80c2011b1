"""Keyset pagination: a page is the rows after the last one shown, in a fixed order, read with one indexed
query (never OFFSET, which reads and throws away every row before the page).

A cursor is the sort key of the last row shown, as an opaque URL-safe string; `after` turns it back into a
condition on the columns of that order. Each order ends in a unique column, so no row is seen twice and
none is skipped between pages, whatever is added or decided meanwhile.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, false, or_

PAGE = 50  # rows per page unless asked otherwise
MAX_PAGE = 500


class BadCursor(ValueError):
    """A cursor that this relay did not write (or a page size out of range)."""


def encode(values: Sequence[Any]) -> str:
    plain = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    return base64.urlsafe_b64encode(json.dumps(plain).encode()).decode().rstrip("=")


def decode(cursor: str, kinds: Sequence[type]) -> list[Any]:
    """The sort key in `cursor`, each value of the type in `kinds` (datetime, int or str)."""
    try:
        plain = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(plain, list) or len(plain) != len(kinds):
            raise ValueError("wrong length")
        values: list[Any] = []
        for kind, value in zip(kinds, plain, strict=True):
            if kind is datetime:
                values.append(datetime.fromisoformat(value))
            elif isinstance(value, kind) and not isinstance(value, bool):
                values.append(value)
            else:
                raise ValueError("wrong type")
        return values
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise BadCursor("the page cursor is not one this relay wrote") from exc


def after(columns: Sequence[Any], values: Sequence[Any]) -> Any:
    """Rows whose (columns) come after (values) in ascending order: a OR of prefixes equal, next greater."""
    conditions = []
    for index, column in enumerate(columns):
        equal = [columns[k] == values[k] for k in range(index)]
        conditions.append(and_(*equal, column > values[index]))
    return or_(false(), *conditions)


def page_size(text: str | None, default: int = PAGE) -> int:
    if text is None or text == "":
        return default
    try:
        size = int(text)
    except ValueError as exc:
        raise BadCursor(f"limit must be a whole number from 1 to {MAX_PAGE}") from exc
    if not 1 <= size <= MAX_PAGE:
        raise BadCursor(f"limit must be a whole number from 1 to {MAX_PAGE}")
    return size
