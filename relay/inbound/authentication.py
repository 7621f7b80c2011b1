"""Sender authentication at intake: the policy's `sender_auth` (off | prefer | require) applied to the
verdict of relay/senderauth (DKIM, SPF, DMARC). `require` refuses what does not pass; `prefer` lets it
through flagged for the moderators.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from relay.inbound.context import Context
from relay.inbound.refusals import Refusal
from relay.moderation import Decision, Reason
from relay.moderation.findings import Finding
from relay.moderation.policy import Policy
from relay.senderauth import Verdict


async def authenticate(context: Context, raw: bytes, trace: Iterable[tuple[str, str]], header_from: str, mail_from: str,
                       remote: str | None, helo: str | None, policy: Policy, *, pair_id: int,
                       detail: dict[str, Any]) -> Verdict | None:
    """The policy's sender authentication: None when off; raises the refusal under `require`."""
    if policy.sender_auth == "off":
        return None
    verdict = await context.authenticator.check(raw, trace, header_from=header_from, mail_from=mail_from,
                                                remote=remote, helo=helo)
    if not verdict.passed and policy.sender_auth == "require":
        raise await context.refuse(refusal(verdict), pair_id=pair_id, header_from=header_from,
                                   auth=verdict.summary, **detail)
    return verdict


def refusal(verdict: Verdict) -> Refusal:
    if verdict.result == "temperror":
        return Refusal(451, "4.7.0", "The sender could not be verified just now (DNS did not answer); "
                       "please try again later.", "auth_temperror")
    return Refusal(550, "5.7.1", "This message could not be verified as coming from the address enrolled in "
                   "the program (DKIM, SPF and DMARC did not pass); it was not delivered.", "spoofing")


def kind(verdict: Verdict) -> str:
    """How a failed verdict is named in the record: `unverified` (DNS did not answer) or `spoofing`."""
    return "unverified" if verdict.result == "temperror" else "spoofing"


def unverified_reason(verdict: Verdict | None) -> dict[str, Any]:
    """The record's note on a verdict that did not pass (empty when it passed or was not asked)."""
    if verdict is None or verdict.passed:
        return {}
    return {"sender_auth": kind(verdict), "auth": verdict.summary}


def flag_unauthenticated(decision: Decision, verdict: Verdict) -> Decision:
    """`prefer`: delivered (or held, as the policy decided), but flagged for the moderators with the findings."""
    reason = Reason(Finding("sender_auth", kind(verdict), verdict.summary, -1, -1), "deliver-and-flag")
    return replace(decision, reasons=[*decision.reasons, reason], flagged=True)
