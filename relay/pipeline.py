"""The line from anonymise on, shared by intake and by a moderator's release.

prepare(): anonymise the participant's message, inspect the anonymised copy, let the policy decide,
and redact what the decision says to redact. An attachment that anonymisation could not clean (it was
replaced by a note in the copy) holds the message for a moderator whatever the policy says: the file
is never delivered as it came. release(): a held message re-enters the line at
anonymise: the moderator has decided, so only the redactions recorded with the hold are applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import replace as replaced
from datetime import datetime
from email.message import EmailMessage
from typing import Any

from relay.anonymize.message import anonymize, parse, serialise
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


def prepare(
    message: EmailMessage, *, sender: Identity, recipient: Identity, thread_map: dict[str, str],
    new_message_id: str, now: datetime, domain: str, policy: Policy, context: dict[str, Any],
) -> Prepared:
    """Anonymise `message` in place, decide on the anonymised copy, redact when decided."""
    refused = anonymize(message, sender=sender, recipient=recipient, thread_map=thread_map,
                        new_message_id=new_message_id, now=now, domain=domain)
    decision = decide(policy, inspect_message(message, **context))
    if refused:
        decision = hold_uncleaned(decision, refused)
    if decision.redactions:
        redact(message, decision.redactions)
    return Prepared(serialise(message), decision)


def hold_uncleaned(decision: Decision, refused: list[tuple[str, str]]) -> Decision:
    """The decision with a hold for each attachment that could not be cleaned (a rejection stays one)."""
    reasons = [Reason(Finding("attachment", "not_cleaned", f"{name}: {why}", -1, -1), "hold") for name, why in refused]
    action: Action = "reject" if decision.action == "reject" else "hold"
    return replaced(decision, action=action, reasons=[*decision.reasons, *reasons],
                    release_requires=max(decision.release_requires, 1))


def release(
    raw: bytes, *, sender: Identity, recipient: Identity, thread_map: dict[str, str], new_message_id: str,
    now: datetime, domain: str, redactions: list[Finding],
) -> bytes:
    """The delivered copy of a held message: anonymised now, redacted as recorded at hold time."""
    message = parse(raw)
    anonymize(message, sender=sender, recipient=recipient, thread_map=thread_map,
              new_message_id=new_message_id, now=now, domain=domain)
    if redactions:
        redact(message, redactions)
    return serialise(message)

