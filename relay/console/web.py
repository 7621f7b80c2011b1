"""What every console page shares: the application's state, the logged-in account (its session is in
the store: relay.console.sessions), CSRF tokens, security headers (a strict Content-Security-Policy, no
JavaScript at all), and template rendering.

The browser's cookie (signed, HttpOnly, SameSite=Strict, Secure over HTTPS) carries only the session's
random token and the CSRF token; who is logged in, and whether they still are, is read from the store."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from relay.clock import Clock
from relay.config import Settings
from relay.console import roles, sessions
from relay.console.accounts import Moderator, get_by_username
from relay.console.passwords import Verifier
from relay.holdqueue.actions import Offload, in_thread
from relay.moderation.policy import PolicyBook

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
CSRF_FIELD = "csrf_token"

# No script anywhere; styles and images from the console itself only; forms post only to the console;
# the console is never framed. The HTML of held mail is shown in a sandboxed srcdoc frame, which
# inherits this policy: it can load nothing at all.
CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'; frame-src 'self'")
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
]


@dataclass
class Context:
    settings: Settings
    engine: AsyncEngine
    clock: Clock
    policies: PolicyBook
    templates: Jinja2Templates
    secure: bool  # served over TLS: cookies are Secure
    # CPU work on a message (the copy a release delivers): the relay's worker processes, else a thread
    offload: Offload = in_thread
    # argon2 for logins: in threads, a few at a time (relay.console.passwords)
    verifier: Verifier = field(default_factory=Verifier)


def context(request: Request) -> Context:
    value: Context = request.app.state.console
    return value


def make_templates() -> Jinja2Templates:
    environment = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, trim_blocks=True,
                              lstrip_blocks=True)
    environment.filters["when"] = lambda value: "" if value is None else f"{value:%Y-%m-%d %H:%M}"
    environment.filters["age"] = human_age
    environment.filters["size"] = human_size
    environment.globals["role_label"] = lambda role: roles.LABELS.get(role, role)
    return Jinja2Templates(env=environment)


def human_age(delta: Any) -> str:
    if delta is None:
        return ""
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours = minutes // 60
    return f"{hours} h" if hours < 48 else f"{hours // 24} days"


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    return f"{size / 1024:.1f} KB" if size < 1024 * 1024 else f"{size / 1024 / 1024:.1f} MB"


class SecurityHeaders:
    """Adds the security headers to every response the console sends."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []),
                                      *[(n, v) for n, v in SECURITY_HEADERS if n not in present]]
            await send(message)

        await self.app(scope, receive, with_headers)


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def csrf_valid(request: Request, submitted: Any) -> bool:
    expected = request.session.get("csrf")
    return isinstance(expected, str) and isinstance(submitted, str) and hmac.compare_digest(expected, submitted)


async def current_user(request: Request) -> Moderator | None:
    """The account of this request's live session (relay.console.sessions), or None: never logged in,
    logged out, revoked, idle too long, expired, or the account is disabled. The session is kept on
    request.state.session."""
    token = request.session.get("sid")
    if not isinstance(token, str):
        return None
    ctx = context(request)
    found = await sessions.find(ctx.engine, token, ctx.clock.now())
    if found is None:
        request.session.pop("sid", None)
        return None
    async with ctx.engine.connect() as connection:
        account = await get_by_username(connection, found.username)
    if account is None or account.disabled:  # disabling ends the sessions; this also covers one racing it
        request.session.pop("sid", None)
        return None
    request.state.session = found
    return account


def client_address(request: Request) -> str:
    """The client's address: the peer, or the address a trusted proxy names (console.trusted_proxies)."""
    return request.client.host if request.client else "unknown"


def to_login(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303)


def safe_next(value: Any) -> str:
    """Where to go after logging in: a path on this console only (never another host)."""
    if isinstance(value, str) and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/held"


def page(request: Request, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    values.setdefault("user", None)
    values["csrf"] = csrf_token(request)
    values["csrf_field"] = CSRF_FIELD
    response: HTMLResponse = context(request).templates.TemplateResponse(request, template, values,
                                                                         status_code=status_code)
    return response


def refused(request: Request, user: Moderator | None, status_code: int, title: str, text: str) -> Response:
    return page(request, "message.html", status_code=status_code, user=user, title=title, text=text)


def not_allowed(request: Request, user: Moderator) -> Response:
    """The account's role does not include this action (relay.console.roles)."""
    return refused(request, user, 403, "Not allowed",
                   f"Your role ({roles.LABELS.get(user.role, user.role)}) does not include this action.")


def form_ok(request: Request, form: Any) -> bool:
    return csrf_valid(request, form.get(CSRF_FIELD))


def csrf_refused(request: Request, user: Moderator | None) -> Response:
    return refused(request, user, 403, "Refused",
                   "The form expired or did not come from this console. Reload the page and try again.")
