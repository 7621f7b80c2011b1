"""Reading the DATA of one SMTP transaction in bulk: from the 354 to the lone dot, without a Python step per line.

aiosmtpd 1.4.6 reads DATA with one `readuntil(b"\\r\\n")` per line, which for a 20 MB attachment is about 270,000
awaits on the event loop. Here the stream is read in the chunks the socket delivers (`readuntil` on a separator,
and on `LimitOverrunError` the part that cannot contain it, copied once), and the per-line work is done with bytes
operations in C: the line-length check proves a chunk's lines short with one `find` per 500 bytes (splitting it
into lines only when it cannot), a dot that may start a line is looked for with one `memchr` per chunk, and
at the end one `join`, and one `replace` only when a line was stuffed. Hand-written because
aiosmtpd offers no bulk reader; it keeps aiosmtpd's meaning exactly (tests/test_bulk_data.py compares the two):

- The end is a line holding only "." where lines end with CRLF: `<CRLF>.<CRLF>`, or `.<CRLF>` as the very first
  line. A bare LF or bare CR ends no line, so `\\n.\\n`, `\\n.\\r\\n` and `\\r\\n.\\n` are message bytes, not an end
  (the SMTP-smuggling protection of aiosmtpd 1.4.6).
- Dot-unstuffing: a line (after a CRLF, or the first line) that starts with "." loses that dot.
- Size: the bytes before the end (stuffing dots included, as aiosmtpd counts) above `size_limit` give
  TOO_MUCH (552); a line longer than `line_limit` bytes with its CRLF gives TOO_LONG (500). In both cases the
  rest of the DATA is read and dropped as it comes, so memory stays bounded, and the reply comes after the end.

Why two separators: `readuntil` never consumes part of a separator it could still see, but the bytes we have
consumed may end in a part of `<CRLF>.<CRLF>` (after a false ".<CRLF>" hit, or at the start, where a virtual
CRLF precedes the first line). While that is so we look for `.<CRLF>` and check the two bytes before it
ourselves; otherwise for the whole `<CRLF>.<CRLF>`, which in base64 or ordinary text is rarely there.
"""

from __future__ import annotations

import asyncio
import enum
from collections import deque
from dataclasses import dataclass

END = b"\r\n.\r\n"
DOT_LINE = b".\r\n"
_END_PREFIXES = (b"\r", b"\r\n", b"\r\n.", b"\r\n.\r")


class Outcome(enum.Enum):
    NOMINAL = "nominal"
    TOO_LONG = "too_long"
    TOO_MUCH = "too_much"
    LOST = "lost"  # the connection ended before the lone dot


@dataclass
class Data:
    outcome: Outcome
    content: bytes = b""


class BulkTurns:
    """Shares the event loop among large DATA transfers: at most `per_turn` chunks of them are read per turn of
    the loop, in turn (first come, first served).

    Each chunk of a large transfer costs the loop about a millisecond (a socket read of up to 256 KB, its copy,
    the checks above). With ten 20 MB messages arriving at once, ten such chunks ran in every turn of the loop,
    and every other callback waited for them: a commit's steps, other sessions' replies. Here a transfer past
    its first chunk asks for a turn before each further chunk and queues; at the start of each turn of the
    loop the first `per_turn` in the queue are let go (they read their chunk in the next turn, then queue
    again at the back). A waiting transfer's socket stays paused, so its client is held back by TCP, not by
    our memory. The large messages take the same CPU, spread over more and shorter turns; small messages (one
    chunk) never ask."""

    def __init__(self, per_turn: int = 2) -> None:
        self.per_turn = per_turn
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._scheduled = False

    async def take(self) -> None:
        loop = asyncio.get_running_loop()
        turn: asyncio.Future[None] = loop.create_future()
        self._waiting.append(turn)
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._let_go)
        await turn

    def _let_go(self) -> None:
        self._scheduled = False
        let_go = 0
        while self._waiting and let_go < self.per_turn:
            turn = self._waiting.popleft()
            if not turn.done():  # cancelled meanwhile: its session ended
                turn.set_result(None)
                let_go += 1
        if self._waiting:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._let_go)  # after the ones let go: they run first


