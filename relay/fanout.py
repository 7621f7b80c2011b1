"""Fan-out of a group message: who receives it (every other member, or the one member a private alias
names) and how each copy presents itself (From: the sender's handle and the group's name at the sender's
private alias; Reply-To and To: the group's alias; a footer naming the private alias). Shared by intake
(relay/inbound/group.py) and a moderator's release (relay/holdqueue/actions.py).
"""

from __future__ import annotations

from email.headerregistry import Address

from relay.anonymize.footer import footer_text
from relay.anonymize.message import Face
from relay.anonymize.scrub import Identity
from relay.pipeline import GroupFace
from relay.store.conversations import Conversation, Member


def identity(member: Member, domain: str) -> Identity:
    return Identity(email=member.email, name=member.name, alias_address=member.alias_address(domain),
                    handle=member.handle, nicknames=member.nicknames, other_emails=member.other_emails,
                    language=member.language)


def face(group: Conversation, sender: Member, domain: str) -> GroupFace:
    """From: the sender's handle and the group's name, at the sender's private alias; Reply-To and To:
    the group's alias; the footer names the private alias."""
    group_local, _, _ = (group.alias_address(domain) or "").rpartition("@")
    name = group.name or "group"
    group_address = Address(display_name=name, username=group_local, domain=domain)
    sender_address = Address(display_name=f"{sender.handle} ({name})", username=sender.alias, domain=domain)
    return GroupFace(Face(sender=sender_address, reply_to=group_address, to=group_address),
                     footer_text(sender.handle, name, sender.alias_address(domain)))


def recipients_of(group: Conversation, sender: Member, recipient: Member | None) -> list[Member]:
    return [recipient] if recipient is not None else list(group.others(sender))


