"""Digests: a member of a group or community receives each message, or one digest a day or a week.

This module says which: the member's own choice (members.digest, set by mail to digest@: relay/digests/
choice.py) or else the program's default (`community.digest` for a community, `group_digest` for a
group). A copy for a member on a digest is written as an outbound row in state `digest` (held back);
the digest sweep (relay/digests/sweep.py) gathers them into one MIME digest (relay/digests/compose.py).

A private word (a message to one member's private alias in a group) is never held back for a digest: it
is sent at once, as a pair's message is. A digest answers to the group's alias, so a reply quoting it
would carry the private text to every member; and a message written to one person is meant to be read
as one (its own copy answers the sender alone: relay/fanout.face).
"""

from __future__ import annotations

from relay.config import Settings
from relay.store.conversations import Conversation, Member

MODES = ("each", "daily", "weekly")  # a member's choice; the program's `none` means each


def mode_of(settings: Settings, conversation: Conversation, member: Member) -> str:
    """each | daily | weekly for this member in this conversation (a pair's members: always each)."""
    if conversation.kind == "pair":
        return "each"
    if member.digest is not None and member.digest in MODES:
        return member.digest
    program = settings.programs.get(conversation.program_id)
    if program is None:
        return "each"
    default = program.community.digest if conversation.kind == "community" else program.group_digest
    return "each" if default == "none" else default


def copy_state(settings: Settings, conversation: Conversation, member: Member, *, private: bool) -> str:
    """The outbound state of this member's copy: queued (sent now) or digest (held back). `private`: the copy
    of a private word, always sent now."""
    return "queued" if private or mode_of(settings, conversation, member) == "each" else "digest"
