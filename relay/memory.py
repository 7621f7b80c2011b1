"""Give the memory of large messages back to the operating system when they are done.

A 20 MB message is held as a few 20 MB `bytes` objects for a moment. glibc's malloc serves such a block with
mmap, and munmaps it on free, but its *dynamic* mmap threshold then rises to the size of the freed block
(up to 32 MB on 64-bit), so the next large blocks come from the heap and, once freed, stay there: after ten
20 MB messages the relay kept about 600-800 MB (bench/stall.py). Fixing the threshold with mallopt turns the
dynamic rise off: every block of 256 KB or more is mmapped and returned on free. Small objects are unaffected.
`trim()` (malloc_trim) hands back free heap pages as well; the service calls it after large messages.

Hand-written with ctypes because the stdlib has no binding; on a libc without mallopt (musl, macOS) both are
no-ops.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger("relay.memory")

M_MMAP_THRESHOLD = -3  # glibc malloc.h
LARGE_BLOCK = 256 * 1024


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


_LIBC = _libc()


def return_large_blocks() -> bool:
    """Make glibc mmap every block of LARGE_BLOCK bytes or more (and so unmap it on free). True if applied."""
    if _LIBC is None:
        return False
    return bool(_LIBC.mallopt(M_MMAP_THRESHOLD, LARGE_BLOCK))


def trim() -> None:
    """Return free heap memory at the top of every arena to the operating system (glibc malloc_trim)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
