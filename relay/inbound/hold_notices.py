"""The mail a hold or a rejection at intake brings with it, written in the same transaction as the
message: the sender's notice (if the policy sends one), the moderators' notice when the policy asks
to be told at once (else the hold sweep's digest tells them), and the hold-queue entry itself. An urgent
hold and an automatic rejection take their own course (relay/safeguarding/holding.py).
"""

from __future__ import annotations

from relay.config import Settings
from relay.hiding import NO_SUBJECT
from relay.holdqueue.notify import moderator_notices, sender_notice
from relay.moderation import Decision
from relay.moderation.policy import Policy
from relay.notices import as_entry
from relay.safeguarding import holding as safeguarding
from relay.safeguarding import notices as safeguarding_notices
from relay.store.conversations import Conversation, Member
from relay.store.messages import Accepted, HoldEntry


def add_notices(settings: Settings, accepted: Accepted, decision: Decision, policy: Policy, pair: Conversation,
                sender: Member, recipient: Member | None, own_id: str | None) -> None:
    now = accepted.received_at
    if decision.urgent:  # a safeguarding sign: lead, moderators and the sender's help text, in this commit
        safeguarding.hold_urgent(accepted, settings, decision, policy, pair, sender, recipient, own_id)
        return
    kind = "held" if decision.action == "hold" else "rejected"
    notice = sender_notice(settings, kind=kind, policy=policy, program_id=pair.program_id, to=sender.email,
                           subject=accepted.subject, in_reply_to=own_id, now=now, reader=sender)
    if notice is not None:
        accepted.notices.append(as_entry(notice))
    if decision.action != "hold":  # rejected by the policy: in the queue's history, moderators told
        safeguarding.record_rejection(accepted, settings, decision, policy, pair, sender, recipient)
        return
    immediately = policy.digest_every is None and bool(policy.moderators.notify)
    if immediately:
        item = {"id": accepted.id, "pair_id": pair.id, "sender_handle": sender.handle,
                "recipient_handle": recipient.handle if recipient else f"the group {pair.name}",
                "group_name": safeguarding_notices.group_name(pair),
                "subject": accepted.staff_subject or NO_SUBJECT,  # the anonymised copy's, never as typed
                "held_at": now, "reasons": decision.reason_dicts()}
        for mail in moderator_notices(settings, template="moderator_held", policy=policy,
                                      program_id=pair.program_id, items=[item], now=now):
            accepted.notices.append(as_entry(mail))
    accepted.hold = HoldEntry(program_id=pair.program_id, policy=policy.name, reasons=decision.reason_dicts(),
                              release_requires=decision.release_requires, notified=immediately)
