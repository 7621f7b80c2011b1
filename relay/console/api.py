"""The JSON API under /api: the console's actions for scripts. Authenticated by a per-moderator API
token (`mentor-relay moderator token --username U`) sent as `Authorization: Bearer <token>`; session
cookies are not accepted here, so no CSRF token is needed. Same access rules as the pages. Lists come a page
at a time (keyset pagination: `limit`, default 50, and `after`, from the `Link: <...>; rel="next"` header;
`X-Total-Count` counts every page). The
enrolment endpoints for a program's platform (POST /api/pairs, close, away, GET /api/events) are in
relay/console/api_enrolment.py."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from relay.console import api_enrolment, redaction
from relay.console.accounts import Moderator
from relay.console.api_common import error, json_response, unauthorised, user_of
from relay.console.health import health, timeline
from relay.console.inputs import BadJSON, json_body, query_id
from relay.console.message_view import view
from relay.console.openapi import DESCRIPTION
from relay.console.roles import HELD_DECIDE, all_programs
from relay.console.web import context
from relay.holdqueue import actions as review
from relay.holdqueue import parties
from relay.store import held as held_store
from relay.store.conversations import Conversation, get_conversation
from relay.store.keyset import BadCursor, page_size
from relay.store.messages import get_message
from relay.store.pairs import count_matching, get_pair, pairs_page

_json = json_response
_error = error
_user = user_of
_unauthorised = unauthorised


def _paged(request: Request, items: list[Any], total: int, following: str | int | None) -> Response:
    """A page of a list: the JSON array of the page's items; `X-Total-Count` the number of items over every
    page, and while there are more, `Link: <url>; rel="next"` (the same query with `after` set)."""
    response = _json(items)
    response.headers["X-Total-Count"] = str(total)
    if following is not None:
        query = {**request.query_params, "after": str(following)}
        response.headers["Link"] = f'<{request.url.path}?{urlencode(query)}>; rel="next"'
    return response


async def held_list(request: Request) -> Response:
    """GET /api/held?state=held|released|rejected|all&program=P&limit=N&after=CURSOR: one page (keyset)."""
    user = await _user(request)
    if user is None:
        return _unauthorised()
    state = request.query_params.get("state", "held")
    if state not in ("held", "released", "rejected", "all"):
        return _error(400, "state must be held, released, rejected or all")
    seen = None if all_programs(user.role) else list(user.programs)
    filters: dict[str, Any] = {"state": None if state == "all" else state, "programs": seen,
                               "program_id": request.query_params.get("program") or None}
    try:
        limit = page_size(request.query_params.get("limit"))
        async with context(request).engine.connect() as connection:
            items, following = await held_store.held_page(connection, **filters, limit=limit,
                                                          after=request.query_params.get("after") or None)
            total = await held_store.count_held(connection, **filters)
            summaries = await parties.summaries(connection, items)
    except BadCursor as exc:
        return _error(400, str(exc))
    return _paged(request, summaries, total, following)


async def _visible_item(request: Request, user: Moderator) -> tuple[dict[str, Any], Any, Conversation] | None:
    async with context(request).engine.connect() as connection:
        item = await held_store.get_held(connection, request.path_params["id"])
        if item is None or not user.may_see(item["program_id"]):
            return None
        row = await get_message(connection, item["message_id"])
        conversation = await get_conversation(connection, item["pair_id"])
    assert conversation is not None
    return item, row, conversation


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
        copy_for, preview = await review.preview_copy(ctx.settings, connection, item, row, pair, ctx.clock.now(),
                                                      ctx.offload)
        (data,) = await parties.summaries(connection, [item])
        data["edit"] = await redaction.current_edit(connection, item["message_id"])
    original = view(row.raw)
    data["text"] = original.text
    data["attachments"] = [{"filename": a.filename, "content_type": a.content_type, "size": a.size}
                           for a in original.attachments]
    data["preview"] = None if preview is None else {
        "for": copy_for.handle if copy_for else None, "headers": view(preview).headers, "text": view(preview).text}
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
        seen = await _seen_edit(request)
        if isinstance(seen, Response):
            return seen
        try:
            outcome = await review.release(ctx.settings, ctx.engine, ctx.clock, message_id, user.username,
                                           ctx.offload, seen_edit=seen)
        except review.ReviewError as exc:
            return _error(409, str(exc))
    else:
        try:
            body = await json_body(request)
        except BadJSON as exc:
            return _error(400, f'{exc}; send {{"reason": "why it is rejected (the sender is told)"}}')
        reason = str(body.get("reason") or "").strip() if isinstance(body, dict) else ""
        if not reason:
            return _error(400, '"reason" is required: the sender is told why')
        outcome = await review.reject(ctx.settings, ctx.engine, ctx.clock, message_id, user.username, reason)
    return _json({"id": message_id, "status": outcome.status, "approvals": outcome.approvals,
                  "needed": outcome.needed})


async def _seen_edit(request: Request) -> int | Response | None:
    """The optional {"edit": N} of a release (the item's `edit` as the caller read it), or a 400."""
    if not await request.body():
        return None
    try:
        body = await json_body(request)
    except BadJSON as exc:
        return _error(400, f'{exc}; send nothing, or {{"edit": N}} (the item\'s "edit" as you read it)')
    edit = body.get("edit") if isinstance(body, dict) else None
    if edit is None:
        return None
    if not isinstance(edit, int) or isinstance(edit, bool) or edit < 0:
        return _error(400, '"edit" must be the item\'s "edit" as you read it: a whole number, 0 or more')
    return edit


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
    """GET /api/pairs?program=P&limit=N&after=ID: one page of pairs by id (keyset), with their health."""
    user = await _user(request)
    if user is None:
        return _unauthorised()
    ctx = context(request)
    seen = None if all_programs(user.role) else list(user.programs)
    program = request.query_params.get("program") or None
    try:
        limit = page_size(request.query_params.get("limit"))
        after = query_id(request, "after")
    except (BadCursor, ValueError) as exc:
        return _error(400, str(exc) if isinstance(exc, BadCursor) else "after must be a pair id")
    async with ctx.engine.connect() as connection:
        found, following = await pairs_page(connection, programs=seen, program_id=program, limit=limit, after=after)
        total = await count_matching(connection, programs=seen, program_id=program)
        summaries = await health(connection, found)
    now = ctx.clock.now()
    return _paged(request, [_health_json(s, now) for s in summaries], total, following)


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
    Route("/pairs/{id:id}", pair_show),
    Route("/pairs/{id:id}/close", api_enrolment.close, methods=["POST"]),
    Route("/pairs/{id:id}/away", api_enrolment.mark_away, methods=["POST"]),
    Route("/events", api_enrolment.event_list),
]
