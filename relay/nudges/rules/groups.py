"""The nudge rules for groups (a pair's are unanswered.py and silence.py, the same timings).

Unanswered mentee: a mentee's message to the group (or privately to a mentor) that no mentor has
answered — a mentor writing anything in the group ends it — nudges every mentor who is not away after
nudge_mentor_after, again after second_nudge_after, and tells the coordinator once after escalate_after
(not while every mentor is away). Silent group: nothing written for pair_silence_after: a check-in to
every member who is not away, once per silence (keyed on the last message, or the group's start).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from relay.config import ProgramConfig, Settings
from relay.hiding import staff_subject
from relay.notices.programs import folder, participant_language, staff_language
from relay.notices.when import format_duration, format_when
from relay.nudges.activity import Activity
from relay.nudges.plan import Planned
from relay.nudges.rules.unanswered import STAGES
from relay.nudges.timing import is_away, is_quiet, zone_of
from relay.store.conversations import Conversation


@dataclass(frozen=True)
class GroupContext:
    """One group as a sweep sees it at `now`."""

    settings: Settings
    program: ProgramConfig
    group: Conversation
    activity: Activity
    now: datetime

    @property
    def folder(self) -> Path | None:
        """The program's own templates, if it has some."""
        return folder(self.settings, self.program)


def unanswered(ctx: GroupContext) -> list[Planned]:
    group, rules = ctx.group, ctx.program.responsiveness
    waiting = ctx.activity.first_waiting
    if group.status != "active" or waiting is None:
        return []
    mentors = [m for m in group.mentors if not is_away(m, ctx.now, zone_of(m, ctx.program))]
    if not mentors:
        return []
    mentee = group.member_by_id(waiting.sender_id) if waiting.sender_id is not None else None
    mentee_handle = mentee.handle if mentee is not None else "a mentee"
    waited = ctx.now - waiting.received_at
    due = [kind for kind, after in zip(STAGES, (rules.nudge_mentor_after, rules.second_nudge_after), strict=True)
           if waited >= after]
    common = {
        "program_name": ctx.program.name, "goals": ctx.program.goals, "domain": ctx.settings.relay.domain,
        "mentee_handle": mentee_handle, "subject": waiting.subject,
        "count": len(ctx.activity.waiting), "pair_id": group.id, "group_name": group.name or "group",
    }
    found: list[Planned] = []
    for mentor in mentors if due else []:
        kind, zone = due[-1], zone_of(mentor, ctx.program)
        language = participant_language(ctx.program, mentor)
        values = {**common, "mentor_handle": mentor.handle, "second": kind == "nudge.second",
                  "sent_at": format_when(waiting.received_at, language, zone),
                  "waited": format_duration(waited, language)}
        found.append(Planned(
            key=f"{kind}:{group.id}:{mentor.id}:{waiting.message_id}", kind=kind, pair_id=group.id,
            program_id=ctx.program.id, to_role="mentor", to_handle=mentor.handle, rcpt=mentor.email,
            folder=ctx.folder,
            template="nudge_mentor", values=values,
            language=language, quiet=is_quiet(ctx.now, zone, rules.quiet_hours), message_id=waiting.message_id,
            detail={"waited_hours": int(waited.total_seconds() // 3600), "to_role": "mentor"},
            passed_over=[f"{k}:{group.id}:{mentor.id}:{waiting.message_id}" for k in due[:-1]],
        ))
    if waited >= rules.escalate_after:
        zone = zone_of(None, ctx.program)
        language = staff_language(ctx.program)
        values = {**common, "mentor_handle": ", ".join(m.handle for m in group.mentors),
                  "sent_at": format_when(waiting.received_at, language, zone),
                  "waited": format_duration(waited, language),
                  "subject": staff_subject(waiting.subject, ctx.settings.relay.domain)}  # staff: phones hidden too
        found.append(Planned(
            key=f"nudge.escalation:{group.id}:{waiting.message_id}", kind="nudge.escalation", pair_id=group.id,
            program_id=ctx.program.id, to_role="coordinator", to_handle=None, rcpt=ctx.program.coordinator,
            folder=ctx.folder,
            template="coordinator_unanswered",
            values=values, language=language, quiet=is_quiet(ctx.now, zone, rules.quiet_hours),
            message_id=waiting.message_id,
            detail={"waited_hours": int(waited.total_seconds() // 3600), "to_role": "coordinator"},
        ))
    return found


def silence(ctx: GroupContext) -> list[Planned]:
    group, rules = ctx.group, ctx.program.responsiveness
    if group.status != "active" or not group.members:
        return []
    anchor = ctx.activity.last_message_at or group.created_at
    silent = ctx.now - anchor
    if silent < rules.pair_silence_after:
        return []
    found = []
    for member in group.members:
        zone = zone_of(member, ctx.program)
        if is_away(member, ctx.now, zone):
            continue
        language = participant_language(ctx.program, member)
        values = {"program_name": ctx.program.name, "goals": ctx.program.goals, "domain": ctx.settings.relay.domain,
                  "handle": member.handle, "group_name": group.name or "your group",
                  "group_alias": group.alias_address(ctx.settings.relay.domain),
                  "silent": format_duration(silent, language), "started": ctx.activity.last_message_at is None}
        found.append(Planned(
            key=f"nudge.checkin:{group.id}:{member.id}:{anchor.isoformat()}", kind="nudge.checkin",
            pair_id=group.id, program_id=ctx.program.id, to_role=member.role, to_handle=member.handle,
            rcpt=member.email, folder=ctx.folder,
            template="group_checkin",
            values=values, language=language, quiet=is_quiet(ctx.now, zone, rules.quiet_hours),
            detail={"silent_days": silent.days, "to_role": member.role},
        ))
    return found


RULES = [unanswered, silence]
