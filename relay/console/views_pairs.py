"""Pairs: /pairs (per program, health at a glance, a page at a time) and /pairs/<id> (members, the
conversation timeline, recent events, and for coordinators and admins the forms of
relay.console.views_pair_actions). Real names and addresses are shown to roles with ADDRESSES_SEE only."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from relay.console.health import health, timeline
from relay.console.history import history, policy_moderators
from relay.console.inputs import query_id
from relay.console.roles import ADDRESSES_SEE, PAIRS_MANAGE, all_programs
from relay.console.web import context, current_user, page, refused, to_login
from relay.store.events import list_events
from relay.store.keyset import PAGE
from relay.store.pairs import count_matching, get_pair, pairs_page


async def pair_list(request: Request) -> Response:
    """One page of pairs (PAGE, by id; keyset: `?after=<id>`), filtered in SQL, with their health read for
    the page at once (relay/console/health.py), the total and a link to the next page."""
    user = await current_user(request)
    if user is None:
        return to_login(request)
    ctx = context(request)
    programs = user.visible(sorted(ctx.settings.programs))
    chosen = request.query_params.get("program") or None
    try:
        after = query_id(request, "after")
    except ValueError:
        return refused(request, user, 400, "No such page", "The page cursor is not one this relay wrote.")
    seen = None if all_programs(user.role) else list(user.programs)
    async with ctx.engine.connect() as connection:
        found, following = await pairs_page(connection, programs=seen, program_id=chosen, limit=PAGE, after=after)
        total = await count_matching(connection, programs=seen, program_id=chosen)
        summaries = await health(connection, found)
    by_program: dict[str, list[object]] = {}
    for summary in summaries:
        by_program.setdefault(summary.pair.program_id, []).append(summary)
    next_url = None
    if following is not None:
        next_url = "/pairs?" + urlencode({k: v for k, v in (("program", chosen), ("after", following)) if v})
    return page(request, "pairs.html", user=user, by_program=by_program, programs=programs, program=chosen,
                now=ctx.clock.now(), may_manage=user.may(PAIRS_MANAGE), total=total, next_url=next_url,
                first_page=after == 0, shown=len(found))


async def pair_page(request: Request, done: str | None = None, status_code: int = 200) -> Response:
    user = await current_user(request)
    if user is None:
        return to_login(request)
    ctx = context(request)
    async with ctx.engine.connect() as connection:
        pair = await get_pair(connection, request.path_params["id"])
        if pair is None or not user.may_see(pair.program_id):
            return refused(request, user, 404, "Not found", "There is no pair with this id in your programs.")
        summary = (await health(connection, [pair]))[0]
        messages = await timeline(connection, pair)
        events = await list_events(connection, pair_id=pair.id, limit=200)
        program = ctx.settings.programs.get(pair.program_id)
        policy = pair.policy or (program.policy if program else "")
        lines = await history(connection, events[-50:], pair, coordinator=program.coordinator if program else None,
                              moderators=policy_moderators(ctx.policies, policy),
                              hidden_for=None if user.may(ADDRESSES_SEE) else ctx.settings.relay.domain)
    if done is None and request.query_params.get("enrolled"):
        done = "Enrolled: each member can now write to the partner's alias below."
    return page(request, "pair.html", status_code=status_code, user=user, pair=pair, health=summary,
                messages=messages, history=lines, now=ctx.clock.now(), domain=ctx.settings.relay.domain,
                may_manage=user.may(PAIRS_MANAGE), may_see_addresses=user.may(ADDRESSES_SEE), done=done)
