"""Farewell: when the pair's end has come, both members get a farewell (once each), and, where the
program allows it, the offer to exchange addresses if both agree (relay/inbound/program/exchange.py)."""

from __future__ import annotations

from relay.notices.programs import audience, participant_language
from relay.nudges.lifecycle import FAREWELL_WITHIN, ONGOING, end_of
from relay.nudges.plan import Context, Planned, subject_of
from relay.nudges.timing import is_quiet, zone_of
from relay.store.pairs import ROLES


def plan(ctx: Context) -> list[Planned]:
    end = end_of(ctx.pair, ctx.program)
    if end is None or ctx.pair.status not in (*ONGOING, "ended") or not end <= ctx.now < end + FAREWELL_WITHIN:
        return []
    found = []
    for role in ROLES:
        member = ctx.pair.member(role)
        partner = ctx.pair.partner_of(member)
        language = participant_language(ctx.program, member)
        values = {"program_name": ctx.program.name, "goals": ctx.program.goals, "domain": ctx.settings.relay.domain,
                  "handle": member.handle, "partner_handle": partner.handle, "role": role,
                  "exchange": ctx.program.contact_exchange, "conversation_attached": False,
                  "audience": audience(ctx.program, member)}  # rendering.notice's keyword: youth wording
        found.append(Planned(
            key=f"farewell:{ctx.pair.id}:{role}", kind="farewell", pair_id=ctx.pair.id, program_id=ctx.program.id,
            to_role=role, to_handle=member.handle, rcpt=member.email,
            subject=subject_of(ctx, "farewell", language, values), template="farewell", values=values,
            language=language,
            quiet=is_quiet(ctx.now, zone_of(member, ctx.program), ctx.program.responsiveness.quiet_hours),
            detail={"to_role": role},
        ))
    return found
