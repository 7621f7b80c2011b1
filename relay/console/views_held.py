"""The hold queue and one held message: /held, /held/<id>, its attachments, and the four actions
(POST /held/<id>/release | reject | redact | escalate). A group's (or community's) held mail shows the
group's name and its members by handle (relay.holdqueue.parties), like a pair's: never a real name or
address. Everyone sees the messages of their own programs only; anything else is "not found", by design
indistinguishable from a wrong id. Acting needs a role with HELD_DECIDE (moderator, coordinator, admin);
a viewer reads. Urgent items (safeguarding) sort first and are released only after a confirmation
(relay.console.urgent)."""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from relay.console import actions, redaction, urgent
from relay.console.accounts import Moderator
from relay.console.history import history, policy_moderators
from relay.console.message_view import attachment, highlight, view
from relay.console.roles import ADDRESSES_SEE, HELD_DECIDE, all_programs
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
from relay.holdqueue.parties import parties, parties_of
from relay.store import held as held_store
from relay.store.conversations import Conversation
from relay.store.events import list_events
from relay.store.keyset import PAGE, BadCursor

HISTORY = 50  # decided items shown under the queue


def _not_found(request: Request, user: Moderator) -> Response:
    return refused(request, user, 404, "Not found", "There is no held message with this id in your programs.")


async def load(request: Request, user: Moderator,
               message_id: str) -> tuple[dict[str, Any], Any, Conversation] | None:
    """The held item, its archived message and its conversation (pair or group), if this moderator may
    see it."""
    async with context(request).engine.connect() as connection:
        try:
            item, row, conversation = await review.load_any(connection, message_id)
        except review.ReviewError:
            return None
    return (item, row, conversation) if user.may_see(item["program_id"]) else None


async def queue(request: Request) -> Response:
    """One page of the queue (PAGE items, urgent first, then oldest first), filtered in SQL, with the total
    and a link to the next page (`?after=<cursor>`, keyset pagination: relay/store/keyset.py)."""
    user = await current_user(request)
    if user is None:
        return to_login(request)
    ctx = context(request)
    programs = user.visible(sorted(ctx.settings.programs))
    program = request.query_params.get("program") or None
    reason = request.query_params.get("reason") or None
    cursor = request.query_params.get("after") or None
    seen = None if all_programs(user.role) else list(user.programs)
    try:
        async with ctx.engine.connect() as connection:
            items, following = await held_store.held_page(connection, programs=seen, program_id=program,
                                                          reason=reason, limit=PAGE, after=cursor)
            total = await held_store.count_held(connection, programs=seen, program_id=program, reason=reason)
            reasons = await held_store.held_reasons(connection, programs=seen)
            found = await parties_of(connection, items)
    except BadCursor as exc:
        return refused(request, user, 400, "No such page", str(exc))
    now = ctx.clock.now()
    rows = [{"item": item, "between": found[item["message_id"]], "sender": found[item["message_id"]].sender.handle,
             "recipient": found[item["message_id"]].to_text, "age": now - item["held_at"]} for item in items]
    next_url = None
    if following is not None:
        next_url = "/held?" + urlencode({k: v for k, v in (("program", program), ("reason", reason),
                                                          ("after", following)) if v})
    return page(request, "held_list.html", user=user, rows=rows, programs=programs, reasons=reasons,
                program=program, reason=reason, total=total, next_url=next_url, first_page=cursor is None,
                history=await _history(request, user, program) if cursor is None else [])


async def _history(request: Request, user: Moderator, program: str | None) -> list[dict[str, Any]]:
    """The queue's recent history: decided items, automatic rejections included, newest first."""
    seen = None if all_programs(user.role) else list(user.programs)
    async with context(request).engine.connect() as connection:
        return await held_store.recent_decisions(connection, programs=seen, program_id=program, limit=HISTORY)


