"""The JSON API under /api: the console's actions for scripts. Authenticated by a per-moderator API
token (`mentor-relay moderator token --username U`) sent as `Authorization: Bearer <token>`; session
cookies are not accepted here, so no CSRF token is needed. Same access rules as the pages. The
enrolment endpoints for a program's platform (POST /api/pairs, close, away, GET /api/events) are in
relay/console/api_enrolment.py."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from relay import ids
from relay.console import api_enrolment
from relay.console.accounts import Moderator
from relay.console.api_common import error, json_response, unauthorised, user_of
from relay.console.health import health, timeline
from relay.console.message_view import view
from relay.console.openapi import DESCRIPTION
from relay.console.roles import HELD_DECIDE
from relay.console.web import context
from relay.holdqueue import actions as review
from relay.store import held as held_store
from relay.store.messages import get_message
from relay.store.pairs import Pair, get_pair, list_pairs

_json = json_response
_error = error
_user = user_of
_unauthorised = unauthorised


async def held_list(request: Request) -> Response:
    user = await _user(request)
    if user is None:
        return _unauthorised()
    state = request.query_params.get("state", "held")
    if state not in ("held", "released", "rejected", "all"):
        return _error(400, "state must be held, released, rejected or all")
    async with context(request).engine.connect() as connection:
        items = await held_store.list_held(connection, state=None if state == "all" else state,
                                           program_id=request.query_params.get("program") or None)
    return _json([held_store.summary(i) for i in items if user.may_see(i["program_id"])])


async def _visible_item(request: Request, user: Moderator) -> tuple[dict[str, Any], Any, Pair] | None:
    async with context(request).engine.connect() as connection:
        item = await held_store.get_held(connection, request.path_params["id"])
        if item is None or not user.may_see(item["program_id"]):
            return None
        row = await get_message(connection, item["message_id"])
        pair = await get_pair(connection, item["pair_id"])
    assert pair is not None
    return item, row, pair


async def held_show(request: Request) -> Response:
    user = await _user(request)
    if user is None:
        return _unauthorised()
    found = await _visible_item(request, user)
    if found is None:
        return _error(404, "no held message with this id in your programs")
    item, row, pair = found
    ctx = context(request)
    async with ctx.engine.connect() as connection:
        preview = await review.delivered_copy(ctx.settings, connection, item, row, pair,
                                              ids.message_id(ctx.settings.relay.domain), ctx.clock.now(), ctx.offload)
    original = view(row.raw)
    data = held_store.summary(item)
    data["text"] = original.text
    data["attachments"] = [{"filename": a.filename, "content_type": a.content_type, "size": a.size}
                           for a in original.attachments]
    data["preview"] = {"headers": view(preview).headers, "text": view(preview).text}
    return _json(data)


async def held_decide(request: Request) -> Response:
    user = await _user(request)
    if user is None:
        return _unauthorised()
    if request.path_params["action"] not in ("release", "reject"):
        return _error(404, "actions are release and reject")
    if await _visible_item(request, user) is None:
        return _error(404, "no held message with this id in your programs")
    if not user.may(HELD_DECIDE):
        return _error(403, f"the role {user.role} is read-only for held mail")
    ctx = context(request)
    message_id = request.path_params["id"]
    if request.path_params["action"] == "release":
        outcome = await review.release(ctx.settings, ctx.engine, ctx.clock, message_id, user.username, ctx.offload)
    else:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, 'send JSON: {"reason": "why it is rejected (the sender is told)"}')
        reason = str(body.get("reason") or "").strip() if isinstance(body, dict) else ""
        if not reason:
            return _error(400, '"reason" is required: the sender is told why')
        outcome = await review.reject(ctx.settings, ctx.engine, ctx.clock, message_id, user.username, reason)
    return _json({"id": message_id, "status": outcome.status, "approvals": outcome.approvals,
                  "needed": outcome.needed})


def _health_json(summary: Any, now: Any) -> dict[str, Any]:
    pair = summary.pair
    waited = summary.waiting_for(now)
    return {"id": pair.id, "program": pair.program_id, "status": pair.status,
            "mentor_handle": pair.mentor.handle, "mentee_handle": pair.mentee.handle,
            "last_message_at": summary.last_message_at, "waiting_mentee_messages": summary.waiting,
            "waiting_since": summary.waiting_since,
            "waiting_seconds": None if waited is None else int(waited.total_seconds()),
            "nudges_sent": summary.nudges, "held": summary.held}


async def pairs_list(request: Request) -> Response:
    user = await _user(request)
    if user is None:
        return _unauthorised()
    ctx = context(request)
    async with ctx.engine.connect() as connection:
        found = [p for p in await list_pairs(connection, request.query_params.get("program") or None)
                 if user.may_see(p.program_id)]
        summaries = await health(connection, found)
    now = ctx.clock.now()
    return _json([_health_json(s, now) for s in summaries])


async def pair_show(request: Request) -> Response:
    user = await _user(request)
    if user is None:
        return _unauthorised()
    ctx = context(request)
    async with ctx.engine.connect() as connection:
        pair = await get_pair(connection, request.path_params["id"])
        if pair is None or not user.may_see(pair.program_id):
            return _error(404, "no pair with this id in your programs")
        summary = (await health(connection, [pair]))[0]
        messages = await timeline(connection, pair)
    data = _health_json(summary, ctx.clock.now())
    data["timeline"] = messages
    return _json(data)


async def openapi(request: Request) -> Response:
    return _json(DESCRIPTION)


routes = [
    Route("/openapi.json", openapi),
    Route("/held", held_list),
    Route("/held/{id}", held_show),
    Route("/held/{id}/{action:str}", held_decide, methods=["POST"]),
    Route("/pairs", pairs_list, methods=["GET"]),
    Route("/pairs", api_enrolment.enrol, methods=["POST"]),
    Route("/pairs/{id:int}", pair_show),
    Route("/pairs/{id:int}/close", api_enrolment.close, methods=["POST"]),
    Route("/pairs/{id:int}/away", api_enrolment.mark_away, methods=["POST"]),
    Route("/events", api_enrolment.event_list),
]
