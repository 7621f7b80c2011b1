"""The nudge rules for groups (a pair's are unanswered.py and silence.py, the same timings).

Unanswered mentee: a mentee's message that no mentor has answered — a mentor writing anything in the group
ends it — waits for the mentors it was written to: a message to the group for every mentor, a private word
to a mentor for that mentor alone (the other mentors never got it: they are neither reminded of it nor shown
its subject). Each of them who is not away is reminded after nudge_mentor_after, again after
second_nudge_after, about the first message waiting for them; the coordinator is told once after
escalate_after about the first message waiting for the group and for each mentor privately (not while every
mentor it waits for is away). The wait counts from when the message was passed on (a held one: its release),
and for each mentor from their return from an announced away period (relay/nudges/timing.waits_since); the
coordinator's from the first of them back. Silent group: nothing written for pair_silence_after: a check-in to
every member who is not away, once per silence (keyed on the last message, or the group's start). Members who
left the group (erased) are neither reminded nor counted; a message waiting for no mentor left (the group's
only mentor, or the one a private word was written to, erased) is told to the coordinator after
escalate_after, counted from when it was passed on.

Ending, as for a pair (rules/ending.py, rules/farewell.py): the group's end date (its own, else the
program's: relay/nudges/lifecycle.end_of) is near: ending_notice_before it, every member is told the last
day, once each; it has passed: the sweep marks the group ended (relay/nudges/lifecycle.end_due) and every
member gets the farewell, once each (`farewells`, whose keys `group close` claims too: a group gets one
farewell however it ends). Each in the member's language, youth wording for a youth program's mentees,
handles and the group's name only. Members who left the group (erased) get nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from relay.config import ProgramConfig, Settings
from relay.hiding import staff_subject
from relay.notices.programs import audience, folder, participant_language, staff_language
from relay.notices.when import format_day, format_duration, format_when
from relay.nudges.activity import Activity, Waiting
from relay.nudges.lifecycle import FAREWELL_WITHIN, ONGOING, end_of
from relay.nudges.plan import Planned
from relay.nudges.rules.unanswered import STAGES
from relay.nudges.timing import is_away, is_quiet, waits_since, zone_of
from relay.store.conversations import Conversation, Member


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


def _addressed(group: Conversation, waiting: Waiting) -> list[Member]:
    """The mentors a waiting message waits for: every mentor of the group, or the one it was written to
    privately (none when that mentor is no longer in the group)."""
    present = [m for m in group.mentors if m.left_at is None]
    if waiting.recipient_id is None:
        return present
    return [m for m in present if m.id == waiting.recipient_id]


def _since(ctx: GroupContext, waiting: Waiting, mentors: list[Member]) -> datetime | None:
    """Since when `waiting` has waited for an answer from any of `mentors` (the earliest of them back from an
    announced away period: relay/nudges/timing.waits_since); None while every one of them is away. With no
    mentor left to answer it (`mentors` empty: erased), since it was passed on."""
    if not mentors:
        return waiting.passed_on_at
    present = [m for m in mentors if not is_away(m, ctx.now, zone_of(m, ctx.program))]
    if not present:
        return None
    return min(waits_since(waiting.passed_on_at, m, zone_of(m, ctx.program)) for m in present)


def unanswered(ctx: GroupContext) -> list[Planned]:
    group = ctx.group
    if group.status != "active" or not ctx.activity.waiting:
        return []
    found: list[Planned] = []
    for mentor in (m for m in group.mentors if m.left_at is None):
        # what waits for this mentor: the group's messages and the private words to them, never another's
        mine = [w for w in ctx.activity.waiting if w.recipient_id in (None, mentor.id)]
        if mine:
            found.extend(_nudge(ctx, mentor, mine))
    # the coordinator is told about the first message waiting for each: the group, each mentor privately
    firsts: dict[int | None, Waiting] = {}
    for waiting in ctx.activity.waiting:
        firsts.setdefault(waiting.recipient_id, waiting)
    for waiting in firsts.values():
        found.extend(_escalation(ctx, waiting))
    return found


def _common(ctx: GroupContext, waiting: Waiting, count: int) -> dict[str, Any]:
    mentee = ctx.group.member_by_id(waiting.sender_id) if waiting.sender_id is not None else None
    return {"program_name": ctx.program.name, "goals": ctx.program.goals, "domain": ctx.settings.relay.domain,
            "mentee_handle": mentee.handle if mentee is not None else "a mentee", "subject": waiting.subject,
            "count": count, "pair_id": ctx.group.id, "group_name": ctx.group.name or "group",
            "private": waiting.recipient_id is not None}


def _nudge(ctx: GroupContext, mentor: Member, mine: list[Waiting]) -> list[Planned]:
    """The reminder of `mentor` about the first of the messages waiting for them (`mine`)."""
    group, rules, waiting = ctx.group, ctx.program.responsiveness, mine[0]
    zone = zone_of(mentor, ctx.program)
    if is_away(mentor, ctx.now, zone):
        return []
    counted = ctx.now - waits_since(waiting.passed_on_at, mentor, zone)
    due = [kind for kind, after in zip(STAGES, (rules.nudge_mentor_after, rules.second_nudge_after), strict=True)
           if counted >= after]
    if not due:
        return []
    kind, waited = due[-1], ctx.now - waiting.passed_on_at
    language = participant_language(ctx.program, mentor)
    count = sum(1 for w in mine if w.sender_id == waiting.sender_id)
    values = {**_common(ctx, waiting, count), "mentor_handle": mentor.handle, "second": kind == "nudge.second",
              "sent_at": format_when(waiting.passed_on_at, language, zone), "waited": format_duration(waited, language)}
    return [Planned(
        key=f"{kind}:{group.id}:{mentor.id}:{waiting.message_id}", kind=kind, pair_id=group.id,
        program_id=ctx.program.id, to_role="mentor", to_handle=mentor.handle, rcpt=mentor.email,
        folder=ctx.folder,
        template="nudge_mentor", values=values,
        language=language, quiet=is_quiet(ctx.now, zone, rules.quiet_hours), message_id=waiting.message_id,
        detail={"waited_hours": int(waited.total_seconds() // 3600), "to_role": "mentor"},
        passed_over=[f"{k}:{group.id}:{mentor.id}:{waiting.message_id}" for k in due[:-1]],
    )]


def _escalation(ctx: GroupContext, waiting: Waiting) -> list[Planned]:
    """The coordinator told once `waiting` has waited escalate_after for the mentors it was written to (counted
    from the first of them back, if all were away; nothing while all are)."""
    group, rules = ctx.group, ctx.program.responsiveness
    mentors = _addressed(group, waiting)
    since = _since(ctx, waiting, mentors)
    if since is None or ctx.now - since < rules.escalate_after:
        return []
    zone = zone_of(None, ctx.program)
    language = staff_language(ctx.program)
    waited = ctx.now - waiting.passed_on_at
    count = sum(1 for w in ctx.activity.waiting
                if w.sender_id == waiting.sender_id and w.recipient_id == waiting.recipient_id)
    values = {**_common(ctx, waiting, count), "mentor_handle": ", ".join(m.handle for m in mentors) or "-",
              "sent_at": format_when(waiting.passed_on_at, language, zone),
              "waited": format_duration(waited, language),
              "subject": staff_subject(waiting.subject, ctx.settings.relay.domain)}  # staff: phones hidden too
    return [Planned(
        key=f"nudge.escalation:{group.id}:{waiting.message_id}", kind="nudge.escalation", pair_id=group.id,
        program_id=ctx.program.id, to_role="coordinator", to_handle=None, rcpt=ctx.program.coordinator,
        folder=ctx.folder,
        template="coordinator_unanswered",
        values=values, language=language, quiet=is_quiet(ctx.now, zone, rules.quiet_hours),
        message_id=waiting.message_id,
        detail={"waited_hours": int(waited.total_seconds() // 3600), "to_role": "coordinator"},
    )]


def silence(ctx: GroupContext) -> list[Planned]:
    group, rules = ctx.group, ctx.program.responsiveness
    if group.status != "active" or not present_members(group):
        return []
    anchor = ctx.activity.last_message_at or group.created_at
    silent = ctx.now - anchor
    if silent < rules.pair_silence_after:
        return []
    found = []
    for member in present_members(group):
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


def present_members(group: Conversation) -> list[Member]:
    """The members still in the group (not those who left it: an erased person)."""
    return [m for m in group.members if m.left_at is None]


def ending_soon(ctx: GroupContext) -> list[Planned]:
    """ending_notice_before the group's end, every member is told its last day (once each)."""
    group, rules = ctx.group, ctx.program.responsiveness
    end = end_of(group, ctx.program)
    if end is None or group.status not in ONGOING or not end - rules.ending_notice_before <= ctx.now < end:
        return []
    last = end.date() - timedelta(days=1)
    found = []
    for member in present_members(group):
        language = participant_language(ctx.program, member)
        values = {"program_name": ctx.program.name, "goals": ctx.program.goals, "domain": ctx.settings.relay.domain,
                  "handle": member.handle, "group_name": group.name or "your group", "role": member.role,
                  "last_day": format_day(last, language),
                  "audience": audience(ctx.program, member)}  # rendering.notice's keyword: youth wording
        found.append(Planned(
            key=f"ending_soon:{group.id}:{member.id}", kind="ending_soon", pair_id=group.id,
            program_id=ctx.program.id, to_role=member.role, to_handle=member.handle, rcpt=member.email,
            folder=ctx.folder, template="group_ending_soon", values=values, language=language,
            quiet=is_quiet(ctx.now, zone_of(member, ctx.program), rules.quiet_hours),
            detail={"to_role": member.role, "last_day": last.isoformat()},
        ))
    return found


