"""anonymize(): one parsed participant message in, the message the partner will receive out."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from email import errors, policy
from email.feedparser import FeedParser
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser

from relay.anonymize.headers import header_text, message_ids, own_display_names, rewrite_outbound_headers, utc_date
from relay.anonymize.mailpolicy import POLICY
from relay.anonymize.parts import MAX_DEPTH, Unprocessable, Walk, scrub_tree
from relay.anonymize.scrub import Identity, Scrubber

_HEADER_PARSER = BytesParser(policy=policy.compat32)  # reads header values as plain strings, never fails



class Unreadable(errors.MessageDefect):
    """The parser could not read the MIME tree; only the top-level header was kept (see parse)."""


def parse(raw: bytes) -> EmailMessage:
    """Parse a message; never raises.

    The stdlib parser fails on two kinds of input: nesting deep enough to reach the recursion limit
    (it recurses once per level: ~1,000 levels, a 70 kB message), and a Content-Type its header
    parser chokes on (IndexError on "text/plain; name*", for one). Such a message keeps only its
    top-level header, so the intake can still check the sender, and is marked Unreadable, so that
    anonymize() refuses it as Unprocessable.
    """
    try:
        message = _parse_bytes(raw)
    except RecursionError:
        message = _header_only(raw, Unreadable(f"MIME nesting deeper than {MAX_DEPTH} levels"))
    except (ValueError, IndexError, TypeError, AttributeError, LookupError):
        message = _header_only(raw, Unreadable("a Content-Type header could not be read"))
    assert isinstance(message, EmailMessage)
    return message


PIECE = 64 * 1024  # bytes of the message decoded and fed to the parser at a time


def _parse_bytes(raw: bytes) -> EmailMessage:
    """What BytesParser(policy=POLICY).parsebytes(raw) gives, without its two copies of the whole message.

    parsebytes decodes all of `raw` into one str (ASCII, bytes above 127 as surrogates: one character per
    byte) and reads that through a StringIO, which keeps its own copy at four bytes per character: for a 20 MB
    message, 100 MB more at once, most of a worker's peak. Decoded and fed a piece at a time, the same
    FeedParser meets the same characters (the decoding maps each byte on its own, so a piece may end
    anywhere)."""
    feeder = FeedParser(policy=POLICY)
    for start in range(0, len(raw), PIECE):
        feeder.feed(raw[start:start + PIECE].decode("ascii", "surrogateescape"))
    message = feeder.close()
    assert isinstance(message, EmailMessage)
    return message


def _header_only(raw: bytes, defect: Unreadable) -> EmailMessage:
    message = EmailMessage(policy=POLICY)
    for name, value in _HEADER_PARSER.parsebytes(raw, headersonly=True).raw_items():
        message.set_raw(name, value)  # parsed on access only: header_text() survives what fails
    message.defects.append(defect)
    return message


@dataclass(frozen=True)
class Face:
    """How a copy presents itself when it is not a pair's (a group's: the sender's handle and the group's
    name in From, the group's alias in Reply-To and To; a private word's: the sender's alias in all three)."""

    sender: Address
    reply_to: Address
    to: Address


@dataclass(frozen=True)
class References:
    """The ids a participant's message refers to, as its own client wrote them."""

    in_reply_to: list[str]
    references: list[str]

    @classmethod
    def of(cls, message: EmailMessage) -> References:
        return cls(message_ids(message, "In-Reply-To"), message_ids(message, "References"))

    def mapped(self, thread_map: dict[str, str]) -> tuple[list[str], list[str]]:
        """In-Reply-To and References for a recipient: the ids their own client knows (others dropped)."""
        in_reply_to = [thread_map[i] for i in self.in_reply_to if i in thread_map]
        references = list(dict.fromkeys(thread_map[i] for i in self.references if i in thread_map))
        if in_reply_to and in_reply_to[-1] not in references:
            references.append(in_reply_to[-1])
        return in_reply_to[-1:], references


def anonymize(
    message: EmailMessage,
    *,
    sender: Identity,
    recipient: Identity,
    thread_map: dict[str, str],
    new_message_id: str,
    now: datetime,
    domain: str,
    others: Sequence[Identity] = (),
    face: Face | None = None,
) -> list[tuple[str, str]]:
    """Rewrite `message` in place for the recipient (write it out with `serialise`).

    thread_map maps ids the sender's message refers to onto ids the recipient's client knows;
    references that are not in it are dropped. `others`: the other members of a group, whose real
    names and addresses must disappear too (a pair has none); `face`: a group's From/Reply-To/To. The display
    name the sender's own From gives (a school directory's "Doe, Jane (LHS Student - Grade 9)") is matched
    in this message like the sender's name (Identity.display_names).
    Returns the attachments that could not be cleaned (file name, reason): each was replaced by a
    note, and the message must be held for a moderator.
    """
    for defect in message.defects:
        if isinstance(defect, Unreadable):
            raise Unprocessable(str(defect))
    displays = own_display_names(message, (sender.email, *sender.other_emails), sender.name)
    if displays:
        sender = replace(sender, display_names=(*sender.display_names, *displays))
    scrubber = Scrubber([sender, recipient, *others], content_ids=remint_content_ids(message, domain),
                        cleans_attachments=True)
    in_reply_to, references = References.of(message).mapped(thread_map)
    date = utc_date(message, now)
    walk = Walk(message, scrubber)
    # read before the walk, while the parts still declare their charsets (hints at that of raw 8-bit bytes)
    subject = header_text(message, "Subject", scrubber.found_in, walk.hints)
    scrub_tree(message, scrubber, walk=walk)
    rewrite_outbound_headers(
        message,
        scrubber=scrubber,
        sender=face.sender if face else _address(sender),
        reply_to=face.reply_to if face else None,
        recipient=face.to if face else _address(recipient),
        new_message_id=new_message_id,
        in_reply_to=in_reply_to,
        references=references,
        date=date,
        domain=domain,
        subject=subject,
    )
    return list(scrubber.refused)


def remint_content_ids(message: EmailMessage, domain: str) -> dict[str, str]:
    """Give every part's Content-ID a new value on the relay's domain (the sender's names their host);
    returns old -> new (lower case, without brackets) for the cid: references in HTML."""
    mapping: dict[str, str] = {}
    for part in message.walk():
        value = part.get("Content-ID") if "Content-ID" in part else None
        if value is None:
            continue
        old = str(value).strip().strip("<>").strip()
        new = mapping.setdefault(old.lower(), f"{secrets.token_hex(12)}@{domain}")
        del part["Content-ID"]
        part["Content-ID"] = f"<{new}>"
    for part in message.walk():
        if part.get_content_type() == "multipart/related" and part.get_param("start") is not None:
            start = str(part.get_param("start")).strip("<>").lower()
            if start in mapping:
                part.set_param("start", f"<{mapping[start]}>")
            else:  # names no part: it only carries the sender's host
                part.del_param("start")
    return mapping


def serialise(message: EmailMessage) -> bytes:
    """The message's bytes; a message the generator cannot write out is Unprocessable."""
    try:
        return message.as_bytes(policy=POLICY)
    except (ValueError, TypeError, LookupError, UnicodeError, AttributeError, IndexError):
        raise Unprocessable("the message could not be written out again") from None


def _address(identity: Identity) -> Address:
    local, _, domain = identity.alias_address.rpartition("@")
    return Address(display_name=identity.handle, username=local, domain=domain)
