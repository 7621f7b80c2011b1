"""/sessions: the console sessions still open. Everyone sees their own (and can end them, e.g. a phone
left logged in); admins see and end everyone's. POST /sessions/<id>/revoke ends one. The same as
`mentor-relay moderator sessions` and `moderator revoke`; each revocation is an event."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from relay.console import sessions
from relay.console.roles import ACCOUNTS_MANAGE
from relay.console.web import context, csrf_refused, current_user, form_ok, page, refused, to_login
from relay.store import events
from relay.store.database import transaction


async def session_list(request: Request, done: str | None = None) -> Response:
    user = await current_user(request)
    if user is None:
        return to_login(request)
    ctx = context(request)
    everyone = user.may(ACCOUNTS_MANAGE)
    async with ctx.engine.connect() as connection:
        found = await sessions.live(connection, ctx.clock.now(), None if everyone else user.id)
    return page(request, "sessions.html", user=user, sessions=found, everyone=everyone,
                current=request.state.session.id, done=done)


async def revoke(request: Request) -> Response:
    user = await current_user(request)
    if user is None:
        return to_login(request)
    form = await request.form()
    if not form_ok(request, form):
        return csrf_refused(request, user)
    ctx = context(request)
    now = ctx.clock.now()
    session_id = request.path_params["id"]
    async with transaction(ctx.engine) as connection:
        target = await sessions.get(connection, session_id)
        if target is None or not (user.may(ACCOUNTS_MANAGE) or target.moderator_id == user.id):
            return refused(request, user, 404, "Not found", "There is no such session among those you may end.")
        ended = await sessions.revoke(connection, now, user.username, session_id=session_id)
        if ended:
            await events.record(connection, "sessions_revoked", now, actor=user.username, username=target.username,
                                session=session_id, ended=ended)
    if session_id == request.state.session.id:  # ended its own session: like logging out
        request.session.clear()
        return page(request, "message.html", title="Logged out", text="This session has ended.")
    return await session_list(request, f"Session {session_id} of {target.username} has ended." if ended
                              else "That session had already ended.")
