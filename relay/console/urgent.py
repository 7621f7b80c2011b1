"""The console's part of safeguarding: urgent items first, a release of an urgent item only after a
confirmation that names its findings, and "Escalate to safeguarding lead" as its first action.

Kept apart from the queue's views (relay.console.views_held), which call these few functions. Without
JavaScript (the console has none) a confirmation is a page: releasing an urgent item first shows its
findings and a second button that posts `confirm=yes`.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from relay.console.accounts import Moderator
from relay.console.web import context, page
from relay.safeguarding import notices
from relay.safeguarding.escalation import escalate_to_lead

CONFIRM_FIELD = "confirm"


def urgent(item: dict[str, Any]) -> bool:
    return item.get("severity") == "urgent"


def queue_order(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Urgent items first, each group oldest first."""
    return sorted(items, key=lambda i: (not urgent(i), i["held_at"], i["message_id"]))


def findings(item: dict[str, Any]) -> list[dict[str, Any]]:
    """The findings a moderator confirms: urgent ones first; "every message is reviewed" is none."""
    found = [r for r in item["reasons"] if r.get("rule") != "policy"]
    return sorted(found, key=lambda r: r.get("severity") != "urgent")


def needs_confirmation(item: dict[str, Any], form: FormData) -> bool:
    return urgent(item) and form.get(CONFIRM_FIELD) != "yes"


def confirm_release(request: Request, user: Moderator, item: dict[str, Any]) -> Response:
    """The confirmation page of an urgent release: its findings, and the button that really releases."""
    return page(request, "held_confirm.html", user=user, item=item, findings=findings(item),
                confirm_field=CONFIRM_FIELD)


def escalation_target(item: dict[str, Any], form: FormData) -> str:
    """lead | coordinator: what the moderator chose; by default the lead for urgent items."""
    chosen = str(form.get("to") or "")
    return chosen if chosen in ("lead", "coordinator") else ("lead" if urgent(item) else "coordinator")


async def escalate(request: Request, user: Moderator, message_id: str, note: str) -> str:
    ctx = context(request)
    done = await escalate_to_lead(ctx.settings, ctx.engine, ctx.clock, message_id, user.username, note)
    if done.status != "escalated":
        return "This message is no longer held; nothing changed."
    return f"Escalated: {', '.join(done.told)} told (URGENT). The message stays held and shows as escalated."


def lead(request: Request, program_id: str) -> str | None:
    return notices.lead_of(context(request).settings, program_id)
