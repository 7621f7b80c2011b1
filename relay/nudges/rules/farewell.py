"""Farewell: when the pair's end has come, both members get a farewell (once each), and, where the
program allows it and no concern was raised on the pair, the offer to exchange addresses if both agree
(relay/contact_exchange.py, relay/inbound/program/exchange.py).

`farewells` is the mail itself, shared with a pair closed by hand (relay/endings.py), which adds the
coordinator's reason; both claim the same once-only keys, so a pair gets one farewell however it ends.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from relay.config import ProgramConfig, Settings
from relay.notices.programs import audience, folder, participant_language
from relay.nudges.lifecycle import FAREWELL_WITHIN, ONGOING, end_of
from relay.nudges.plan import Context, Planned
from relay.nudges.timing import is_quiet, zone_of
from relay.store.pairs import ROLES, Pair


def key_of(pair_id: int, role: str) -> str:
    return f"farewell:{pair_id}:{role}"


def plan(ctx: Context) -> list[Planned]:
    end = end_of(ctx.pair, ctx.program)
    if end is None or ctx.pair.status not in (*ONGOING, "ended") or not end <= ctx.now < end + FAREWELL_WITHIN:
        return []
    return farewells(ctx.settings, ctx.program, ctx.pair, ctx.now, exchange=ctx.exchange)


def farewells(settings: Settings, program: ProgramConfig, pair: Pair, now: datetime, *, exchange: bool,
              reason: str | None = None) -> list[Planned]:
    """Both members' farewells, each in their own language, naming handles only (`reason`: the
    coordinator's words when the pair was closed by hand; `exchange`: offer the contact exchange)."""
    found = []
    for role in ROLES:
        member = pair.member(role)
        partner = pair.partner_of(member)
        language = participant_language(program, member)
        values: dict[str, Any] = {
            "program_name": program.name, "goals": program.goals, "domain": settings.relay.domain,
            "handle": member.handle, "partner_handle": partner.handle, "role": role, "exchange": exchange,
            "conversation_attached": False, "reason": reason,
            "audience": audience(program, member)}  # rendering.notice's keyword: youth wording
        found.append(Planned(
            key=key_of(pair.id, role), kind="farewell", pair_id=pair.id, program_id=program.id,
            to_role=role, to_handle=member.handle, rcpt=member.email,
            folder=folder(settings, program), template="farewell",
            values=values, language=language,
            quiet=is_quiet(now, zone_of(member, program), program.responsiveness.quiet_hours),
            detail={"to_role": role},
        ))
    return found
