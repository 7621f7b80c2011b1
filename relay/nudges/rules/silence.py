"""Silent pair: no message either way for pair_silence_after: a check-in to both, once per silence
(keyed on the time of the last message, or the pair's start). Nothing while either member is away."""

from __future__ import annotations

from relay.notices.programs import participant_language
from relay.notices.when import format_duration
from relay.nudges.plan import Context, Planned
from relay.nudges.timing import is_away, is_quiet, zone_of
from relay.store.pairs import ROLES

KIND = "nudge.checkin"


def plan(ctx: Context) -> list[Planned]:
    if ctx.pair.status != "active":
        return []
    pair, rules = ctx.pair, ctx.program.responsiveness
    anchor = ctx.activity.last_message_at or pair.created_at
    silent = ctx.now - anchor
    if silent < rules.pair_silence_after:
        return []
    zones = {role: zone_of(pair.member(role), ctx.program) for role in ROLES}
    if any(is_away(pair.member(role), ctx.now, zones[role]) for role in ROLES):
        return []
    found = []
    for role in ROLES:
        member = pair.member(role)
        partner = pair.partner_of(member)
        language = participant_language(ctx.program, member)
        values = {"program_name": ctx.program.name, "goals": ctx.program.goals, "domain": ctx.settings.relay.domain,
                  "handle": member.handle, "partner_handle": partner.handle, "role": role,
                  "silent": format_duration(silent, language), "started": ctx.activity.last_message_at is None}
        found.append(Planned(
            key=f"{KIND}:{pair.id}:{role}:{anchor.isoformat()}", kind=KIND,
            pair_id=pair.id, program_id=ctx.program.id,
            to_role=role, to_handle=member.handle, rcpt=member.email,
            folder=ctx.folder,
            template="checkin", values=values,
            language=language,
            quiet=is_quiet(ctx.now, zones[role], rules.quiet_hours),
            detail={"silent_days": silent.days, "to_role": role}, anchor_at=anchor,
        ))
    return found
