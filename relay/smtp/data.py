"""Reading the DATA of one SMTP transaction in bulk: from the 354 to the lone dot, without a Python step per line.

aiosmtpd 1.4.6 reads DATA with one `readuntil(b"\\r\\n")` per line, which for a 20 MB attachment is about 270,000
awaits on the event loop. Here the stream is read in the chunks the socket delivers (`readuntil` on a separator,
and on `LimitOverrunError` the part that cannot contain it, copied once), and the per-line work is done with bytes
operations in C: the line-length check proves a chunk's lines short with one `find` per 500 bytes (splitting it
into lines only when it cannot), a dot that may start a line is looked for with one `memchr` per chunk, and
at the end one `join`, and one `replace` only when a line was stuffed. A message of SPOOL_AT bytes or more waits
for its turn in a temporary file, not in memory (`Spool`). Hand-written because
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
import logging
import tempfile
from collections import deque
from dataclasses import dataclass
from typing import IO

log = logging.getLogger("relay.smtp")

END = b"\r\n.\r\n"
DOT_LINE = b".\r\n"
_END_PREFIXES = (b"\r", b"\r\n", b"\r\n.", b"\r\n.\r")


class Outcome(enum.Enum):
    NOMINAL = "nominal"
    TOO_LONG = "too_long"
    TOO_MUCH = "too_much"
    LOST = "lost"  # the connection ended before the lone dot
    NO_ROOM = "no_room"  # a large message could not be written to its temporary file (Spool.failed)


@dataclass
class Data:
    """What a DATA transfer gave: its outcome and, when NOMINAL, the message: `content`, or for a message of
    SPOOL_AT bytes or more `spool`, an open temporary file that the caller reads when it is ready to work on the
    message (RelaySession: when one of the server's turns for large messages is free), and must `close()` if it
    never does."""

    outcome: Outcome
    content: bytes = b""
    spool: Spool | None = None

    def close(self) -> None:
        if self.spool is not None:
            self.spool.close()
            self.spool = None


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


SPOOL_AT = 1024 * 1024  # bytes of DATA from which a message waits for its turn in a temporary file, not in memory


class Spool:
    """The body of one DATA transfer: in memory up to `spool_at` bytes, then in an unlinked temporary file.

    Ten 20 MB messages arriving at once would otherwise be ten growing copies in the process, and then ten
    whole messages waiting for the one worker and the one writer that take large messages in turn. In a file
    they are the kernel's page cache, not the relay's memory (and a file removed before the kernel writes it
    back never reaches the disk). The file is made with tempfile.TemporaryFile: mode 0600, in TMPDIR, with no
    name once open, so nothing is left behind after a crash. If the file cannot be made
    or written (a full disk), `failed` holds why and the message is dropped: the client is told to try later."""

    def __init__(self, spool_at: int = SPOOL_AT) -> None:
        self.spool_at = spool_at
        self.stuffed = False  # a line starts with a dot: read() unstuffs
        self.failed: OSError | None = None
        self._chunks: list[bytes] = []
        self._size = 0
        self._file: IO[bytes] | None = None

    @property
    def spooled(self) -> bool:
        return self._file is not None

    def add(self, chunk: bytes) -> None:
        try:
            if self._file is not None:
                self._file.write(chunk)
                return
            self._chunks.append(chunk)
            self._size += len(chunk)
            if self._size >= self.spool_at:
                # the file lives until read() or close(), beyond this call: no context manager
                self._file = tempfile.TemporaryFile(prefix="mentor-relay-data-")  # noqa: SIM115
                self._file.writelines(self._chunks)
                self._chunks.clear()
        except OSError as error:
            self.failed = error
            self.close()

    def read(self) -> bytes:
        """The content, unstuffed; the spool is closed."""
        try:
            if self._file is None:
                content = b"".join(self._chunks)
            else:
                self._file.seek(0)
                content = self._file.read()
        finally:
            self.close()
        return unstuff(content) if self.stuffed else content

    def close(self) -> None:
        self._chunks.clear()
        if self._file is not None:
            self._file.close()
            self._file = None


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
                    turns: BulkTurns | None = None, spool_at: int = SPOOL_AT) -> Data:
    """Read DATA up to and including the lone dot; the content is unstuffed and ends with the last line's CRLF.
    With `turns`, every chunk after the first waits for its share of the loop (see BulkTurns). A message of
    `spool_at` bytes or more comes back spooled (Data.spool), the others as `content`.

    Raises CancelledError as the caller's reads would (aiosmtpd cancels the DATA coroutine when the peer goes)."""
    spool = Spool(spool_at)
    try:
        outcome = await _read(reader, size_limit, line_limit, turns, spool)
    except BaseException:
        spool.close()
        raise
    if outcome is not Outcome.NOMINAL:
        spool.close()
        return Data(outcome)
    if spool.spooled:
        return Data(outcome, spool=spool)
    return Data(outcome, spool.read())


async def _read(reader: asyncio.StreamReader, size_limit: int | None, line_limit: int, turns: BulkTurns | None,
                spool: Spool) -> Outcome:
    size = 0
    outcome = Outcome.NOMINAL
    lines = _Lines(line_limit)
    tail = b"\r\n"  # the last (up to 4) bytes consumed; a virtual CRLF precedes the first line
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
            return Outcome.LOST
        finished = found and (separator == END or (tail + piece[-5:])[-5:] == END)
        body = piece[:-3] if finished else piece  # the stream bytes before the lone dot (its CRLF stays)
        size += len(body)
        if outcome is Outcome.NOMINAL:
            if size_limit and size > size_limit:
                outcome = Outcome.TOO_MUCH
            elif lines.too_long(body):
                outcome = Outcome.TOO_LONG
            if outcome is Outcome.NOMINAL:
                spool.add(body)
                if spool.failed is not None:  # dropped; the rest is read and dropped too
                    log.error("a message of over %d bytes could not be spooled: %s", spool.spool_at, spool.failed)
                    outcome = Outcome.NO_ROOM
                elif not spool.stuffed and b"." in body:  # one memchr; base64 has no dots at all
                    spool.stuffed = b"\r\n." in body or b"\r\n." in before + body[:2]
                before = (before + body)[-2:] if len(body) < 2 else body[-2:]
            else:
                spool.close()  # drop what came so far; keep reading to the end
        if finished:
            return outcome
        tail = piece[-4:] if len(piece) >= 4 else (tail + piece)[-4:]


def unstuff(content: bytes) -> bytes:
    """RFC 5321 4.5.2: drop the leading dot of every line (lines end with CRLF). Returns `content` itself when no
    line starts with a dot (no copy)."""
    if content.startswith(b"."):
        content = content[1:]
    if b"\r\n." in content:
        content = content.replace(b"\r\n.", b"\r\n")
    return content
