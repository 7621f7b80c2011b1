"""Unanswered mentee: nudge the mentor after nudge_mentor_after, again after second_nudge_after, and
tell the coordinator after escalate_after. Keyed on the oldest waiting message: the mentor writing
ends it (a later mentee message starts a new one). Nothing while the mentor is away."""

from __future__ import annotations

from relay.nudges.plan import Context, Planned, humanize, local_stamp
from relay.nudges.timing import is_away, is_quiet, zone_of

STAGES = ("nudge.first", "nudge.second")


def plan(ctx: Context) -> list[Planned]:
    if ctx.pair.status != "active":
        return []
    waiting = ctx.activity.first_waiting
    mentor, mentee = ctx.pair.mentor, ctx.pair.mentee
    rules = ctx.program.responsiveness
    mentor_zone = zone_of(mentor, ctx.program)
    if waiting is None or is_away(mentor, ctx.now, mentor_zone):
        return []
    waited = ctx.now - waiting.received_at
    due = [kind for kind, after in zip(STAGES, (rules.nudge_mentor_after, rules.second_nudge_after), strict=True)
           if waited >= after]
    found: list[Planned] = []
    common = {
        "program_name": ctx.program.name, "goals": ctx.program.goals, "domain": ctx.settings.relay.domain,
        "mentor_handle": mentor.handle, "mentee_handle": mentee.handle, "subject": waiting.subject,
        "waited": humanize(waited), "count": len(ctx.activity.waiting), "pair_id": ctx.pair.id,
    }
    if due:
        kind = due[-1]
        second = kind == "nudge.second"
        found.append(Planned(
            key=f"{kind}:{ctx.pair.id}:{waiting.message_id}", kind=kind,
            pair_id=ctx.pair.id, program_id=ctx.program.id, to_role="mentor",
            to_handle=mentor.handle, rcpt=mentor.email,
            subject=(f"A reminder: {mentee.handle} is still waiting for your answer" if second
                     else f"{mentee.handle} is waiting for your answer"),
            template="nudge_mentor.txt.j2",
            values={**common, "second": second, "sent_at": local_stamp(waiting.received_at, mentor_zone)},
            quiet=is_quiet(ctx.now, mentor_zone, rules.quiet_hours), message_id=waiting.message_id,
            detail={"waited_hours": int(waited.total_seconds() // 3600), "to_role": "mentor"},
            passed_over=[f"{k}:{ctx.pair.id}:{waiting.message_id}" for k in due[:-1]],
        ))
    if waited >= rules.escalate_after:
        program_zone = zone_of(None, ctx.program)
        found.append(Planned(
            key=f"nudge.escalation:{ctx.pair.id}:{waiting.message_id}", kind="nudge.escalation",
            pair_id=ctx.pair.id, program_id=ctx.program.id, to_role="coordinator", to_handle=None,
            rcpt=ctx.program.coordinator,
            subject=f"Pair {ctx.pair.id}: {mentee.handle} has waited {humanize(waited)} for {mentor.handle}",
            template="coordinator_unanswered.txt.j2",
            values={**common, "sent_at": local_stamp(waiting.received_at, program_zone)},
            quiet=is_quiet(ctx.now, program_zone, rules.quiet_hours), message_id=waiting.message_id,
            detail={"waited_hours": int(waited.total_seconds() // 3600), "to_role": "coordinator"},
        ))
    return found
