"""Logging in and out: GET/POST /login (username, password, csrf_token), POST /logout.

Failed attempts are counted per account and per client address in the store (relay.console.throttle);
a locked key refuses even the right password until the lock ends. A lockout is an event."""

from __future__ import annotations

import secrets

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from relay.console import throttle
from relay.console.accounts import get_by_username, username_key
from relay.console.passwords import verify_password
from relay.console.web import CSRF_FIELD, context, csrf_valid, current_user, page, safe_next
from relay.store import events
from relay.store.database import transaction

LIMITS = throttle.Limits()


async def login_form(request: Request) -> Response:
    if await current_user(request) is not None:
        return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    return page(request, "login.html", next=safe_next(request.query_params.get("next")))


async def login(request: Request) -> Response:
    ctx = context(request)
    form = await request.form()
    target = safe_next(form.get("next"))
    if not csrf_valid(request, form.get(CSRF_FIELD)):
        return page(request, "login.html", status_code=403, next=target,
                    error="The form expired. Please try again.")
    username = username_key(str(form.get("username") or ""))
    password = str(form.get("password") or "")
    address = request.client.host if request.client else "unknown"
    keys = throttle.keys(username, address)
    now = ctx.clock.now()
    async with ctx.engine.connect() as connection:
        locked = await throttle.locked_until(connection, list(keys.values()), now)
        account = await get_by_username(connection, username) if username else None
    if locked is not None:
        return page(request, "login.html", status_code=429, next=target, username=username,
                    error=f"Too many failed attempts. Try again after {locked:%H:%M} UTC.")
    if account is None or not verify_password(account.password_hash, password):
        async with transaction(ctx.engine) as connection:
            locked = await throttle.failure(connection, keys, now, LIMITS)
            if locked is not None:
                await events.record(connection, "login_locked", now, actor="console", username=username,
                                    address=address, until=locked.isoformat())
        error = (f"Too many failed attempts. Try again after {locked:%H:%M} UTC." if locked is not None
                 else "Wrong username or password.")
        return page(request, "login.html", status_code=429 if locked else 401, next=target, username=username,
                    error=error)
    async with transaction(ctx.engine) as connection:
        await throttle.success(connection, keys["account"])
        await events.record(connection, "login", now, actor=account.username, address=address)
    request.session.clear()  # a new session on every login: nothing from before it carries over
    request.session["user"] = account.username
    request.session["csrf"] = secrets.token_urlsafe(32)
    return RedirectResponse(target, status_code=303)


async def logout(request: Request) -> Response:
    form = await request.form()
    if not csrf_valid(request, form.get(CSRF_FIELD)):
        return page(request, "message.html", status_code=403, user=await current_user(request),
                    title="Refused", text="The form expired or did not come from this console. Reload and try again.")
    request.session.clear()
    return RedirectResponse("/login", status_code=303)
