"""The line from anonymise on, shared by intake and by a moderator's release.

prepare(): anonymise the participant's message (the pair's identities, and those of the other participants of
the sender's programs), inspect the anonymised copy, let the policy decide,
and redact what the decision says to redact. An attachment that anonymisation could not clean (it was
replaced by a note in the copy) holds the message for a moderator whatever the policy says: the file
is never delivered as it came. release(): a held message re-enters the line at
anonymise: the moderator has decided, so only the redactions recorded with the hold are applied.

prepare_group() / release_group(): the same for a message to a group. Every member's name and address
is scrubbed, the policy decides once, and the copies differ only in Message-ID, In-Reply-To and
References (each recipient's client knows its own ids), so the message is anonymised once and written
out once per recipient. Pure functions: they can run in a worker process.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import replace as replaced
from datetime import datetime
from email.message import EmailMessage
from typing import Any

from relay.anonymize.footer import add_footer
from relay.anonymize.headers import set_thread_headers
from relay.anonymize.message import Face, References, anonymize, parse, serialise
from relay.anonymize.scrub import Identity
from relay.moderation import Action, Decision, Reason, decide
from relay.moderation.findings import Finding
from relay.moderation.inspection import inspect_message
from relay.moderation.policy import Policy
from relay.moderation.redact import redact


@dataclass(frozen=True)
class Prepared:
    raw: bytes  # what the recipient receives if the decision lets it through
    decision: Decision
    subject: str | None = None  # the anonymised copy's subject (staff mail quotes it: relay.hiding.staff_subject)


def _subject(message: EmailMessage) -> str | None:
    value = message.get("Subject")
    return None if value is None else str(value)


def prepare(
    message: EmailMessage, *, sender: Identity, recipient: Identity, thread_map: dict[str, str],
    new_message_id: str, now: datetime, domain: str, policy: Policy, context: dict[str, Any],
    others: Sequence[Identity] = (),
) -> Prepared:
    """Anonymise `message` in place, decide on the anonymised copy, redact when decided. `others`: people
    outside the pair whose identities go too (the sender's programs' other participants)."""
    refused = anonymize(message, sender=sender, recipient=recipient, thread_map=thread_map,
                        new_message_id=new_message_id, now=now, domain=domain, others=others)
    decision = decide(policy, inspect_message(message, **context))
    if refused:
        decision = hold_uncleaned(decision, refused)
    if decision.redactions:
        redact(message, decision.redactions)
    return Prepared(serialise(message), decision, _subject(message))


def hold_uncleaned(decision: Decision, refused: list[tuple[str, str]]) -> Decision:
    """The decision with a hold for each attachment that could not be cleaned (a rejection stays one)."""
    reasons = [Reason(Finding("attachment", "not_cleaned", f"{name}: {why}", -1, -1), "hold") for name, why in refused]
    action: Action = "reject" if decision.action == "reject" else "hold"
    return replaced(decision, action=action, reasons=[*decision.reasons, *reasons],
                    release_requires=max(decision.release_requires, 1))


def release(
    raw: bytes, *, sender: Identity, recipient: Identity, thread_map: dict[str, str], new_message_id: str,
    now: datetime, domain: str, redactions: list[Finding], others: Sequence[Identity] = (),
) -> bytes:
    """The delivered copy of a held message: anonymised now (`others` as for prepare), redacted as recorded
    at hold time."""
    message = parse(raw)
    anonymize(message, sender=sender, recipient=recipient, thread_map=thread_map,
              new_message_id=new_message_id, now=now, domain=domain, others=others)
    if redactions:
        redact(message, redactions)
    return serialise(message)



@dataclass(frozen=True)
class GroupCopy:
    """One recipient's copy of a group message: its new Message-ID and its thread map."""

    new_message_id: str
    thread_map: dict[str, str]


@dataclass(frozen=True)
class GroupFace:
    """What a group's copies show: the sender's From (their handle, the group's name, their private
    alias), Reply-To and To (the group's alias; a private word's: the sender's private alias), and the
    body's footer line (relay/fanout.face)."""

    face: Face
    footer: str


@dataclass(frozen=True)
class PreparedGroup:
    raws: list[bytes]  # one per GroupCopy, in order
    decision: Decision
    subject: str | None = None  # the anonymised copy's subject, as Prepared's


def _group_copies(message: EmailMessage, *, sender: Identity, members: Sequence[Identity], face: GroupFace,
                  copies: Sequence[GroupCopy], now: datetime, domain: str,
                  decide_on: Any = None) -> tuple[list[bytes], Decision | None]:
    refs = References.of(message)
    others = [m for m in members if m is not sender]
    first = copies[0]
    refused = anonymize(message, sender=sender, recipient=others[0] if others else sender, others=others[1:],
                        thread_map=first.thread_map, new_message_id=first.new_message_id, now=now, domain=domain,
                        face=face.face)
    decision = decide_on(message) if decide_on is not None else None
    if decision is not None and refused:
        decision = hold_uncleaned(decision, refused)
    if decision is not None and decision.action in ("hold", "reject"):
        return [], decision  # nothing is delivered now; a release writes the copies
    if decision is not None and decision.redactions:
        redact(message, decision.redactions)
    return _finish(message, refs, face, copies), decision


def _finish(message: EmailMessage, refs: References, face: GroupFace, copies: Sequence[GroupCopy]) -> list[bytes]:
    add_footer(message, face.footer)
    raws = []
    for copy in copies:
        in_reply_to, references = refs.mapped(copy.thread_map)
        set_thread_headers(message, copy.new_message_id, in_reply_to, references)
        raws.append(serialise(message))
    return raws


def prepare_group(
    message: EmailMessage, *, sender: Identity, members: Sequence[Identity], face: GroupFace,
    copies: Sequence[GroupCopy], now: datetime, domain: str, policy: Policy, context: dict[str, Any],
) -> PreparedGroup:
    """Anonymise a group message once (every member's identity goes), decide once, write each copy.
    `members`: every member of the group, the sender included (by identity: `sender` is one of them)."""
    raws, decision = _group_copies(message, sender=sender, members=members, face=face, copies=copies, now=now,
                                   domain=domain, decide_on=lambda m: decide(policy, inspect_message(m, **context)))
    assert decision is not None
    return PreparedGroup(raws, decision, _subject(message))


def release_group(
    raw: bytes, *, sender: Identity, members: Sequence[Identity], face: GroupFace, copies: Sequence[GroupCopy],
    now: datetime, domain: str, redactions: list[Finding],
) -> list[bytes]:
    """The delivered copies of a held group message: anonymised now, redacted as recorded at hold time."""
    message = parse(raw)
    refs = References.of(message)
    others = [m for m in members if m is not sender]
    first = copies[0]
    anonymize(message, sender=sender, recipient=others[0] if others else sender, others=others[1:],
              thread_map=first.thread_map, new_message_id=first.new_message_id, now=now, domain=domain,
              face=face.face)
    if redactions:
        redact(message, redactions)
    return _finish(message, refs, face, copies)