def farewell(ctx: GroupContext) -> list[Planned]:
    """When the group's end has come, every member gets the farewell (once each)."""
    end = end_of(ctx.group, ctx.program)
    if end is None or ctx.group.status not in (*ONGOING, "ended") or not end <= ctx.now < end + FAREWELL_WITHIN:
        return []
    return farewells(ctx.settings, ctx.program, ctx.group, ctx.now)


def farewell_key(group_id: int, member_id: int) -> str:
    return f"farewell:{group_id}:{member_id}"


def farewells(settings: Settings, program: ProgramConfig, group: Conversation, now: datetime, *,
              reason: str | None = None) -> list[Planned]:
    """Every present member's farewell, each in their own language, naming the group only (`reason`: the
    coordinator's words when the group was closed by hand: relay/nudges/group_lifecycle.farewell)."""
    found = []
    for member in present_members(group):
        values: dict[str, Any] = {
            "program_name": program.name, "goals": program.goals, "domain": settings.relay.domain,
            "handle": member.handle, "group_name": group.name or "your group", "role": member.role,
            "reason": reason, "audience": audience(program, member)}
        found.append(Planned(
            key=farewell_key(group.id, member.id), kind="farewell", pair_id=group.id, program_id=program.id,
            to_role=member.role, to_handle=member.handle, rcpt=member.email, folder=folder(settings, program),
            template="group_farewell", values=values, language=participant_language(program, member),
            quiet=is_quiet(now, zone_of(member, program), program.responsiveness.quiet_hours),
            detail={"to_role": member.role},
        ))
    return found


RULES = [unanswered, silence, ending_soon, farewell]