class _Lines:
    """Tracks the length of the line under way across chunks (a CRLF may straddle two chunks).

    `too_long` first tries to show cheaply that no line of the chunk is too long (`_all_short`: one `find` per
    half a line limit of bytes, instead of one `bytes` object per line); only a chunk it cannot clear (a long
    line, or a CRLF split by the previous chunk) is split into its lines."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.carry = 0  # bytes of the unterminated line so far (a trailing CR included)
        self.cr_pending = False

    def too_long(self, chunk: bytes) -> bool:
        if not chunk:
            return False
        if not (self.cr_pending and chunk[:1] == b"\n") and self._all_short(chunk):
            return False
        return self._split(chunk)

    def _all_short(self, chunk: bytes) -> bool:
        """True (with the state moved past `chunk`) if every line that `chunk` ends or begins is within the limit.

        The CRLFs of the chunk at p < q with none between make a line of q - p bytes (the CRLF included). With
        step h <= limit / 2, if each stretch [s, s + h) from just after the first CRLF to the last holds the start
        of a CRLF, then between two consecutive CRLFs lie at most two stretches, so q - p <= 2h <= limit. A
        stretch without one proves nothing (the exact split decides)."""
        step = self.limit // 2
        first = chunk.find(b"\r\n")
        if first < 0 or step < 64:
            return False
        last = chunk.rfind(b"\r\n")
        if self.carry + first + 2 > self.limit or len(chunk) - last - 2 > self.limit:
            return False
        find = chunk.find
        for start in range(first + 1, last, step):
            if find(b"\r\n", start, start + step + 1) < 0:
                return False
        self.carry = len(chunk) - last - 2
        self.cr_pending = chunk.endswith(b"\r")
        return True

    def _split(self, chunk: bytes) -> bool:
        parts = chunk.split(b"\r\n")
        longest = 0
        first = len(parts[0])
        if self.cr_pending and chunk[:1] == b"\n":  # the CR of the last chunk and this LF end a line
            longest = self.carry + 1
            first -= 1
            self.carry = 0
        if len(parts) == 1:
            self.carry += first
            longest = max(longest, self.carry)  # already over, even before its CRLF arrives
        else:
            longest = max(longest, self.carry + first + 2, max(map(len, parts[1:-1]), default=-2) + 2)
            self.carry = len(parts[-1])
            longest = max(longest, self.carry)
        self.cr_pending = chunk.endswith(b"\r")
        return longest > self.limit


async def read_data(reader: asyncio.StreamReader, size_limit: int | None, line_limit: int,
                    turns: BulkTurns | None = None) -> Data:
    """Read DATA up to and including the lone dot; the content is unstuffed and ends with the last line's CRLF.
    With `turns`, every chunk after the first waits for its share of the loop (see BulkTurns).

    Raises CancelledError as the caller's reads would (aiosmtpd cancels the DATA coroutine when the peer goes)."""
    chunks: list[bytes] = []
    size = 0
    outcome = Outcome.NOMINAL
    lines = _Lines(line_limit)
    tail = b"\r\n"  # the last (up to 4) bytes consumed; a virtual CRLF precedes the first line
    stuffed = False  # a line starts with a dot (seen chunk by chunk, while each is fresh in the cache)
    before = b"\r\n"  # the last two bytes of the previous body (the virtual CRLF at first)
    while True:
        if turns is not None and size:
            await turns.take()
        separator = DOT_LINE if tail.endswith(_END_PREFIXES) else END
        try:
            piece = await reader.readuntil(separator)
            found = True
        except asyncio.LimitOverrunError as error:
            piece = await reader.read(error.consumed)  # what the buffer holds, copied once (readexactly: twice)
            found = False
        except asyncio.IncompleteReadError:
            return Data(Outcome.LOST)
        finished = found and (separator == END or (tail + piece[-5:])[-5:] == END)
        body = piece[:-3] if finished else piece  # the stream bytes before the lone dot (its CRLF stays)
        size += len(body)
        if outcome is Outcome.NOMINAL:
            if size_limit and size > size_limit:
                outcome = Outcome.TOO_MUCH
            elif lines.too_long(body):
                outcome = Outcome.TOO_LONG
            if outcome is Outcome.NOMINAL:
                chunks.append(body)
                if not stuffed and b"." in body:  # one memchr; base64 has no dots at all
                    stuffed = b"\r\n." in body or b"\r\n." in before + body[:2]
                before = (before + body)[-2:] if len(body) < 2 else body[-2:]
            else:
                chunks.clear()  # drop what came so far; keep reading to the end
        if finished:
            break
        tail = piece[-4:] if len(piece) >= 4 else (tail + piece)[-4:]
    if outcome is not Outcome.NOMINAL:
        return Data(outcome)
    content = b"".join(chunks)
    chunks.clear()
    return Data(Outcome.NOMINAL, unstuff(content) if stuffed else content)


def unstuff(content: bytes) -> bytes:
    """RFC 5321 4.5.2: drop the leading dot of every line (lines end with CRLF). Returns `content` itself when no
    line starts with a dot (no copy)."""
    if content.startswith(b"."):
        content = content[1:]
    if b"\r\n." in content:
        content = content.replace(b"\r\n.", b"\r\n")
    return content
