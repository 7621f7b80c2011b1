"""Who hears about moderation, and what they read: senders, moderators, coordinators.

Builds Notice mails from the notice templates. A sender learns that their message is held or was
rejected (with the policy's text in their language, else ours translated; or the moderator's own words;
never the partner's identity); moderators get the held messages with their reasons and a console link, at
once or as a digest; after review_within they are reminded; after escalate_after the coordinator is told.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from relay.config import ProgramConfig, Settings
from relay.hiding import SUBJECT_NOT_SHOWN
from relay.languages import resolve
from relay.links import console_base
from relay.moderation.policy import Policy
from relay.notices import Notice, compose, help_address, notice
from relay.notices.programs import audience, folder, participant_language, staff_language
from relay.notices.when import format_duration, format_when
from relay.nudges.timing import zone_of
from relay.store.pairs import Member


def _program_name(settings: Settings, program_id: str) -> str:
    program: ProgramConfig | None = settings.programs.get(program_id)
    return program.name if program else program_id


def sender_notice(
    settings: Settings, *, kind: str, policy: Policy, program_id: str, to: str, subject: str | None,
    in_reply_to: str | None, now: datetime, reason: str | None = None, reader: Member | None = None,
) -> Notice | None:
    """The held or rejected notice to the sender (`reader`), or None when the policy says not to tell them.
    The policy's own text in the reader's language where the policy gives one (relay/localtext.py), else our
    default text, translated: a reader never gets the policy's English among their own language's sentences.
    A moderator's rejection (`reason` given) sends the moderator's words as written, framed by a neutral
    sentence; the policy's canned `rejected` text is only for automatic rejections."""
    if (policy.notices.held if kind == "held" else policy.notices.rejected) is None:
        return None
    program = settings.programs.get(program_id)
    program_name = _program_name(settings, program_id)
    language = participant_language(program, reader)
    written = resolve(language, folder(settings, program))
    zone = zone_of(reader, program) if program is not None else "UTC"
    name = "rejected_by_moderator" if kind == "rejected" and reason else kind
    mail = notice(name, language, folder=folder(settings, program), audience=audience(program, reader),
                  notice=policy.notices.text(kind, language, written),
                  subject=subject or "(no subject)", held_at=format_when(now, language, zone), reason=reason,
                  program_name=program_name)
    return compose(domain=settings.relay.domain, program_name=program_name, to=to, subject=mail.subject,
                   body=mail.text, now=now, in_reply_to=in_reply_to,
                   reply_to=help_address(settings.relay.domain), language=language)


def shown_subject(item: dict[str, Any]) -> str:
    """What staff mail quotes of a queue row's subject: the anonymised copy's, with what is left of addresses
    and phone numbers hidden (stored with the hold: relay.hiding.staff_subject); a row held before the relay
    kept it quotes none. Never the subject as the participant typed it (item["subject"])."""
    return item.get("staff_subject") or SUBJECT_NOT_SHOWN


def moderator_notices(
    settings: Settings, *, template: str, policy: Policy, program_id: str, items: list[dict[str, Any]],
    now: datetime, to: list[str] | None = None, waited: timedelta | None = None,
) -> list[Notice]:
    """One mail per moderator (or to `to`) listing `items` (dicts with id, pair_id, handles, subject, held_at
    as a datetime...), in the program's staff language and time zone. `template`: "moderator_held",
    "moderator_reminder" or "coordinator_escalation"."""
    program = settings.programs.get(program_id)
    program_name = _program_name(settings, program_id)
    recipients = policy.moderators.notify if to is None else to
    language = staff_language(program)
    zone = program.timezone if program is not None else "UTC"
    shown = [{**item, "held_at": format_when(item["held_at"], language, zone)} for item in items]
    mail = notice(template, language, folder=folder(settings, program), items=shown, program_name=program_name,
                  console_url=console_base(settings), review_within=format_duration(policy.review_within, language),
                  waited=format_duration(waited or timedelta(), language))
    return [compose(domain=settings.relay.domain, program_name=program_name, to=address,
                    subject=mail.subject, body=mail.text, now=now, language=language) for address in recipients]
