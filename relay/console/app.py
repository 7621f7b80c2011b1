"""The console application: routes, the session cookie (signed: HttpOnly, SameSite=Strict, Secure over
HTTPS; the session itself is in the store, relay.console.sessions), security headers, static CSS, the
JSON API under /api."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from relay.clock import Clock
from relay.config import Settings
from relay.console import (
    api,
    inputs,
    passwords,
    sessions,
    views_audit,
    views_auth,
    views_held,
    views_metrics,
    views_pair_actions,
    views_pairs,
    views_report,
    views_sessions,
)
from relay.console.web import STATIC, Context, SecurityHeaders, make_templates
from relay.holdqueue.actions import Offload, in_thread
from relay.moderation.policy import PolicyBook

SESSION_COOKIE = "mentor_relay_session"


async def home(request: Request) -> Response:
    return RedirectResponse("/held", status_code=303)


def create_app(settings: Settings, engine: AsyncEngine, clock: Clock, policies: PolicyBook, *, secret: str,
               secure: bool | None = None, offload: Offload = in_thread) -> Starlette:
    """The console for this relay. `secret` signs session cookies; `secure` (default: served over HTTPS,
    here or behind the proxy of console.public_url) marks them Secure."""
    if secure is None:
        secure = settings.relay.console.served_over_https
    passwords.prepare()  # the dummy hash exists before the first login: an unknown name costs the same
    routes = [
        Route("/", home),
        Route("/login", views_auth.login_form, methods=["GET"]),
        Route("/login", views_auth.login, methods=["POST"]),
        Route("/logout", views_auth.logout, methods=["POST"]),
        Route("/held", views_held.queue),
        Route("/held/{id}", views_held.show),
        Route("/held/{id}/attachments/{index:id}", views_held.download),
        Route("/held/{id}/{action:str}", views_held.act, methods=["POST"]),
        Route("/pairs", views_pairs.pair_list),
        Route("/pairs/new", views_pair_actions.enrol_form, methods=["GET"]),
        Route("/pairs/new", views_pair_actions.enrol, methods=["POST"]),
        Route("/pairs/{id:id}", views_pairs.pair_page),
        Route("/pairs/{id:id}/close", views_pair_actions.close, methods=["POST"]),
        Route("/pairs/{id:id}/away", views_pair_actions.mark_away, methods=["POST"]),
        Route("/pairs/{id:id}/resume", views_pair_actions.resume, methods=["POST"]),
        Route("/sessions", views_sessions.session_list),
        Route("/sessions/{id:id}/revoke", views_sessions.revoke, methods=["POST"]),
        Route("/audit", views_audit.audit),
        Route("/report", views_report.report),
        Route("/metrics", views_metrics.metrics),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
        Mount("/api", routes=api.routes),
    ]
    middleware = [
        Middleware(SecurityHeaders),
        Middleware(SessionMiddleware, secret_key=secret, session_cookie=SESSION_COOKIE,
                   max_age=int(sessions.LIFETIME.total_seconds()), same_site="strict", https_only=secure),
    ]
    # {id:id}: an id the store can hold, else 404 (relay/console/inputs.py)
    app = Starlette(routes=routes, middleware=middleware, exception_handlers={HTTPException: inputs.http_error})
    app.state.console = Context(settings=settings, engine=engine, clock=clock, policies=policies,
                                templates=make_templates(), secure=secure, offload=offload)
    return app
