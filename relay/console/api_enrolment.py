"""The enrolment API for a program's own platform (under /api, bearer tokens as the rest of the API):

  POST /api/pairs               enrol a pair: a JSON object with "program" and the columns of `pair
                                import` ("mentor_email", ...); 201 {"id", "mentor_alias", "mentee_alias"},
                                422 {"errors": [{"field", "message"}]}
  POST /api/pairs/<id>/close    close a pair (optional JSON {"reason": TEXT}): both members get a
                                farewell, the coordinator is told; closing a closed pair sends nothing
  POST /api/pairs/<id>/away     {"role", "until": "YYYY-MM-DD"} or {"role", "back": true}
  GET  /api/events?since=&limit= the record of the token's programs, oldest first, paged by event id; real
                                and IP addresses "(hidden)" without ADDRESSES_SEE, as on /audit

A token acts for its account: only on the account's programs (an admin's: all), writing only with
PAIRS_MANAGE (coordinators, admins; a viewer's or moderator's token gets 403). People are checked by the
same code as `pair create` and `pair import` (relay/enrol.check_pair); an end date in the past is refused (the
pair's own, or the program's when it gives none).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from relay.console.accounts import Moderator
from relay.console.api_common import error, json_response, unauthorised, user_of
from relay.console.event_view import visible_detail
from relay.console.inputs import BadJSON, json_body
from relay.console.roles import PAIRS_MANAGE
from relay.console.web import context
from relay.endings import close_pair
from relay.enrol import EnrolmentError, Person, create_pair, normalise_email
from relay.inbound.program import away
from relay.pair_import import COLUMNS, NICKNAME_SEPARATOR, REQUIRED
from relay.store.bounds import store_id
from relay.store.database import transaction
from relay.store.pairs import Pair, get_pair
from relay.store.schema import events, pairs

FIELDS = ("program", *COLUMNS)
MAX_EVENTS = 1000


def _field_of(message: str) -> str | None:
    """Which request field an enrolment error is about (for the 422's "field")."""
    text = message.lower()
    if text.startswith("end date"):
        return "end_date"
    if text.startswith("no policy"):
        return "policy"
    if text.startswith("unknown program"):
        return "program"
    for role in ("mentor", "mentee"):
        if f"the {role}'s" in text or f"for the {role}" in text:
            for key, field in (("nickname", "nickname"), ("language", "language"), ("time zone", "timezone"),
                               ("handle", "handle"), ("name", "name")):
                if key in text:
                    return f"{role}_{field}"
    return None


def _invalid(errors: list[dict[str, Any]]) -> Response:
    return json_response({"errors": errors}, 422)


async def enrol(request: Request) -> Response:
    user = await user_of(request)
    if user is None:
        return unauthorised()
    try:
        body = await json_body(request)
    except BadJSON as exc:
        return error(400, str(exc))
    if not isinstance(body, dict):
        return error(400, "send a JSON object with \"program\" and the CSV column names (mentor_email, ...)")
    problems = [{"field": key, "message": f"unknown field (known: {', '.join(FIELDS)})"}
                for key in body if key not in FIELDS]
    problems += [{"field": key, "message": "must be a string"} for key in FIELDS
                 if body.get(key) is not None and not isinstance(body[key], str)]
    if problems:
        return _invalid(problems)
    values = {key: (body.get(key) or "").strip() for key in FIELDS}
    problems = [{"field": key, "message": "required"} for key in ("program", *REQUIRED) if not values[key]]
    if problems:
        return _invalid(problems)
    if not user.may_see(values["program"]):
        return error(403, f"this token may not enrol in program {values['program']!r}")
    if not user.may(PAIRS_MANAGE):
        return error(403, f"the role {user.role} may not enrol pairs")
    ctx = context(request)
    for role in ("mentor", "mentee"):
        try:
            normalise_email(values[f"{role}_email"], ctx.settings.relay.enrolment.check_deliverability)
        except EnrolmentError as exc:
            problems.append({"field": f"{role}_email", "message": str(exc)})
    if problems:
        return _invalid(problems)

    def person(role: str) -> Person:
        nicknames = tuple(n.strip() for n in values[f"{role}_nickname"].split(NICKNAME_SEPARATOR) if n.strip())
        return Person(values[f"{role}_email"], values[f"{role}_name"], values[f"{role}_handle"],
                      values[f"{role}_timezone"] or None, nicknames, values[f"{role}_language"] or None)

    try:
        pair = await create_pair(ctx.settings, ctx.engine, ctx.clock, program_id=values["program"],
                                 mentor=person("mentor"), mentee=person("mentee"), policy=values["policy"] or None,
                                 end_date=values["end_date"] or None, actor=user.username, refuse_past_end=True)
    except EnrolmentError as exc:
        return _invalid([{"field": _field_of(str(exc)), "message": str(exc)}])
    domain = ctx.settings.relay.domain
    return json_response({"id": pair.id, "mentor_alias": pair.mentor.alias_address(domain),
                          "mentee_alias": pair.mentee.alias_address(domain)}, 201)


async def _managed(request: Request) -> tuple[Moderator, Pair] | Response:
    user = await user_of(request)
    if user is None:
        return unauthorised()
    async with context(request).engine.connect() as connection:
        pair = await get_pair(connection, request.path_params["id"])
    if pair is None or not user.may_see(pair.program_id):
        return error(404, "no pair with this id in your programs")
    if not user.may(PAIRS_MANAGE):
        return error(403, f"the role {user.role} may not manage pairs")
    return user, pair


async def close(request: Request) -> Response:
    found = await _managed(request)
    if isinstance(found, Response):
        return found
    user, pair = found
    reason: str | None = None
    if await request.body():
        try:
            body = await json_body(request)
        except BadJSON as exc:
            return error(400, str(exc))
        if not isinstance(body, dict) or not isinstance(body.get("reason", ""), str | None):
            return _invalid([{"field": "reason", "message": "send a JSON object, with \"reason\" as text if any"}])
        reason = body.get("reason")
    ctx = context(request)
    try:
        changed = await close_pair(ctx.settings, ctx.engine, ctx.clock, pair.id, reason, actor=user.username)
    except EnrolmentError as exc:
        return _invalid([{"field": "reason", "message": str(exc)}])
    return json_response({"id": pair.id, "status": "closed", "changed": changed})


async def mark_away(request: Request) -> Response:
    found = await _managed(request)
    if isinstance(found, Response):
        return found
    user, pair = found
    try:
        body = await json_body(request)
    except BadJSON as exc:
        return error(400, str(exc))
    if not isinstance(body, dict) or body.get("role") not in ("mentor", "mentee"):
        return _invalid([{"field": "role", "message": "mentor or mentee"}])
    if body.get("back") is True:
        wanted = away.Request(None)
    else:
        try:
            wanted = away.Request(date.fromisoformat(str(body.get("until"))))
        except ValueError:
            return _invalid([{"field": "until", "message": "a date YYYY-MM-DD (or send \"back\": true)"}])
    if pair.status == "closed":
        return error(409, f"pair {pair.id} is closed")
    ctx = context(request)
    member = pair.member(body["role"])
    try:
        async with transaction(ctx.engine) as connection:
            await away.apply(connection, ctx.settings, pair, member, wanted, ctx.clock.now(), actor=user.username)
    except away.AwayError as exc:
        return _invalid([{"field": "until", "message": str(exc)}])
    return json_response({"id": pair.id, "role": member.role,
                          "away_until": wanted.until.isoformat() if wanted.until else None})


def _page_limit(text: str) -> int | None:
    """`limit` of GET /api/events: a whole number, clamped to 1..MAX_EVENTS as documented, however many
    digits it has; None when it is not a number."""
    digits = text.removeprefix("-")
    if not (digits.isascii() and digits.isdigit()):
        return None
    if text.startswith("-"):
        return 1
    value = store_id(digits)  # None: more than the store's ids, so more than a page
    return MAX_EVENTS if value is None else min(max(value, 1), MAX_EVENTS)


async def event_list(request: Request) -> Response:
    user = await user_of(request)
    if user is None:
        return unauthorised()
    since = request.query_params.get("since", "").strip()
    limit = _page_limit(request.query_params.get("limit", "").strip() or "100")
    if limit is None:
        return error(400, "limit must be a number")
    query = select(events, pairs.c.program_id).select_from(events.outerjoin(pairs, pairs.c.id == events.c.pair_id))
    if since.isdigit():
        since_id = store_id(since)
        if since_id is None:
            return error(400, "since must be an event id (a whole number from 0 to 2^31-1) or an ISO 8601 time")
        query = query.where(events.c.id > since_id)
    elif since:
        try:
            when = datetime.fromisoformat(since.replace("Z", "+00:00"))
        except ValueError:
            return error(400, "since must be an event id or an ISO 8601 time such as 2026-06-30T12:00:00Z")
        query = query.where(events.c.at >= (when if when.tzinfo else when.replace(tzinfo=UTC)))
    if not user.is_admin:  # the account's programs only: events of their pairs and groups
        query = query.where(pairs.c.program_id.in_(user.programs))
    ctx = context(request)
    async with ctx.engine.connect() as connection:
        rows = (await connection.execute(query.order_by(events.c.id).limit(limit))).all()
    domain = ctx.settings.relay.domain  # real and IP addresses hidden as on /audit, for the same roles
    items = [{"id": row.id, "at": row.at, "kind": row.kind, "actor": row.actor, "pair_id": row.pair_id,
              "program": row.program_id, "message_id": row.message_id,
              "detail": visible_detail(json.loads(row.detail), user, domain)} for row in rows]
    return json_response({"events": items, "next": items[-1]["id"] if len(items) == limit else None})
