"""What intake adds to an accepted message in the commit that holds (or automatically rejects) it.

An urgent hold: the queue row marked urgent, the lead's URGENT alert, the moderators' URGENT alert (at once,
whatever their digest), and the sender's help text in place of the routine "waiting for review" notice.
The mail is queued with the hold, in one transaction, so the lead's alert leaves as soon as the delivery
worker wakes, and a hold never exists without it.

An automatic rejection: a row in the queue's history (state rejected, decided by the relay), and, when the
policy says `notify_rejections`, the moderators' report at once (or later in their digest: relay.safeguarding.sweep).
"""

from __future__ import annotations

from relay.config import Settings
from relay.hiding import NO_SUBJECT
from relay.moderation import Decision
from relay.moderation.policy import Policy
from relay.notices import as_entry
from relay.safeguarding import notices
from relay.store.conversations import Conversation, Member
from relay.store.events import event_values
from relay.store.messages import Accepted, HoldEntry

AUTOMATIC_REASON = "rejected automatically by the policy"


def concern(accepted: Accepted, decision: Decision, pair: Conversation, sender: Member,
            recipient: Member | None) -> notices.Concern:
    """The accepted message as safeguarding mail describes it (`recipient` None: a whole group)."""
    to_handle, to_role = notices.addressee(pair, recipient)
    return notices.Concern(
        id=accepted.id, pair_id=pair.id, program_id=pair.program_id, sender_handle=sender.handle,
        sender_role=sender.role, recipient_handle=to_handle, recipient_role=to_role,
        held_at=accepted.received_at, reasons=decision.reason_dicts(),
        subject=accepted.staff_subject or NO_SUBJECT, group_name=notices.group_name(pair))


def hold_urgent(accepted: Accepted, settings: Settings, decision: Decision, policy: Policy, pair: Conversation,
                sender: Member, recipient: Member | None, own_id: str | None) -> None:
    """Fill in an urgent hold: the queue row, the alerts and the sender's help text."""
    now = accepted.received_at
    program = settings.programs.get(pair.program_id)
    item = concern(accepted, decision, pair, sender, recipient)
    configured = program is not None and program.safeguarding is not None and program.safeguarding.help_text
    if configured or policy.notices.held is not None:  # a policy that tells senders nothing, and no help text
        accepted.notices.append(as_entry(notices.help_notice(
            settings, program, pair.program_id, to=sender, subject=accepted.subject, in_reply_to=own_id,
            now=now)))
    leads = notices.lead_alert(settings, item, now)
    moderators = notices.moderator_alert(settings, policy, item, now)
    accepted.notices.extend(as_entry(mail) for mail in [*leads, *moderators])
    accepted.extra_events.append(event_values(
        "urgent_alert", now, pair_id=pair.id, message_id=accepted.id, to=[mail.rcpt for mail in leads],
        moderators=[mail.rcpt for mail in moderators],
        findings=[{k: r.get(k) for k in ("rule", "kind", "match")} for r in item.findings if r.get("severity")]))
    accepted.hold = HoldEntry(program_id=pair.program_id, policy=policy.name, reasons=decision.reason_dicts(),
                              release_requires=decision.release_requires, notified=True, severity="urgent")


def record_rejection(accepted: Accepted, settings: Settings, decision: Decision, policy: Policy,
                     pair: Conversation, sender: Member, recipient: Member | None) -> None:
    """An automatic rejection: in the queue's history, and reported to the moderators when the policy says so."""
    now = accepted.received_at
    report = policy.notify_rejections and bool(policy.moderators.notify)
    at_once = report and policy.digest_every is None
    if at_once:
        mails = notices.rejection_report(settings, policy, pair.program_id,
                                         [concern(accepted, decision, pair, sender, recipient)], now)
        accepted.notices.extend(as_entry(mail) for mail in mails)
        accepted.extra_events.append(event_values("rejection_reported", now, pair_id=pair.id,
                                                  message_id=accepted.id, to=[mail.rcpt for mail in mails]))
    accepted.hold = HoldEntry(program_id=pair.program_id, policy=policy.name, reasons=decision.reason_dicts(),
                              release_requires=1, notified=at_once or not report, rejected=AUTOMATIC_REASON)
