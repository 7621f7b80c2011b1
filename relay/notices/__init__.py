"""Notices: the mail the relay writes itself (to senders, moderators, coordinators).

Subjects and bodies come from Jinja2 templates in relay/notices/templates/, translated through gettext
catalogs (rendering.py, languages in relay/languages.py; programs.py picks a recipient's language and
the program's own templates). A notice is an ordinary
outbound queue entry: From the program's notices address on the relay domain (a participant's with Reply-To
help@: `help_address`), Auto-Submitted so that
out-of-office robots do not answer it, X-Loop so that it cannot loop, and In-Reply-To the sender's own
message when it is about one, so it threads where they will look. Notices never name the partner's
real identity: templates only receive handles, subjects and reasons.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from relay import ids
from relay.languages import html_lang
from relay.notices import mime
from relay.notices.rendering import TEMPLATES, Rendered, notice, render
from relay.store.messages import OutboundEntry
from relay.store.outbound import queue_outbound

__all__ = ["TEMPLATES", "Notice", "Rendered", "as_entry", "compose", "help_address", "message_bytes", "notice", "queue",
           "render"]


@dataclass(frozen=True)
class Notice:
    rcpt: str
    raw: bytes
    message_id: str


def as_entry(notice: Notice) -> OutboundEntry:
    """The notice as an outbound entry of an accepted message's write (see store.messages.Accepted)."""
    return OutboundEntry(rcpt=notice.rcpt, out_message_id=notice.message_id, raw=notice.raw, kind="notice")


async def queue(connection: AsyncConnection, notice: Notice, *, domain: str, now: datetime,
                pair_id: int | None = None, message_id: str | None = None) -> None:
    """Put a notice on the outbound queue inside the caller's transaction."""
    await queue_outbound(connection, kind="notice", rcpt=notice.rcpt, raw=notice.raw,
                         out_message_id=notice.message_id, now=now, domain=domain, pair_id=pair_id,
                         message_id=message_id)


def help_address(domain: str) -> str:
    """The Reply-To of every notice to a participant: their answer to the relay's own mail (a farewell with a
    disclosure in it) goes to help@, which the coordinator reads and the policy reads for urgent signs
    (relay/inbound/program/help.py). A reply to notices@ itself is taken as help@ mail too
    (relay/inbound/program/mail.py). Staff notices keep their own Reply-To, or none."""
    return f"help@{domain}"


def compose(
    *,
    domain: str,
    program_name: str,
    to: str,
    subject: str,
    body: str,
    now: datetime,
    in_reply_to: str | None = None,
    reply_to: str | None = None,
    headers: dict[str, str] | None = None,
    sender: Address | None = None,
    html: str | None = None,
    attachments: list[tuple[bytes, str, str]] | None = None,
    language: str | None = None,
) -> Notice:
    """A notice from the program (`attachments`: (data, "type/subtype", file name) each).

    A text-only notice is written by relay/notices/mime.py, a notice with HTML or attachments through
    EmailMessage (`message_bytes`); both give the same bytes for the same notice."""
    message_id = ids.message_id(domain)
    fields = _headers(domain=domain, program_name=program_name, to=to, subject=subject, now=now,
                      message_id=message_id, in_reply_to=in_reply_to, reply_to=reply_to, headers=headers,
                      sender=sender)
    names = [name.lower() for name, _ in fields]
    if (html is None and not attachments and len(set(names)) == len(names)
            and not any(name.startswith("content-") or name == "mime-version" for name in names)):
        raw = mime.text_notice(fields, body, content_language=html_lang(language) if language else None,
                               max_line_length=998 if _unfolded(subject) else 78)
    else:
        raw = message_bytes(fields, subject=subject, body=body, html=html, attachments=attachments,
                            language=language)
    return Notice(rcpt=to, raw=raw, message_id=message_id)


def _unfolded(subject: str) -> bool:
    # Python folds an ASCII header that is a little too long for its first line (69 to 77 characters of
    # Subject) by moving all of it to a continuation line, and parsers then read it with a leading space
    # (" URGENT: ..."). ASCII headers are not folded at all (RFC 5322 allows lines up to 998 characters);
    # anything else keeps the default folding of its encoded words.
    return subject.isascii() and len(subject) < 900


def _headers(*, domain: str, program_name: str, to: str, subject: str, now: datetime, message_id: str,
             in_reply_to: str | None, reply_to: str | None, headers: dict[str, str] | None,
             sender: Address | None) -> list[tuple[str, str]]:
    """A notice's headers before its content's, in order."""
    sender = sender or Address(display_name=program_name, username="notices", domain=domain)
    fields = [("From", str(sender)), ("To", to)]
    if reply_to:
        fields.append(("Reply-To", reply_to))
    fields += [("Subject", subject), ("Date", format_datetime(now)), ("Message-ID", message_id)]
    if in_reply_to:
        fields += [("In-Reply-To", in_reply_to), ("References", in_reply_to)]
    fields += [("Auto-Submitted", "auto-generated"), ("X-Loop", domain)]
    return fields + list((headers or {}).items())


def message_bytes(fields: list[tuple[str, str]], *, subject: str, body: str, html: str | None = None,
                  attachments: list[tuple[bytes, str, str]] | None = None, language: str | None = None) -> bytes:
    """The notice built as an EmailMessage (policy.default): `fields` (`_headers`), the text, the HTML
    alternative and the attachments."""
    message = EmailMessage()
    for name, value in fields:
        message[name] = value
    message.set_content(body)
    if html is not None:
        message.add_alternative(html, subtype="html")
    for data, content_type, filename in attachments or []:
        maintype, _, subtype = content_type.partition("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    if language:  # after the parts: set_content drops the Content-* headers it finds
        message["Content-Language"] = html_lang(language)
    if _unfolded(subject):
        return message.as_bytes(policy=message.policy.clone(max_line_length=998))
    return message.as_bytes()
