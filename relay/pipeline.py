"""The line from anonymise on, shared by intake and by a moderator's release.

prepare(): anonymise the participant's message, inspect the anonymised copy, let the policy decide,
and redact what the decision says to redact. release(): a held message re-enters the line at
anonymise: the moderator has decided, so only the redactions recorded with the hold are applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Any

from relay.anonymize.message import anonymize, parse, serialise
from relay.anonymize.scrub import Identity
from relay.moderation import Decision, decide
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
    anonymize(message, sender=sender, recipient=recipient, thread_map=thread_map,
              new_message_id=new_message_id, now=now, domain=domain)
    decision = decide(policy, inspect_message(message, **context))
    if decision.redactions:
        redact(message, decision.redactions)
    return Prepared(serialise(message), decision)


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

