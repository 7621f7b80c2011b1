"""What coordinators (and admins) do to their programs' pairs from the console, with the same code as
the command line: enrol (GET/POST /pairs/new, relay.enrol.create_pair), close with farewells (POST
/pairs/<id>/close, relay.endings.close_pair), mark a member away or back (POST /pairs/<id>/away,
relay.inbound.program.away), resume a paused pair (POST /pairs/<id>/resume). Each needs PAIRS_MANAGE and a
pair of the account's programs, and is an event with the account's name as actor."""

from __future__ import annotations

from datetime import date
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from relay.console.accounts import Moderator
from relay.console.roles import PAIRS_MANAGE
from relay.console.views_pairs import pair_page
from relay.console.web import context, csrf_refused, current_user, form_ok, not_allowed, page, refused, to_login
from relay.endings import close_pair
from relay.enrol import EnrolmentError, Person, create_pair
from relay.inbound.program import away, help
from relay.store.database import transaction
from relay.store.pairs import Pair, get_pair

FIELDS = ("program", "mentor_email", "mentor_name", "mentor_handle", "mentor_timezone", "mentee_email", "mentee_name",
          "mentee_handle", "mentee_timezone", "end_date")


async def enrol_form(request: Request) -> Response:
    user = await current_user(request)
    if user is None:
        return to_login(request)
    if not user.may(PAIRS_MANAGE):
        return not_allowed(request, user)
    return _form(request, user, {})


def _form(request: Request, user: Moderator, values: dict[str, str], error: str | None = None,
          status_code: int = 200) -> Response:
    programs = user.visible(sorted(context(request).settings.programs))
    return page(request, "pair_new.html", status_code=status_code, user=user, programs=programs, values=values,
                error=error)


async def enrol(request: Request) -> Response:
    user = await current_user(request)
    if user is None:
        return to_login(request)
    form = await request.form()
    if not form_ok(request, form):
        return csrf_refused(request, user)
    if not user.may(PAIRS_MANAGE):
        return not_allowed(request, user)
    values = {name: str(form.get(name) or "").strip() for name in FIELDS}
    if not user.may_see(values["program"]):
        return _form(request, user, values, "Choose one of your programs.", 400)
    ctx = context(request)
    try:
        pair = await create_pair(
            ctx.settings, ctx.engine, ctx.clock, program_id=values["program"], actor=user.username,
            end_date=values["end_date"] or None,
            mentor=Person(values["mentor_email"], values["mentor_name"], values["mentor_handle"],
                          values["mentor_timezone"] or None),
            mentee=Person(values["mentee_email"], values["mentee_name"], values["mentee_handle"],
                          values["mentee_timezone"] or None))
    except EnrolmentError as exc:
        return _form(request, user, values, str(exc), 400)
    return RedirectResponse(f"/pairs/{pair.id}?enrolled=1", status_code=303)


async def _managed(request: Request) -> tuple[Moderator, Any, Pair] | Response:
    """The account, the form and the open pair it may manage, or the refusal to send."""
    user = await current_user(request)
    if user is None:
        return to_login(request)
    form = await request.form()
    if not form_ok(request, form):
        return csrf_refused(request, user)
    async with context(request).engine.connect() as connection:
        pair = await get_pair(connection, request.path_params["id"])
    if pair is None or not user.may_see(pair.program_id):
        return refused(request, user, 404, "Not found", "There is no pair with this id in your programs.")
    if not user.may(PAIRS_MANAGE):
        return not_allowed(request, user)
    if pair.status == "closed":
        return refused(request, user, 409, "Not done", f"Pair {pair.id} is closed.")
    return user, form, pair


async def close(request: Request) -> Response:
    found = await _managed(request)
    if isinstance(found, Response):
        return found
    user, form, pair = found
    if form.get("confirm") != "yes":
        return await pair_page(request, "Tick the box to confirm: closing stops the pair's aliases.", 400)
    ctx = context(request)
    try:
        await close_pair(ctx.settings, ctx.engine, ctx.clock, pair.id, str(form.get("reason") or "") or None,
                         actor=user.username)
    except EnrolmentError as exc:
        return await pair_page(request, str(exc), 400)
    return await pair_page(request, f"Pair {pair.id} is closed: both members were sent a farewell and the "
                                    f"coordinator was told; later mail to its aliases gets a short note.")


async def mark_away(request: Request) -> Response:
    found = await _managed(request)
    if isinstance(found, Response):
        return found
    user, form, pair = found
    role = str(form.get("role") or "")
    if role not in ("mentor", "mentee"):
        return await pair_page(request, "Choose the mentor or the mentee.", 400)
    text = str(form.get("until") or "").strip()
    try:
        wanted = away.Request(date.fromisoformat(text) if text else None)
    except ValueError:
        return await pair_page(request, f"{text!r} is not a date (YYYY-MM-DD).", 400)
    ctx = context(request)
    member = pair.member(role)
    try:
        async with transaction(ctx.engine) as connection:
            await away.apply(connection, ctx.settings, pair, member, wanted, ctx.clock.now(), actor=user.username)
    except away.AwayError as exc:
        return await pair_page(request, f"Not done: {exc}.", 400)
    said = f"away until {wanted.until.isoformat()}" if wanted.until else "back"
    return await pair_page(request, f"{member.handle} ({role}) is {said}; the partner is told.")


async def resume(request: Request) -> Response:
    found = await _managed(request)
    if isinstance(found, Response):
        return found
    user, _, pair = found
    ctx = context(request)
    async with transaction(ctx.engine) as connection:
        resumed = await help.resume(connection, pair.id, ctx.clock.now(), user.username)
    return await pair_page(request, "Resumed: the pair's mail is delivered again (mail held meanwhile waits in "
                                    "Held mail)." if resumed else "This pair was not paused; nothing changed.")
