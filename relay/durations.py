"""Durations as admins write them in YAML: "90s", "5m", "48h", "7d", "2w" (or a number of seconds)."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


def parse_duration(value: object) -> timedelta:
    """Parse a duration; raises ValueError with a message fit for a config error."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30m, 48h or 7d")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return timedelta(seconds=value)
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str):
        match = _PATTERN.match(value)
        if match:
            return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    raise ValueError(f"expected a duration such as 30m, 48h or 7d, got {value!r}")
