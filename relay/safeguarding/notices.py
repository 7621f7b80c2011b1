"""The mail of safeguarding, built from the notice templates: who is told about an urgent hold and what
they read; the help text for its sender; the report of automatic rejections to the moderators.

Every subject about an urgent item starts with "URGENT", in every language (a marker that mail filters and
people can rely on; the rest of the subject is translated). The body names handles, roles, the pair, the
program, the findings and a console link (when `console.public_url` is set; else the held message's id),
never a participant's real address or name (the findings come from the anonymised copy, which has handles
and aliases in their place). Staff mail is in the program's staff language and time zone; the help text
in its sender's language and zone (relay/notices/programs.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from relay.config import ProgramConfig, SafeguardingConfig, Settings
from relay.links import console_base
from relay.moderation.policy import Policy
from relay.notices import Notice, compose, help_address
from relay.notices.programs import folder, participant_language, safeguarding_help, staff_language
from relay.notices.rendering import Rendered, notice
from relay.notices.when import format_duration, format_when
from relay.nudges.timing import zone_of
from relay.store.conversations import Conversation, Member, email_key

URGENT = "URGENT"
DEFAULT_REVIEW_WITHIN = timedelta(hours=1)


@dataclass(frozen=True)
class Concern:
    """One held item as safeguarding mail describes it (or, `address` set, one message to help@ or concern@,
    which is never held: `held_at` is when it came, `signs` the kinds of the signs of harm found in it)."""

    id: str
    pair_id: int
    program_id: str
    sender_handle: str
    sender_role: str
    recipient_handle: str
    recipient_role: str
    held_at: datetime | str  # a datetime; the text of it in the reader's language once shown
    reasons: list[dict[str, Any]] = field(default_factory=list)
    subject: str = ""  # what staff mail may quote (relay.hiding.staff_subject), never the subject as typed
    group_name: str | None = None  # a group's or community's name; None: a pair's message (named by pair_id)
    address: str | None = None  # help@<domain> or concern@<domain>: mail to a program address, not held
    signs: tuple[str, ...] = ()

    @property
    def findings(self) -> list[dict[str, Any]]:
        """Urgent findings first; "every message is reviewed" is no finding."""
        found = [r for r in self.reasons if r.get("rule") != "policy"]
        return sorted(found, key=lambda r: r.get("severity") != "urgent")


def group_name(conversation: Conversation) -> str | None:
    """The name staff mail gives a group or community ("group Robotics"); None for a pair ("pair 7")."""
    return (conversation.name or str(conversation.id)) if conversation.is_group else None


def addressee(conversation: Conversation, recipient: Member | None) -> tuple[str, str]:
    """(handle, role) of whom a message was written to: a member, or (None) the whole group."""
    if recipient is None:
        return f"the group {conversation.name or conversation.id}", "group"
    return recipient.handle, recipient.role


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


def _staff(settings: Settings, program_id: str, name: str, concerns: list[Concern], **values: Any) -> Rendered:
    """A staff notice in the program's staff language, its times in the program's zone."""
    program = settings.programs.get(program_id)
    language = staff_language(program)
    zone = program.timezone if program is not None else "UTC"
    shown = [replace(c, held_at=format_when(c.held_at, language, zone)) if isinstance(c.held_at, datetime) else c
             for c in concerns]
    return notice(name, language, folder=folder(settings, program), item=shown[0] if shown else None, items=shown,
                  program_name=program_name(settings, program_id), console_url=console_base(settings),
                  within=format_duration(review_within(settings, program_id), language), **values)


def _mail(settings: Settings, program_id: str, to: list[str], mail: Rendered, now: datetime) -> list[Notice]:
    program = settings.programs.get(program_id)
    urgent = {"Importance": "high", "X-Priority": "1"} if mail.subject.startswith(URGENT) else None
    return [compose(domain=settings.relay.domain, program_name=program_name(settings, program_id), to=address,
                    subject=mail.subject, body=mail.text, now=now, headers=urgent, language=staff_language(program))
            for address in to]


def lead_alert(settings: Settings, concern: Concern, now: datetime) -> list[Notice]:
    """The lead's URGENT mail about a new urgent hold (the coordinator's, when the program names no lead)."""
    mail = _staff(settings, concern.program_id, "safeguarding_lead", [concern])
    return _mail(settings, concern.program_id, lead_recipients(settings, concern.program_id), mail, now)


def moderator_alert(settings: Settings, policy: Policy, concern: Concern, now: datetime) -> list[Notice]:
    """The moderators' URGENT mail: at once, whatever their digest setting."""
    mail = _staff(settings, concern.program_id, "safeguarding_moderators", [concern],
                  lead=", ".join(lead_recipients(settings, concern.program_id)))
    return _mail(settings, concern.program_id, policy.moderators.notify, mail, now)


def follow_up(settings: Settings, program_id: str, concerns: list[Concern], now: datetime) -> list[Notice]:
    """Nobody acted within urgent_review_within: the lead and the coordinator are told again."""
    mail = _staff(settings, program_id, "safeguarding_followup", concerns)
    return _mail(settings, program_id, lead_and_coordinator(settings, program_id), mail, now)


def undelivered(settings: Settings, concern: Concern, failed_to: str, error: str, to: list[str],
                now: datetime) -> list[Notice]:
    """The URGENT alert to `failed_to` about `concern` could not be delivered: the others who can act are told
    (about mail to help@ or concern@, that the coordinator was sent the message, unless theirs is what failed)."""
    program = settings.programs.get(concern.program_id)
    mail = _staff(settings, concern.program_id, "safeguarding_undelivered", [concern], failed_to=failed_to,
                  error=error, coordinator=program.coordinator if program else None)
    return _mail(settings, concern.program_id, to, mail, now)


