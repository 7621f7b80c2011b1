"""Bounces: signed per-message envelope senders (VERP), and what a delivery status report does.

Every outbound message leaves with the envelope sender bounce+<queue entry>.<signature>@<domain>; the
signature is an HMAC of the entry's id under a per-installation secret, so a bounce names exactly one
message and nobody can make one up. A report to a valid address is read with flufl.bounce and matched
to its entry: a permanent failure is recorded, the original sender is told (by handle, with no
report text: Final-Recipient carries the real address), and after HARD_BOUNCE_LIMIT such failures the
member is marked undeliverable and the coordinator told. A delay is only recorded. A report to an
unsigned or forged address is refused at RCPT and recorded, never forwarded.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

HARD_BOUNCE_LIMIT = 3
_LOCAL = re.compile(r"^bounce\+([0-9a-z]{8,40})\.([a-z2-7]{16})$")


def signature(value: str, secret: str) -> str:
    """The HMAC tag of the relay's signed addresses: bounce addresses here, help reply addresses in
    relay/inbound/program/help.py."""
    digest = hmac.new(secret.encode(), value.encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode().lower()[:16]


def signed(value: str, tag: str, secret: str) -> bool:
    """Whether `tag` is the signature of `value` (compared in constant time)."""
    return bool(secret) and hmac.compare_digest(tag, signature(value, secret))


def bounce_address(entry_id: str, secret: str, domain: str) -> str:
    return f"bounce+{entry_id}.{signature(entry_id, secret)}@{domain}"


def is_bounce_local_part(local_part: str) -> bool:
    return local_part.lower().startswith("bounce+")


def entry_of(local_part: str, secret: str) -> str | None:
    """The queue entry a bounce address names, or None when it is malformed or not ours."""
    match = _LOCAL.match(local_part.lower())
    if match is None:
        return None
    entry_id, tag = match.groups()
    return entry_id if signed(entry_id, tag, secret) else None

