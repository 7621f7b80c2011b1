"""The mail of safeguarding, built from the notice templates: who is told about an urgent hold and what
they read; the help text for its sender; the report of automatic rejections to the moderators.

Every subject about an urgent item starts with "URGENT". The body names handles, roles, the pair, the
program, the findings and a console link (when `console.public_url` is set; else the held message's id),
never a participant's real address or name (the findings come from the anonymised copy, which has handles
and aliases in their place).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from relay.config import ProgramConfig, SafeguardingConfig, Settings
from relay.links import console_base
from relay.moderation.policy import Policy
from relay.notices import Notice, compose, render
from relay.nudges.compose import render as program_render

URGENT = "URGENT"
DEFAULT_REVIEW_WITHIN = timedelta(hours=1)
DEFAULT_HELP_TEXT = (
    "Thank you for your message. A member of the program team will read it soon. If you or someone else is "
    "in danger right now, please call your local emergency number. You can also reply to this message to "
    "reach the program coordinator."
)


@dataclass(frozen=True)
class Concern:
    """One held item as safeguarding mail describes it."""

    id: str
    pair_id: int
    program_id: str
    sender_handle: str
    sender_role: str
    recipient_handle: str
    recipient_role: str
    held_at: str  # "YYYY-MM-DD HH:MM", UTC
    reasons: list[dict[str, Any]] = field(default_factory=list)
    subject: str = ""  # the subject as written: only for the moderators, who read the message anyway

    @property
    def findings(self) -> list[dict[str, Any]]:
        """Urgent findings first; "every message is reviewed" is no finding."""
        found = [r for r in self.reasons if r.get("rule") != "policy"]
        return sorted(found, key=lambda r: r.get("severity") != "urgent")


def program_name(settings: Settings, program_id: str) -> str:
    program = settings.programs.get(program_id)
    return program.name if program else program_id


def _safeguarding(settings: Settings, program_id: str) -> SafeguardingConfig | None:
    program = settings.programs.get(program_id)
    return program.safeguarding if program else None


def lead_of(settings: Settings, program_id: str) -> str | None:
    found = _safeguarding(settings, program_id)
    return found.lead if found else None


def review_within(settings: Settings, program_id: str) -> timedelta:
    found = _safeguarding(settings, program_id)
    return found.urgent_review_within if found else DEFAULT_REVIEW_WITHIN


def lead_recipients(settings: Settings, program_id: str) -> list[str]:
    """Who is told at once: the safeguarding lead; without one, the coordinator in the lead's place."""
    program = settings.programs.get(program_id)
    lead = lead_of(settings, program_id)
    return [lead] if lead else ([program.coordinator] if program else [])


def lead_and_coordinator(settings: Settings, program_id: str) -> list[str]:
    program = settings.programs.get(program_id)
    found = [lead_of(settings, program_id), program.coordinator if program else None]
    return list(dict.fromkeys(address for address in found if address))


def human(delta: timedelta) -> str:
    minutes = delta.total_seconds() / 60
    if minutes < 60:
        return f"{minutes:g} minutes"
    hours = minutes / 60
    return f"{hours:g} hour{'s' if hours != 1 else ''}" if hours < 48 else f"{hours / 24:g} days"


def _mail(settings: Settings, program_id: str, to: list[str], subject: str, body: str, now: datetime) -> list[Notice]:
    name = program_name(settings, program_id)
    return [compose(domain=settings.relay.domain, program_name=name, to=address, subject=subject, body=body, now=now,
                    headers={"Importance": "high", "X-Priority": "1"} if subject.startswith(URGENT) else None)
            for address in to]


def _who(concern: Concern) -> str:
    return f"pair {concern.pair_id}, {concern.sender_handle} to {concern.recipient_handle}"


def lead_alert(settings: Settings, concern: Concern, now: datetime) -> list[Notice]:
    """The lead's URGENT mail about a new urgent hold (the coordinator's, when the program names no lead)."""
    name = program_name(settings, concern.program_id)
    body = render("safeguarding_lead.txt.j2", item=concern, program_name=name, console_url=console_base(settings),
                  within=human(review_within(settings, concern.program_id)))
    return _mail(settings, concern.program_id, lead_recipients(settings, concern.program_id),
                 f"{URGENT}: possible safeguarding concern in {name} ({_who(concern)})", body, now)


def moderator_alert(settings: Settings, policy: Policy, concern: Concern, now: datetime) -> list[Notice]:
    """The moderators' URGENT mail: at once, whatever their digest setting."""
    name = program_name(settings, concern.program_id)
    body = render("safeguarding_moderators.txt.j2", item=concern, program_name=name,
                  console_url=console_base(settings), lead=", ".join(lead_recipients(settings, concern.program_id)))
    return _mail(settings, concern.program_id, policy.moderators.notify,
                 f"{URGENT}: [{name}] a message needs review now ({_who(concern)})", body, now)


def follow_up(settings: Settings, program_id: str, concerns: list[Concern], now: datetime) -> list[Notice]:
    """Nobody acted within urgent_review_within: the lead and the coordinator are told again."""
    name = program_name(settings, program_id)
    within = human(review_within(settings, program_id))
    body = render("safeguarding_followup.txt.j2", items=concerns, program_name=name, within=within,
                  console_url=console_base(settings))
    return _mail(settings, program_id, lead_and_coordinator(settings, program_id),
                 f"{URGENT}: [{name}] {len(concerns)} urgent message(s) not reviewed within {within}", body, now)


def escalation(settings: Settings, concern: Concern, moderator: str, note: str, now: datetime) -> list[Notice]:
    """A moderator's escalation: to the lead and the coordinator."""
    name = program_name(settings, concern.program_id)
    body = render("safeguarding_escalation.txt.j2", item=concern, program_name=name, moderator=moderator, note=note,
                  console_url=console_base(settings), lead=lead_of(settings, concern.program_id))
    return _mail(settings, concern.program_id, lead_and_coordinator(settings, concern.program_id),
                 f"{URGENT}: [{name}] moderator {moderator} escalates a held message to you ({_who(concern)})",
                 body, now)


def help_notice(settings: Settings, program: ProgramConfig | None, program_id: str, *, to: str, subject: str | None,
                in_reply_to: str | None, now: datetime) -> Notice:
    """What the sender of an urgent message receives instead of the routine "waiting for review"."""
    name = program.name if program else program_id
    text = (program.safeguarding.help_text if program and program.safeguarding else None) or DEFAULT_HELP_TEXT
    values = {"help_text": text.strip(), "subject": subject or "(no subject)", "program_name": name,
              "held_at": now.strftime("%Y-%m-%d %H:%M")}
    body = (program_render(settings, program, "safeguarding_help.txt.j2", values) if program
            else render("safeguarding_help.txt.j2", **values))
    return compose(domain=settings.relay.domain, program_name=name, to=to, now=now, in_reply_to=in_reply_to,
                   subject=f"We have your message: {subject or '(no subject)'}", body=body,
                   reply_to=program.coordinator if program else None)


def rejection_report(settings: Settings, policy: Policy, program_id: str, concerns: list[Concern],
                     now: datetime) -> list[Notice]:
    """Automatic rejections, reported to the policy's moderators (at once, or one digest per period)."""
    name = program_name(settings, program_id)
    body = render("moderator_rejected.txt.j2", items=concerns, program_name=name, policy=policy.name,
                  console_url=console_base(settings))
    return _mail(settings, program_id, policy.moderators.notify,
                 f"[{name}] {len(concerns)} message(s) rejected automatically", body, now)
