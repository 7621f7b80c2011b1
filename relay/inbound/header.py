"""Reading what intake needs from a message before anything else: its sender, its Message-ID, its
loop marker, and the hash of its body (which recognises a resend that gained Received lines).

Pure functions of the raw bytes; no store, no network.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import getaddresses

from relay.anonymize.headers import header_text
from relay.anonymize.message import parse

THREAD_THRESHOLD = 512 * 1024  # parse larger messages in a worker thread, off the event loop


@dataclass(frozen=True)
class Header:
    """What intake reads from a message's header before anything else."""

    message: EmailMessage
    sender: str | None  # the first From: address
    own_id: str  # the Message-ID as written
    loop_marker: str  # X-Loop, case-folded

    def looped(self, domain: str) -> bool:
        """Our own message came back: it carries our Message-ID or our X-Loop."""
        return self.own_id.casefold().endswith(f"@{domain}>") or domain in self.loop_marker.split()


def read_header(raw: bytes) -> Header:
    message = parse(raw)
    return Header(message, first_address(message), (header_text(message, "Message-ID") or "").strip(),
                  (header_text(message, "X-Loop") or "").casefold())


def first_address(message: EmailMessage) -> str | None:
    value = header_text(message, "From")
    if not value:
        return None
    for _, address in getaddresses([value]):
        if "@" in address:
            return address.strip()
    return None


def body_hash(raw: bytes) -> str:
    """Hash of the body only: a resend through another hop may gain Received lines, not a new body."""
    for separator in (b"\r\n\r\n", b"\n\n"):
        index = raw.find(separator)
        if index >= 0:
            return hashlib.sha256(raw[index + len(separator):]).hexdigest()
    return hashlib.sha256(raw).hexdigest()
