"""Fan-out of a group message: who receives it (every other member, or the one member a private alias
names) and how each copy presents itself. Shared by intake (relay/inbound/group.py) and a moderator's
release (relay/holdqueue/actions.py), so that a held message is released looking as it would have at once.

A message to the group: From the sender's handle and the group's name at the sender's private alias;
Reply-To and To the group's alias (Reply and Reply all answer the group); a footer naming the private alias.

A private word (a message to one member's private alias): the same From, but Reply-To and To the sender's
private alias, so that Reply and Reply all answer the sender alone — the answer quotes the private text,
which must not reach the rest of the group — and a footer, in the recipient's language, that says the
message was written to them privately.
"""

from __future__ import annotations

from email.headerregistry import Address

from relay.anonymize.footer import footer_text
from relay.anonymize.message import Face
from relay.anonymize.scrub import Identity
from relay.config import Settings
from relay.notices.programs import folder, participant_language
from relay.notices.rendering import render
from relay.pipeline import GroupFace
from relay.store.conversations import Conversation, Member


def identity(member: Member, domain: str) -> Identity:
    return Identity(email=member.email, name=member.name, alias_address=member.alias_address(domain),
                    handle=member.handle, nicknames=member.nicknames, other_emails=member.other_emails,
                    language=member.language)


def face(settings: Settings, group: Conversation, sender: Member, addressed: Member | None) -> GroupFace:
    """How the copies look: a group's face when `addressed` is None, else the private word's (addressed:
    the member whose private alias the sender wrote to, the only recipient)."""
    domain = settings.relay.domain
    group_local, _, _ = (group.alias_address(domain) or "").rpartition("@")
    name = group.name or "group"
    sender_address = Address(display_name=f"{sender.handle} ({name})", username=sender.alias, domain=domain)
    if addressed is not None:
        program = settings.programs.get(group.program_id)
        footer = render("group_private_footer.txt.j2", participant_language(program, addressed),
                        folder=folder(settings, program), sender_handle=sender.handle, group_name=name,
                        sender_address=sender.alias_address(domain)).strip()
        return GroupFace(Face(sender=sender_address, reply_to=sender_address, to=sender_address), footer)
    group_address = Address(display_name=name, username=group_local, domain=domain)
    return GroupFace(Face(sender=sender_address, reply_to=group_address, to=group_address),
                     footer_text(sender.handle, name, sender.alias_address(domain)))


def recipients_of(group: Conversation, sender: Member, recipient: Member | None) -> list[Member]:
    return [recipient] if recipient is not None else list(group.others(sender))
