"""Text that can be written as UTF-8: surrogate code points replaced by U+FFFD.

Decoders hand them out for input that is not text: UTF-7 (and Python's own unicode_escape, which a
message may name as its charset) decode an unpaired "+2AA-" to a lone surrogate, and the parser keeps
undeclared 8-bit bytes as surrogates. No encoder accepts them, so a part or header holding one could
not be written back (UnicodeEncodeError); every decoded text passes through `writable` first.
"""

from __future__ import annotations

import re

_SURROGATE = re.compile("[\ud800-\udfff]")
ESCAPED_BYTE = re.compile("[\udc80-\udcff]")  # an undeclared 8-bit byte, as the parser keeps it (surrogateescape)


def has_surrogates(text: str) -> bool:
    return _SURROGATE.search(text) is not None


def writable(text: str) -> str:
    """`text` with every surrogate code point replaced by U+FFFD."""
    return _SURROGATE.sub("\ufffd", text) if _SURROGATE.search(text) else text
