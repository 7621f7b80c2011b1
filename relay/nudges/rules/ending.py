"""Ending soon: ending_notice_before the pair's end, both members are told (once each per end date: the key
names the last day, so an end date changed after the notice, the program's extended or the pair's own
moved, brings a notice naming the new one when that comes near)."""

from __future__ import annotations

from datetime import timedelta

from relay.notices.programs import participant_language
from relay.notices.when import format_day
from relay.nudges.lifecycle import ONGOING, end_of
from relay.nudges.plan import Context, Planned
from relay.nudges.timing import is_quiet, zone_of
from relay.store.pairs import ROLES


def plan(ctx: Context) -> list[Planned]:
    end = end_of(ctx.pair, ctx.program)
    rules = ctx.program.responsiveness
    if end is None or ctx.pair.status not in ONGOING or not end - rules.ending_notice_before <= ctx.now < end:
        return []
    last = end.date() - timedelta(days=1)
    found = []
    for role in ROLES:
        member = ctx.pair.member(role)
        partner = ctx.pair.partner_of(member)
        language = participant_language(ctx.program, member)
        values = {"program_name": ctx.program.name, "goals": ctx.program.goals, "domain": ctx.settings.relay.domain,
                  "handle": member.handle, "partner_handle": partner.handle, "role": role,
                  "last_day": format_day(last, language), "exchange": ctx.exchange}
        found.append(Planned(
            key=f"ending_soon:{ctx.pair.id}:{role}:{last.isoformat()}", kind="ending_soon", pair_id=ctx.pair.id,
            program_id=ctx.program.id, to_role=role, to_handle=member.handle, rcpt=member.email,
            folder=ctx.folder,
            template="ending_soon", values=values,
            language=language,
            quiet=is_quiet(ctx.now, zone_of(member, ctx.program), rules.quiet_hours),
            detail={"to_role": role, "last_day": last.isoformat()},
        ))
    return found
