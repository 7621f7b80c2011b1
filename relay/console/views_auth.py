"""Logging in and out: GET/POST /login (username, password, csrf_token), POST /logout.

A login costs the same whether the username exists or not: an unknown name is checked against a dummy
argon2 hash (relay.console.passwords), so the time taken tells nothing about which accounts exist.
Failures are throttled per client address and per account (relay.console.throttle): each attempt is counted
before its password is verified, so concurrent guesses cannot outrun the lock; a browser that logged in to the
account before (relay.console.devices) passes both throttles with the right password. The password is verified
in a thread, a few at a time (relay.console.passwords.Verifier); when too many logins are in progress, or the
store's writers' queue stays full, the answer is 503 (Retry-After), never an error page. A disabled account
cannot log in (403, with the right password only; the attempt stays counted).
A login starts a new session in the store (relay.console.sessions); logging out revokes it there.
Logins, failures that lock, and logouts are events."""

from __future__ import annotations

import logging
import secrets

from sqlalchemy.exc import OperationalError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from relay.console import devices, sessions, throttle
from relay.console.accounts import get_by_username, username_key
from relay.console.web import (
    CSRF_FIELD,
    client_address,
    context,
    csrf_valid,
    current_user,
    page,
    safe_next,
)
from relay.store import events
from relay.store.database import transaction

LIMITS = throttle.Limits()
log = logging.getLogger("relay.console")


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
    with ctx.verifier.admission() as admitted:
        if not admitted:
            return _busy(request, target, username)
        try:
            return await _attempt(request, target, username, str(form.get("password") or ""))
        except OperationalError:  # the store's writers' queue stayed full (a flood of logins): no 500
            log.warning("login of %r refused: the store was busy", username)
            return _busy(request, target, username)


def _busy(request: Request, target: str, username: str) -> Response:
    response = page(request, "login.html", status_code=503, next=target, username=username,
                    error="The console is busy. Please try again in a moment.")
    response.headers["retry-after"] = "5"
    return response


async def _attempt(request: Request, target: str, username: str, password: str) -> Response:
    ctx = context(request)
    address = client_address(request)
    keys = throttle.keys(username, address)
    device = request.cookies.get(devices.COOKIE)
    now = ctx.clock.now()
    async with ctx.engine.connect() as connection:
        account = await get_by_username(connection, username) if username else None
    # The attempt is counted before its password is verified, in a write transaction that checks the locks
    # first: concurrent attempts take turns here, so at most the throttle's limits are ever verified.
    async with transaction(ctx.engine) as connection:
        trusted = await devices.trusted(connection, device, account.id if account else None, now)
        locked = None if trusted else await throttle.locked_until(connection, list(keys.values()), now)
        if locked is None:
            reservation = await throttle.reserve(connection, keys, now, LIMITS)
            if trusted and device:
                await devices.failed(connection, device)  # counted now too; given back with the right password
            if reservation.locked is not None:
                await events.record(connection, "login_locked", now, actor="console", username=username,
                                    address=address, until=reservation.locked.isoformat())
    if locked is not None:
        return page(request, "login.html", status_code=429, next=target, username=username,
                    error=f"Too many failed attempts. Try again after {locked:%H:%M} UTC.")
    # Always one argon2 verification (off the event loop): against the account's hash, or a dummy one for an
    # unknown name.
    right = await ctx.verifier.verify(account.password_hash if account is not None else None, password)
    if not right or account is None:
        locked = reservation.locked
        error = (f"Too many failed attempts. Try again after {locked:%H:%M} UTC." if locked is not None
                 else "Wrong username or password.")
        return page(request, "login.html", status_code=429 if locked else 401, next=target, username=username,
                    error=error)
    if account.disabled:  # the attempt stays counted: a disabled account is no way to test passwords
        return page(request, "login.html", status_code=403, next=target, username=username,
                    error="This account is disabled. Ask the program's admin.")
    async with transaction(ctx.engine) as connection:
        await throttle.give_back(connection, keys, reservation, LIMITS)
        if trusted and device and await devices.used(connection, device, now):
            new_device = None
        else:
            new_device = await devices.remember(connection, account.id, now)
        token, session_id = await sessions.start(connection, account.id, now, address=address,
                                                 user_agent=request.headers.get("user-agent"))
        await events.record(connection, "login", now, actor=account.username, address=address,
                            session=session_id, trusted_browser=trusted)
    request.session.clear()  # a new session on every login: nothing from before it carries over
    request.session["sid"] = token
    request.session["csrf"] = secrets.token_urlsafe(32)
    response = RedirectResponse(target, status_code=303)
    if new_device is not None:
        response.set_cookie(devices.COOKIE, new_device, max_age=int(devices.LIFETIME.total_seconds()),
                            path="/login", httponly=True, samesite="strict", secure=ctx.secure)
    return response


async def logout(request: Request) -> Response:
    user = await current_user(request)
    form = await request.form()
    if not csrf_valid(request, form.get(CSRF_FIELD)):
        return page(request, "message.html", status_code=403, user=user,
                    title="Refused", text="The form expired or did not come from this console. Reload and try again.")
    token = request.session.get("sid")
    if user is not None and isinstance(token, str):
        ctx = context(request)
        now = ctx.clock.now()
        async with transaction(ctx.engine) as connection:
            await sessions.revoke(connection, now, "logout", token=token)
            await events.record(connection, "logout", now, actor=user.username,
                                session=request.state.session.id)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)
