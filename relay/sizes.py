"""Sizes as admins write them in YAML: "512KB", "10MB", "1.5 MiB" (or a number of bytes).

KB, MB and GB are powers of 1000; KiB, MiB and GiB powers of 1024. Units are case-insensitive.
"""

from __future__ import annotations

import re

_UNITS = {
    "": 1, "b": 1,
    "kb": 1000, "mb": 1000**2, "gb": 1000**3,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3,
}  # fmt: skip
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$", re.IGNORECASE)
_EXPECTED = "expected a size such as 512KB, 10MB or 1.5 MiB"
MAX_SIZE = 1000**4  # 1 TB: larger is a typo (and 1e400 bytes overflowed)


def parse_size(value: object) -> int:
    """Parse a size into bytes; raises ValueError with a message fit for a config error."""
    if isinstance(value, bool):
        raise ValueError(_EXPECTED)
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a size cannot be negative")
        if value > MAX_SIZE:
            raise ValueError("a size can be at most 1TB")
        return value
    if isinstance(value, str):
        match = _PATTERN.match(value)
        if match and match.group(2).lower() in _UNITS:
            size = float(match.group(1)) * _UNITS[match.group(2).lower()]
            if not size <= MAX_SIZE:  # also infinity
                raise ValueError("a size can be at most 1TB")
            return round(size)
    raise ValueError(f"{_EXPECTED}, got {value!r}")
