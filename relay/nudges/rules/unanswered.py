"""Unanswered mentee: nudge the mentor after nudge_mentor_after, again after second_nudge_after, and
tell the coordinator after escalate_after. Keyed on the first waiting message: the mentor writing
ends it (a later mentee message starts a new one). The wait counts from when the message was passed on
to the mentor (a held one: from its release), and an announced away period is not neglect: nothing while
the mentor is away, and a message that reached them before their return waits from it (the stages start
again from there: relay/nudges/timing.waits_since). The notices still say when the message reached the
mentor and how long ago that was."""

from __future__ import annotations

from relay.hiding import staff_subject
from relay.notices.programs import participant_language, staff_language
from relay.notices.when import format_duration, format_when
from relay.nudges.plan import Context, Planned
from relay.nudges.timing import is_away, is_quiet, waits_since, zone_of

STAGES = ("nudge.first", "nudge.second")
ESCALATION = "nudge.escalation"


def key(kind: str, pair_id: int, message_id: str) -> str:
    """A stage's once-only key (relay/nudges/due.py finds the last stages' keys in SQL by this same form)."""
    return f"{kind}:{pair_id}:{message_id}"


def plan(ctx: Context) -> list[Planned]:
    if ctx.pair.status != "active":
        return []
    waiting = ctx.activity.first_waiting
    mentor, mentee = ctx.pair.mentor, ctx.pair.mentee
    rules = ctx.program.responsiveness
    mentor_zone = zone_of(mentor, ctx.program)
    if waiting is None or is_away(mentor, ctx.now, mentor_zone):
        return []
    waited = ctx.now - waiting.passed_on_at  # what the notices say
    counted = ctx.now - waits_since(waiting.passed_on_at, mentor, mentor_zone)  # what the stages go by
    due = [kind for kind, after in zip(STAGES, (rules.nudge_mentor_after, rules.second_nudge_after), strict=True)
           if counted >= after]
    found: list[Planned] = []
    common = {
        "program_name": ctx.program.name, "goals": ctx.program.goals, "domain": ctx.settings.relay.domain,
        "mentor_handle": mentor.handle, "mentee_handle": mentee.handle, "subject": waiting.subject,
        "count": len(ctx.activity.waiting), "pair_id": ctx.pair.id,
    }
    if due:
        kind = due[-1]
        second = kind == "nudge.second"
        language = participant_language(ctx.program, mentor)
        values = {**common, "second": second, "sent_at": format_when(waiting.passed_on_at, language, mentor_zone),
                  "waited": format_duration(waited, language)}
        found.append(Planned(
            key=key(kind, ctx.pair.id, waiting.message_id), kind=kind,
            pair_id=ctx.pair.id, program_id=ctx.program.id, to_role="mentor",
            to_handle=mentor.handle, rcpt=mentor.email,
            folder=ctx.folder,
            template="nudge_mentor", values=values,
            language=language,
            quiet=is_quiet(ctx.now, mentor_zone, rules.quiet_hours), message_id=waiting.message_id,
            detail={"waited_hours": int(waited.total_seconds() // 3600), "to_role": "mentor"},
            passed_over=[key(k, ctx.pair.id, waiting.message_id) for k in due[:-1]],
        ))
    if counted >= rules.escalate_after:
        program_zone = zone_of(None, ctx.program)
        language = staff_language(ctx.program)
        values = {**common, "sent_at": format_when(waiting.passed_on_at, language, program_zone),
                  "waited": format_duration(waited, language),
                  "subject": staff_subject(waiting.subject, ctx.settings.relay.domain)}  # staff: phones hidden too
        found.append(Planned(
            key=key(ESCALATION, ctx.pair.id, waiting.message_id), kind=ESCALATION,
            pair_id=ctx.pair.id, program_id=ctx.program.id, to_role="coordinator", to_handle=None,
            rcpt=ctx.program.coordinator,
            folder=ctx.folder,
            template="coordinator_unanswered",
            values=values, language=language,
            quiet=is_quiet(ctx.now, program_zone, rules.quiet_hours), message_id=waiting.message_id,
            detail={"waited_hours": int(waited.total_seconds() // 3600), "to_role": "coordinator"},
        ))
    return found
