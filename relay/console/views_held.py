"""The hold queue and one held message: /held, /held/<id>, its attachments, and the four actions
(POST /held/<id>/release | reject | redact | escalate). Everyone sees the messages of their own programs
only; anything else is "not found", by design indistinguishable from a wrong id. Acting needs a role
with HELD_DECIDE (moderator, coordinator, admin); a viewer reads. Urgent items (safeguarding) sort first
and are released only after a confirmation (relay.console.urgent)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from relay import ids
from relay.console import actions, urgent
from relay.console.accounts import Moderator
from relay.console.history import history, policy_moderators
from relay.console.message_view import attachment, highlight, view
from relay.console.roles import HELD_DECIDE
from relay.console.web import (
    context,
    csrf_refused,
    current_user,
    form_ok,
    not_allowed,
    page,
    refused,
    to_login,
)
from relay.holdqueue import actions as review
from relay.store import held as held_store
from relay.store.events import list_events
from relay.store.pairs import Pair, get_pair

HISTORY = 50  # decided items shown under the queue


def _not_found(request: Request, user: Moderator) -> Response:
    return refused(request, user, 404, "Not found", "There is no held message with this id in your programs.")


async def load(request: Request, user: Moderator, message_id: str) -> tuple[dict[str, Any], Any, Pair] | None:
    """The held item, its archived message and its pair, if this moderator may see it."""
    async with context(request).engine.connect() as connection:
        try:
            item, row, pair = await review.load(connection, message_id)
        except review.ReviewError:
            return None
    return (item, row, pair) if user.may_see(item["program_id"]) else None


async def queue(request: Request) -> Response:
    user = await current_user(request)
    if user is None:
        return to_login(request)
    ctx = context(request)
    programs = user.visible(sorted(ctx.settings.programs))
    program = request.query_params.get("program") or None
    reason = request.query_params.get("reason") or None
    async with ctx.engine.connect() as connection:
        items = [i for i in await held_store.list_held(connection, state="held", program_id=program)
                 if user.may_see(i["program_id"])]
        pairs: dict[int, Pair | None] = {}
        for item in items:
            if item["pair_id"] not in pairs:
                pairs[item["pair_id"]] = await get_pair(connection, item["pair_id"])
    reasons = sorted({r["rule"] for i in items for r in i["reasons"]})
    if reason is not None:
        items = [i for i in items if any(r["rule"] == reason for r in i["reasons"])]
    items = urgent.queue_order(items)
    now = ctx.clock.now()
    rows = []
    for item in items:
        pair = pairs[item["pair_id"]]
        assert pair is not None
        sender = pair.mentor if pair.mentor.id == item["sender_id"] else pair.mentee
        rows.append({"item": item, "sender": sender.handle, "recipient": pair.partner_of(sender).handle,
                     "age": now - item["held_at"]})
    return page(request, "held_list.html", user=user, rows=rows, programs=programs, reasons=reasons,
                program=program, reason=reason, history=await _history(request, user, program))


async def _history(request: Request, user: Moderator, program: str | None) -> list[dict[str, Any]]:
    """The queue's recent history: decided items, automatic rejections included, newest first."""
    async with context(request).engine.connect() as connection:
        decided = [i for i in await held_store.list_held(connection, state=None, program_id=program)
                   if i["state"] != "held" and user.may_see(i["program_id"])]
    return sorted(decided, key=lambda i: i["decided_at"] or i["held_at"], reverse=True)[:HISTORY]


async def show(request: Request) -> Response:
    user = await current_user(request)
    if user is None:
        return to_login(request)
    ctx = context(request)
    loaded = await load(request, user, request.path_params["id"])
    if loaded is None:
        return _not_found(request, user)
    item, row, pair = loaded
    now = ctx.clock.now()
    async with ctx.engine.connect() as connection:
        preview_raw = await review.delivered_copy(ctx.settings, connection, item, row, pair,
                                                  ids.message_id(ctx.settings.relay.domain), now, ctx.offload)
        sender = pair.mentor if pair.mentor.id == row.sender_id else pair.mentee
        program = ctx.settings.programs.get(item["program_id"])
        lines = await history(connection, await list_events(connection, message_id=item["message_id"]), pair,
                              coordinator=program.coordinator if program else None,
                              moderators=policy_moderators(ctx.policies, item["policy"]), sender=sender,
                              lead=urgent.lead(request, item["program_id"]))
    original = view(row.raw)
    preview = view(preview_raw)
    return page(request, "held_view.html", user=user, item=item, pair=pair, sender=sender,
                recipient=pair.partner_of(sender), original=original, preview=preview,
                text=highlight(original.text, item["reasons"]), may_decide=user.may(HELD_DECIDE),
                preview_text=highlight(preview.text, item["reasons"]), history=lines, age=now - item["held_at"],
                urgent=urgent.urgent(item), findings=urgent.findings(item), lead=urgent.lead(request, pair.program_id))



