"""/audit: the record (every moderator action and relay decision), newest first, filterable by kind,
actor and pair, its details as readable fields (relay.console.event_view: addresses only for the roles
that may see them). Everyone sees the events of their programs' pairs; admins see everything."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response

from relay.console.accounts import Moderator
from relay.console.event_view import fields, kind_text
from relay.console.web import context, current_user, page, refused, to_login
from relay.store.bounds import store_id
from relay.store.schema import events, pairs

LIMIT = 200


async def audit_events(connection: AsyncConnection, user: Moderator, *, kind: str | None, actor: str | None,
                       pair_id: int | None, limit: int = LIMIT) -> list[dict[str, Any]]:
    query = select(events).order_by(events.c.id.desc()).limit(limit)
    if kind:
        query = query.where(events.c.kind.startswith(kind, autoescape=True))
    if actor:
        query = query.where(events.c.actor == actor)
    if pair_id is not None:
        query = query.where(events.c.pair_id == pair_id)
    if not user.is_admin:
        visible = select(pairs.c.id).where(pairs.c.program_id.in_(user.programs))
        query = query.where(events.c.pair_id.in_(visible))
    rows = (await connection.execute(query)).mappings().all()
    return [{**row, "detail": json.loads(row["detail"])} for row in rows]


async def audit(request: Request) -> Response:
    user = await current_user(request)
    if user is None:
        return to_login(request)
    params = request.query_params
    kind = params.get("kind") or None
    actor = params.get("actor") or None
    pair_text = params.get("pair") or ""
    pair_id = store_id(pair_text)
    if pair_id is None and pair_text.isdigit():
        return refused(request, user, 400, "No such pair", "That number is larger than any pair id.")
    ctx = context(request)
    async with ctx.engine.connect() as connection:
        found = await audit_events(connection, user, kind=kind, actor=actor, pair_id=pair_id)
    for event in found:
        event["what"] = kind_text(event["kind"], event["detail"])
        event["fields"] = fields(event["detail"], user, ctx.settings.relay.domain)
    return page(request, "audit.html", user=user, events=found, kind=kind or "", actor=actor or "",
                pair=pair_text, limit=LIMIT)