async def show(request: Request) -> Response:
    user = await current_user(request)
    if user is None:
        return to_login(request)
    ctx = context(request)
    loaded = await load(request, user, request.path_params["id"])
    if loaded is None:
        return _not_found(request, user)
    item, row, pair = loaded
    between = parties(pair, row.sender_id, row.recipient_id)
    sender = between.sender
    now = ctx.clock.now()
    async with ctx.engine.connect() as connection:
        copy_for, preview_raw = await review.preview_copy(ctx.settings, connection, item, row, pair, now,
                                                          ctx.offload)
        edit_seen = await redaction.current_edit(connection, item["message_id"])
        program = ctx.settings.programs.get(item["program_id"])
        lines = await history(connection, await list_events(connection, message_id=item["message_id"]), pair,
                              coordinator=program.coordinator if program else None,
                              moderators=policy_moderators(ctx.policies, item["policy"]), sender=sender,
                              lead=urgent.lead(request, item["program_id"]),
                              hidden_for=None if user.may(ADDRESSES_SEE) else ctx.settings.relay.domain)
    original = view(row.raw)
    preview = view(preview_raw) if preview_raw is not None else None
    return page(request, "held_view.html", user=user, item=item, pair=pair, sender=sender,
                recipient=between.recipient, between=between, copy_for=copy_for, original=original,
                preview=preview, text=highlight(original.text, item["reasons"]), may_decide=user.may(HELD_DECIDE),
                preview_text=highlight(preview.text, item["reasons"]) if preview else "", history=lines,
                age=now - item["held_at"], edit_seen=edit_seen, stopped=review.stopped(pair),
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
    partner = "every other member of the group" if loaded[2].is_group else "the partner"
    not_now = review.stopped(loaded[2]) if action in ("release", "redact") else None
    if not_now is not None:  # paused, closed or ended: no confirmation page for a release that cannot be made
        return refused(request, user, 409, "Not done", not_now)
    try:
        if action == "release" and urgent.needs_confirmation(item, form):
            return urgent.confirm_release(request, user, item)
        if action == "release":
            seen_edit = _seen_edit(form)
            if seen_edit is False:
                return refused(request, user, 400, "Not done",
                               "The page's edit number is not a number this console wrote: open the message again.")
            outcome = await review.release(ctx.settings, ctx.engine, ctx.clock, message_id, user.username,
                                           ctx.offload, seen_edit=seen_edit)
            text = _describe(outcome, f"Released: the message is on its way to {partner}.")
        elif action == "reject":
            reason = str(form.get("reason") or "").strip()
            if not reason:
                return refused(request, user, 400, "A reason is needed",
                               "Say why the message is rejected: the sender is told the reason.")
            outcome = await review.reject(ctx.settings, ctx.engine, ctx.clock, message_id, user.username, reason)
            nobody = "no member of the group gets it" if loaded[2].is_group else "the partner gets nothing"
            text = _describe(outcome, f"Rejected: the sender is told the reason; {nobody}.")
        elif action == "redact" and urgent.urgent(item):
            return refused(request, user, 409, "Not done",
                           "An urgent message is not released with an edit: release it after confirming its "
                           "findings, reject it, or escalate it to the safeguarding lead.")
        elif action == "redact":
            edited = str(form.get("text") or "")
            if not edited.strip():
                return refused(request, user, 400, "Nothing to send", "The edited text is empty.")
            outcome = await actions.redact_and_release(ctx.settings, ctx.engine, ctx.clock, message_id,
                                                       user.username, edited, ctx.offload)
            text = (_describe(outcome, "Released with your edit: the partner gets the edited text; "
                                       "the archive keeps the original.") if outcome.status != "approved" else
                    f"Your edit is saved and your approval of it recorded ({len(outcome.approvals)} of "
                    f"{outcome.needed}). Approvals given before the edit no longer count: the message is delivered "
                    "after the next moderator reads the edited text and approves it.")
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


def _seen_edit(form: Any) -> int | Literal[False] | None:
    """The newest edit the page showed (its hidden `edit` field; 0: none), None when the form has none, False
    when it holds anything but ASCII digits ("²" and "١" are digits to str.isdigit, not to int) or more of them
    than any edit count has."""
    value = str(form.get("edit") or "")
    if not value:
        return None
    return int(value) if re.fullmatch(r"[0-9]{1,9}", value) else False


def _describe(outcome: review.Outcome, done: str) -> str:
    if outcome.status in ("released", "rejected"):
        return done
    if outcome.status == "approved":
        return (f"Your approval is recorded ({len(outcome.approvals)} of {outcome.needed}): "
                "the message is delivered after the next moderator approves it.")
    return f"This message was {outcome.status.removeprefix('already-')} already; nothing changed."