async def download(request: Request) -> Response:
    user = await current_user(request)
    if user is None:
        return to_login(request)
    loaded = await load(request, user, request.path_params["id"])
    if loaded is None:
        return _not_found(request, user)
    found = attachment(loaded[1].raw, request.path_params["index"])
    if found is None:
        return refused(request, user, 404, "Not found", "This message has no such attachment.")
    filename, data = found
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in filename)[:100] or "attachment"
    return Response(data, media_type="application/octet-stream", headers={
        "content-disposition": f'attachment; filename="{safe}"',
        "content-security-policy": "default-src 'none'; sandbox"})


async def act(request: Request) -> Response:
    user = await current_user(request)
    if user is None:
        return to_login(request)
    ctx = context(request)
    form = await request.form()
    if not form_ok(request, form):
        return csrf_refused(request, user)
    message_id = request.path_params["id"]
    action = request.path_params["action"]
    loaded = await load(request, user, message_id)
    if loaded is None:
        return _not_found(request, user)
    if not user.may(HELD_DECIDE):
        return not_allowed(request, user)
    item = loaded[0]
    try:
        if action == "release" and urgent.needs_confirmation(item, form):
            return urgent.confirm_release(request, user, item)
        if action == "release":
            outcome = await review.release(ctx.settings, ctx.engine, ctx.clock, message_id, user.username,
                                           ctx.offload)
            text = _describe(outcome, "Released: the message is on its way to the partner.")
        elif action == "reject":
            reason = str(form.get("reason") or "").strip()
            if not reason:
                return refused(request, user, 400, "A reason is needed",
                               "Say why the message is rejected: the sender is told the reason.")
            outcome = await review.reject(ctx.settings, ctx.engine, ctx.clock, message_id, user.username, reason)
            text = _describe(outcome, "Rejected: the sender is told the reason; the partner gets nothing.")
        elif action == "redact" and urgent.urgent(item):
            return refused(request, user, 409, "Not done",
                           "An urgent message is not released with an edit: release it after confirming its "
                           "findings, reject it, or escalate it to the safeguarding lead.")
        elif action == "redact":
            edited = str(form.get("text") or "")
            if not edited.strip():
                return refused(request, user, 400, "Nothing to send", "The edited text is empty.")
            outcome = await actions.redact_and_release(ctx.settings, ctx.engine, ctx.clock, message_id,
                                                       user.username, edited)
            text = _describe(outcome, "Released with your edit: the partner gets the edited text; "
                                      "the archive keeps the original.")
        elif action == "escalate" and urgent.escalation_target(item, form) == "lead":
            text = await urgent.escalate(request, user, message_id, str(form.get("note") or "").strip())
        elif action == "escalate":
            escalated = await actions.escalate(ctx.settings, ctx.engine, ctx.clock, message_id, user.username,
                                               str(form.get("note") or "").strip())
            text = (f"Escalated: the coordinator ({escalated.coordinator}) is told. The message stays held."
                    if escalated.status == "escalated" else "This message is no longer held; nothing changed.")
        else:
            return _not_found(request, user)
    except review.ReviewError as exc:
        return refused(request, user, 409, "Not done", str(exc))
    return page(request, "message.html", user=user, title="Done", text=text, message_id=message_id)


def _describe(outcome: review.Outcome, done: str) -> str:
    if outcome.status in ("released", "rejected"):
        return done
    if outcome.status == "approved":
        return (f"Your approval is recorded ({len(outcome.approvals)} of {outcome.needed}): "
                "the message is delivered after the next moderator approves it.")
    return f"This message was {outcome.status.removeprefix('already-')} already; nothing changed."
