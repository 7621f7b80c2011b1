"""Mentor cadence: a mentor with regular writing days (`pair create --mentor-cadence mon,thu`) gets,
on each of those days in their time zone, one short digest of what waits for them, if anything does
(once per day, outside the quiet hours, not while away)."""

from __future__ import annotations

from relay.notices.programs import participant_language
from relay.notices.when import format_when
from relay.nudges.plan import Context, Planned
from relay.nudges.timing import is_away, is_quiet, local_date, zone_of

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_cadence(text: str) -> str:
    """"Mon, Thu" -> "mon,thu"; raises ValueError naming the days it understands."""
    days = [part.strip().lower()[:3] for part in text.split(",") if part.strip()]
    unknown = [day for day in days if day not in DAYS]
    if not days or unknown:
        raise ValueError(f"expected days such as mon,thu (from {', '.join(DAYS)}), got {text!r}")
    return ",".join(day for day in DAYS if day in days)


def plan(ctx: Context) -> list[Planned]:
    mentor, mentee = ctx.pair.mentor, ctx.pair.mentee
    waiting = ctx.activity.waiting
    if ctx.pair.status != "active" or not mentor.cadence or not waiting:
        return []
    zone = zone_of(mentor, ctx.program)
    today = local_date(ctx.now, zone)
    if DAYS[today.weekday()] not in mentor.cadence.split(",") or is_away(mentor, ctx.now, zone):
        return []
    count = len(waiting)
    language = participant_language(ctx.program, mentor)
    values = {"program_name": ctx.program.name, "handle": mentor.handle, "mentee_handle": mentee.handle,
              "domain": ctx.settings.relay.domain,
              "items": [{"subject": w.subject, "sent_at": format_when(w.passed_on_at, language, zone)}
                        for w in waiting]}
    return [Planned(
        key=f"nudge.digest:{ctx.pair.id}:{today.isoformat()}", kind="nudge.digest", pair_id=ctx.pair.id,
        program_id=ctx.program.id, to_role="mentor", to_handle=mentor.handle, rcpt=mentor.email,
        folder=ctx.folder,
        template="cadence_digest", values=values,
        language=language,
        quiet=is_quiet(ctx.now, zone, ctx.program.responsiveness.quiet_hours),
        message_id=waiting[0].message_id, detail={"to_role": "mentor", "waiting": count, "day": today.isoformat()},
    )]
