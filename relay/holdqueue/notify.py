"""Who hears about moderation, and what they read: senders, moderators, coordinators.

Builds Notice mails from the notice templates. A sender learns that their message is held or was
rejected (with the policy's text, never the partner's identity); moderators get the held messages
with their reasons and a console link, at once or as a digest; after review_within they are reminded;
after escalate_after the coordinator is told.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from relay.config import ProgramConfig, Settings
from relay.links import console_base
from relay.moderation.policy import Policy
from relay.notices import Notice, compose, render


def _program_name(settings: Settings, program_id: str) -> str:
    program: ProgramConfig | None = settings.programs.get(program_id)
    return program.name if program else program_id


def sender_notice(
    settings: Settings, *, kind: str, policy: Policy, program_id: str, to: str, subject: str | None,
    in_reply_to: str | None, now: datetime, reason: str | None = None,
) -> Notice | None:
    """The held or rejected notice to the sender, or None when the policy says not to tell them."""
    text = policy.notices.held if kind == "held" else policy.notices.rejected
    if text is None:
        return None
    program_name = _program_name(settings, program_id)
    program = settings.programs.get(program_id)
    body = render(f"{kind}.txt.j2", notice=text.strip(), subject=subject or "(no subject)",
                  held_at=now.strftime("%Y-%m-%d %H:%M"), reason=reason, program_name=program_name)
    title = "Your message is waiting for review" if kind == "held" else "Your message was not delivered"
    return compose(domain=settings.relay.domain, program_name=program_name, to=to,
                   subject=f"{title}: {subject or '(no subject)'}", body=body, now=now, in_reply_to=in_reply_to,
                   reply_to=program.coordinator if program else None)


def moderator_notices(
    settings: Settings, *, template: str, policy: Policy, program_id: str, items: list[dict[str, Any]],
    now: datetime, to: list[str] | None = None, waited: timedelta | None = None,
) -> list[Notice]:
    """One mail per moderator (or to `to`) listing `items` (dicts with id, pair_id, handles, subject...)."""
    program_name = _program_name(settings, program_id)
    recipients = policy.moderators.notify if to is None else to
    subjects = {
        "moderator_held.txt.j2": f"[{program_name}] {len(items)} message(s) to review",
        "moderator_reminder.txt.j2": f"[{program_name}] Reminder: {len(items)} message(s) waiting for review",
        "coordinator_escalation.txt.j2": f"[{program_name}] Held mail not reviewed in time",
    }
    body = render(template, items=items, program_name=program_name, console_url=console_base(settings),
                  review_within=_human(policy.review_within), waited=_human(waited or timedelta()))
    return [compose(domain=settings.relay.domain, program_name=program_name, to=address,
                    subject=subjects[template], body=body, now=now) for address in recipients]


def _human(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    if hours >= 48:
        return f"{hours / 24:g} days"
    return f"{hours:g} hours" if hours >= 1 else f"{delta.total_seconds() / 60:g} minutes"
