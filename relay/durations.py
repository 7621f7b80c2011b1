"""Durations as admins write them in YAML: "90s", "5m", "48h", "7d", "2w" (or a number of seconds).

A duration is at most MAX_DURATION (a hundred years: safeguarding records may be kept for decades); far longer
ones mean a typo and overflow
date arithmetic (`review_within: 999999999999999d` used to end `check-config` in a traceback).
"""

from __future__ import annotations

import math
import re
from datetime import timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PATTERN = re.compile(r"^\s*(\d{1,30}(?:\.\d{1,30})?)\s*([smhdw])\s*$")
MAX_DURATION = timedelta(days=36525)
_TOO_LONG = f"a duration can be at most {MAX_DURATION.days}d (a hundred years)"


def _bounded(seconds: float) -> timedelta:
    if not math.isfinite(seconds):
        raise ValueError("expected a duration such as 30m, 48h or 7d, not infinity or NaN")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(_TOO_LONG)
    return timedelta(seconds=seconds)


def parse_duration(value: object) -> timedelta:
    """Parse a duration; raises ValueError with a message fit for a config error."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30m, 48h or 7d")
    if isinstance(value, int | float):
        try:
            return _bounded(float(value))
        except OverflowError:  # an int too large for a float
            raise ValueError(_TOO_LONG) from None
    if isinstance(value, timedelta):
        if value > MAX_DURATION:
            raise ValueError(_TOO_LONG)
        return value
    if isinstance(value, str):
        match = _PATTERN.match(value)
        if match:
            return _bounded(float(match.group(1)) * _UNITS[match.group(2)])
        if re.match(r"^\s*\d{31,}", value):
            raise ValueError(_TOO_LONG)
    raise ValueError(f"expected a duration such as 30m, 48h or 7d, got {value!r}")
