"""Sender authentication at intake: the policy's `sender_auth` (off | prefer | require) applied to the
verdict of relay/senderauth (DKIM, SPF, DMARC): pass, fail or unverified. What each means is
relay/senderauth/outcome.py's table: `require` refuses a failure and holds unverified mail (refuses it where
nothing can be held: a program address); `prefer` holds a failure for review and only notes unverified mail.
Only a failure is called spoofing.
"""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

from relay.inbound.context import Context
from relay.inbound.refusals import Refusal
from relay.moderation import Decision
from relay.moderation.policy import Policy
from relay.senderauth import Verdict
from relay.senderauth import outcome as sender_auth


async def authenticate(context: Context, raw: bytes, message: EmailMessage, header_from: str, mail_from: str,
                       remote: str | None, helo: str | None, policy: Policy, *, pair_id: int,
                       detail: dict[str, Any], can_hold: bool = True) -> Verdict | None:
    """The policy's sender authentication: None when off; raises the refusal the policy calls for."""
    if policy.sender_auth == "off":
        return None
    verdict = await context.authenticator.check(raw, message, header_from=header_from, mail_from=mail_from,
                                                remote=remote, helo=helo)
    if sender_auth.refused(verdict, policy.sender_auth, can_hold=can_hold):
        raise await context.refuse(refusal(verdict), pair_id=pair_id, header_from=header_from,
                                   auth=verdict.summary, **detail)
    return verdict


def refusal(verdict: Verdict) -> Refusal:
    if verdict.result == "fail":
        return Refusal(550, "5.7.1", "This message could not be verified as coming from the address enrolled in "
                       "the program (DKIM, SPF and DMARC did not pass); it was not delivered.", "spoofing")
    if verdict.temporary:
        return Refusal(451, "4.7.0", "The sender could not be verified just now (DNS did not answer); "
                       "please try again later.", "auth_temperror")
    return Refusal(550, "5.7.1", "This program accepts mail to this address only when the sender's domain "
                   "signs it (DKIM) or lists its servers (SPF); this message carried neither.", "unverified")


def unverified_reason(verdict: Verdict | None) -> dict[str, Any]:
    """The record's note on a verdict that did not pass (empty when it passed or was not asked)."""
    if verdict is None or verdict.passed:
        return {}
    return {"sender_auth": verdict.kind, "auth": verdict.summary}


def apply(decision: Decision, verdict: Verdict | None, policy: Policy) -> Decision:
    """The policy's decision with the verdict taken into account (held, or only noted)."""
    return sender_auth.apply(decision, verdict, policy.sender_auth)
