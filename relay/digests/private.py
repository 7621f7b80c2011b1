"""A private word's copy held back for a digest before private words were always sent at once (pure).

Such a copy was written with the group's face: To and Reply-To the group's alias, and the group's footer
("… Reply to answer the whole group"). Sent as it is, or inside a digest (which answers to the group), a
reply quoting it would carry the private text to every member. The digest sweep sends it on its own
instead, refaced as a private word is written now (relay/fanout.face): To and Reply-To the sender's
private alias, the private footer in place of the group's.
"""

from __future__ import annotations

from email.headerregistry import Address

from relay.anonymize.footer import replace_footer
from relay.anonymize.message import parse, serialise


def reface(raw: bytes, *, answer_to: Address, group_footer: str, private_footer: str) -> bytes:
    """The copy with To and Reply-To `answer_to`, and `private_footer` where `group_footer` was."""
    message = parse(raw)
    for name in ("To", "Reply-To"):
        del message[name]
        message[name] = str(answer_to)
    replace_footer(message, group_footer, private_footer)
    return serialise(message)
