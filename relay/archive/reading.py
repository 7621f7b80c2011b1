"""Reading a stored mail the relay wrote as its reader would, to find whom it names (pure: imports nothing
from the store).

An erasure empties the notices that name the erased person to somebody else (relay.archive.erasure
`naming_notices`): the stored bytes are MIME (base64, quoted-printable, RFC 2047 and RFC 2231 words), so
a search of the bytes misses a name or address in them. `Reading` holds every string a reader could see —
each header decoded, each text part in its charset (HTML entities undone), each other part's payload
decoded as UTF-8, the file names — case-folded, with runs of white space made one space (a name may be
wrapped across lines), and whether the mail carries a conversation (the farewell's .mbox attachment:
relay.archive.export.attach_conversation).
"""

from __future__ import annotations

import email
import html
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from email import policy
from email.message import Message
from functools import lru_cache

_SPACE = re.compile(r"\s+")
CONVERSATION_TYPE = "application/mbox"


def normal(text: str) -> str:
    """`text` as it is compared: NFC, case-folded, each run of white space one space."""
    return _SPACE.sub(" ", unicodedata.normalize("NFC", text).casefold())


@dataclass(frozen=True)
class Reading:
    text: str  # normal(): every string of the mail, joined by newlines
    conversation: bool  # it carries a conversation (an application/mbox part)

    def names(self, terms: Iterable[str]) -> bool:
        """One of `terms` (names, addresses) is in the mail as a whole word (or words), compared as `normal`
        compares: "Sam" is not found in "same"."""
        pattern = matcher(tuple(terms))
        return pattern is not None and pattern.search(self.text) is not None


@lru_cache(maxsize=16)
def matcher(terms: tuple[str, ...]) -> re.Pattern[str] | None:
    """A pattern finding any of `terms` (normal()) as whole words; None without terms."""
    words = sorted({normal(term).strip() for term in terms if term.strip()}, key=len, reverse=True)
    if not words:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(re.escape(word) for word in words) + r")(?!\w)")


def _strings(part: Message) -> Iterator[str]:
    for name, value in part.items():
        yield f"{name}: {value}"  # the default policy decodes RFC 2047 words
    filename = part.get_filename()
    if filename:
        yield filename
    if part.is_multipart():
        return
    try:
        payload = part.get_payload(decode=True)
    except Exception:  # a broken transfer encoding: what is there, undecoded
        payload = None
    if not isinstance(payload, bytes):
        raw = part.get_payload()
        yield raw if isinstance(raw, str) else ""
        return
    charset = part.get_content_charset() or "utf-8"
    try:
        text = payload.decode(charset, "replace")
    except LookupError:
        text = payload.decode("utf-8", "replace")
    yield text
    if part.get_content_type() == "text/html":
        yield html.unescape(text)


def read(raw: bytes) -> Reading:
    """The strings of the stored mail `raw` (a message/rfc822 part inside is read too)."""
    message = email.message_from_bytes(raw, policy=policy.default)
    found: list[str] = []
    conversation = False
    for part in message.walk():
        conversation = conversation or part.get_content_type() == CONVERSATION_TYPE
        try:
            found.extend(_strings(part))
        except Exception:  # a header or part the parser cannot render: its bytes are read below
            continue
    found.append(raw.decode("utf-8", "replace"))
    return Reading("\n".join(normal(text) for text in found), conversation)
