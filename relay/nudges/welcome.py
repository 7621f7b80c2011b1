"""The welcome message both members get when their pair is created (text and HTML, per program
templates welcome.txt.j2 / welcome.html.j2): the partner's handle and alias, the program's goals, what
is expected, the safety rules, how to reach the coordinator and how to say one is away. Queued in the
transaction that creates the pair; a program can turn it off with `welcome: false`. A new group member
gets the group's welcome (group_welcome.txt.j2) in the transaction of `group add`.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from relay import notices
from relay.config import Settings
from relay.notices import notice
from relay.notices.programs import audience, folder, participant_language, safeguarding_help
from relay.notices.when import format_day, format_duration
from relay.store import events
from relay.store.conversations import Conversation, Member
from relay.store.pairs import ROLES, Pair


async def queue_welcome(connection: AsyncConnection, settings: Settings, pair: Pair, now: datetime) -> None:
    program = settings.programs[pair.program_id]
    if not program.welcome:
        return
    domain = settings.relay.domain
    end = date.fromisoformat(pair.end_date) if pair.end_date else program.end_date
    for role in ROLES:
        member = pair.member(role)
        partner = pair.partner_of(member)
        language = participant_language(program, member)
        mail = notice("welcome", language, folder=folder(settings, program), audience=audience(program, member),
                      safeguarding_help=safeguarding_help(settings, program, language),
                      program_name=program.name, goals=program.goals, domain=domain, role=role,
                      handle=member.handle, partner_handle=partner.handle, partner_role=partner.role,
                      partner_alias=partner.alias_address(domain),
                      end_date=format_day(end, language) if end else None,
                      answer_within=format_duration(program.responsiveness.nudge_mentor_after, language))
        queued = notices.compose(domain=domain, program_name=program.name, to=member.email, now=now,
                                 subject=mail.subject, body=mail.text, html=mail.html, language=language,
                                 reply_to=notices.help_address(domain))
        await notices.queue(connection, queued, domain=domain, now=now, pair_id=pair.id)
    await events.record(connection, "welcome", now, pair_id=pair.id, program=program.id)


async def queue_group_welcome(connection: AsyncConnection, settings: Settings, group: Conversation, member: Member,
                              now: datetime) -> None:
    """The welcome a new group member gets (`group add`): the group's name, their handle, the group's alias
    and their own private alias, the program's goals, what is expected, the safety rules. Handles only."""
    program = settings.programs[group.program_id]
    if not program.welcome:
        return
    domain = settings.relay.domain
    language = participant_language(program, member)
    mail = notice("group_welcome", language, folder=folder(settings, program),
                  program_name=program.name, goals=program.goals, domain=domain, role=member.role,
                  handle=member.handle, group_name=group.name or "your group",
                  group_alias=group.alias_address(domain), private_alias=member.alias_address(domain),
                  others=[m.handle for m in group.others(member)],
                  answer_within=format_duration(program.responsiveness.nudge_mentor_after, language))
    queued = notices.compose(domain=domain, program_name=program.name, to=member.email, now=now,
                             subject=mail.subject, body=mail.text, language=language,
                             reply_to=notices.help_address(domain))
    await notices.queue(connection, queued, domain=domain, now=now, pair_id=group.id)
    await events.record(connection, "welcome", now, pair_id=group.id, program=program.id, handle=member.handle)
