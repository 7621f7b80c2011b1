"""anonymize(): one parsed participant message in, the message the partner will receive out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser

from relay.anonymize.headers import message_ids, rewrite_outbound_headers, utc_date
from relay.anonymize.parts import Unprocessable, scrub_tree
from relay.anonymize.scrub import Identity, Scrubber

_PARSER = BytesParser(policy=policy.default)


@dataclass(frozen=True)
class Outgoing:
    raw: bytes
    message_id: str


def parse(raw: bytes) -> EmailMessage:
    message = _PARSER.parsebytes(raw)
    assert isinstance(message, EmailMessage)
    return message


def anonymize(
    message: EmailMessage,
    *,
    sender: Identity,
    recipient: Identity,
    thread_map: dict[str, str],
    new_message_id: str,
    now: datetime,
    domain: str,
) -> Outgoing:
    """Rewrite `message` in place for the recipient and serialise it.

    thread_map maps ids the sender's message refers to onto ids the recipient's client knows;
    references that are not in it are dropped.
    """
    scrubber = Scrubber([sender, recipient])
    in_reply_to = [thread_map[i] for i in message_ids(message, "In-Reply-To") if i in thread_map]
    references = list(dict.fromkeys(thread_map[i] for i in message_ids(message, "References") if i in thread_map))
    if in_reply_to and in_reply_to[-1] not in references:
        references.append(in_reply_to[-1])
    date = utc_date(message, now)
    scrub_tree(message, scrubber)
    rewrite_outbound_headers(
        message,
        scrubber=scrubber,
        sender=_address(sender),
        recipient=_address(recipient),
        new_message_id=new_message_id,
        in_reply_to=in_reply_to[-1:],
        references=references,
        date=date,
        domain=domain,
    )
    try:
        raw = message.as_bytes(policy=policy.default)
    except (ValueError, TypeError, LookupError, UnicodeError, AttributeError, IndexError) as exc:
        raise Unprocessable(f"the message could not be re-encoded ({type(exc).__name__})") from None
    return Outgoing(raw=raw, message_id=new_message_id)


def _address(identity: Identity) -> Address:
    local, _, domain = identity.alias_address.rpartition("@")
    return Address(display_name=identity.handle, username=local, domain=domain)