@dataclass(frozen=True)
class StrangerAlert:
    """An UNVERIFIED SENDER alert (relay/inbound/strangers.py) as the report of its failure describes it: the
    conversation and the member written to (handles), when, the sender's address as given (and the envelope
    sender when it differed), the kinds of the signs found."""

    pair_id: int
    program_id: str
    group_name: str | None
    recipient_handle: str
    recipient_role: str
    received_at: datetime
    sender: str
    envelope: str | None
    signs: tuple[str, ...]


def stranger_undelivered(settings: Settings, alert: StrangerAlert, failed_to: str, error: str, to: list[str],
                         now: datetime) -> list[Notice]:
    """The URGENT alert to `failed_to` about a stranger's refused message did not arrive: the others who can act
    are told. The lead and the coordinator among them read the sender's address, as the lead was to; the
    policy's moderators do not (it is no enrolled identity, but it may well be the child's own or their
    family's, and staff who see participants by handle only do not see it elsewhere either: the console hides
    real addresses from moderators); they are told who was sent it, and where it is recorded."""
    program = settings.programs.get(alert.program_id)
    language = staff_language(program)
    zone = program.timezone if program is not None else "UTC"
    keys = {email_key(a) for a in lead_and_coordinator(settings, alert.program_id)}
    staff = [address for address in to if email_key(address) in keys]
    others = [address for address in to if email_key(address) not in keys]

    def render(sender: str | None, envelope: str | None) -> Rendered:
        return notice("safeguarding_stranger_undelivered", language, folder=folder(settings, program),
                      program_name=program_name(settings, alert.program_id), pair_id=alert.pair_id,
                      group_name=alert.group_name, recipient=alert.recipient_handle,
                      recipient_role=alert.recipient_role, received=format_when(alert.received_at, language, zone),
                      signs=", ".join(alert.signs), sender=sender, envelope=envelope, told=", ".join(staff),
                      failed_to=failed_to, error=error)

    mails = _mail(settings, alert.program_id, staff, render(alert.sender, alert.envelope), now) if staff else []
    if others:
        mails += _mail(settings, alert.program_id, others, render(None, None), now)
    return mails


def escalation(settings: Settings, concern: Concern, moderator: str, note: str, now: datetime) -> list[Notice]:
    """A moderator's escalation: to the lead and the coordinator."""
    mail = _staff(settings, concern.program_id, "safeguarding_escalation", [concern], moderator=moderator,
                  note=note, lead=lead_of(settings, concern.program_id))
    return _mail(settings, concern.program_id, lead_and_coordinator(settings, concern.program_id), mail, now)


def rejection_report(settings: Settings, policy: Policy, program_id: str, concerns: list[Concern],
                     now: datetime) -> list[Notice]:
    """Automatic rejections, reported to the policy's moderators (at once, or one digest per period)."""
    mail = _staff(settings, program_id, "moderator_rejected", concerns, policy=policy.name)
    return _mail(settings, program_id, policy.moderators.notify, mail, now)


def help_notice(settings: Settings, program: ProgramConfig | None, program_id: str, *, to: Member,
                subject: str | None, in_reply_to: str | None, now: datetime) -> Notice:
    """What the sender of an urgent message receives instead of the routine "waiting for review": the
    program's help text in the sender's language (else its default; relay/localtext.py), or our default text,
    translated; in the sender's language and zone."""
    language = participant_language(program, to)
    zone = zone_of(to, program) if program is not None else "UTC"
    name = program.name if program else program_id
    mail = notice("safeguarding_help", language, folder=folder(settings, program),
                  help_text=safeguarding_help(settings, program, language), subject=subject or "(no subject)",
                  program_name=name, held_at=format_when(now, language, zone))
    return compose(domain=settings.relay.domain, program_name=name, to=to.email, now=now, in_reply_to=in_reply_to,
                   subject=mail.subject, body=mail.text, reply_to=help_address(settings.relay.domain),
                   language=language)


def stranger_alert(settings: Settings, conversation: Conversation, recipient: Member | None, *, sender: str,
                   envelope: str | None, findings: list[dict[str, Any]], subject: str, text: str,
                   now: datetime, folded: int = 0, last: bool = False, pages: int = 3) -> list[Notice]:
    """The lead's URGENT mail about a refused message from an unknown address that shows a safeguarding sign
    (relay/inbound/strangers.py): to whom it was written, the sender's address as given, the findings and the
    scrubbed text, and that it was not delivered (the coordinator's, when the program names no lead). `folded`:
    messages with a sign to this conversation only recorded since its last alert; `last`: this is the last of the
    conversation's `pages` alerts for the hour (later ones are only recorded)."""
    program_id = conversation.program_id
    program = settings.programs.get(program_id)
    language = staff_language(program)
    zone = program.timezone if program is not None else "UTC"
    handle, role = addressee(conversation, recipient)
    mail = notice("safeguarding_stranger", language, folder=folder(settings, program),
                  program_name=program_name(settings, program_id), pair_id=conversation.id,
                  group_name=group_name(conversation), recipient=handle, recipient_role=role, sender=sender,
                  envelope=envelope, received=format_when(now, language, zone), findings=findings,
                  subject=subject or "(no subject)", text=text, folded=folded, last=last, pages=pages)
    return _mail(settings, program_id, lead_recipients(settings, program_id), mail, now)
