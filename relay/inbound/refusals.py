"""Refusals: an SMTP reply (code, enhanced status, plain text) with the short machine name of its event.

Every kind of inbound mail raises a Refusal instead of answering; the SMTP handler turns it into the
reply, and relay/inbound/context.py records it as a `refused` event first. The refusals shared by
several kinds are built here; the others live beside the check that makes them.
"""

from __future__ import annotations


class Refusal(Exception):
    """A refusal with its SMTP reply; `reason` is the event's short machine name."""

    def __init__(self, code: int, status: str, text: str, reason: str) -> None:
        super().__init__(text)
        self.code, self.status, self.text, self.reason = code, status, text, reason

    @property
    def reply(self) -> str:
        return f"{self.code} {self.status} {self.text}"


def too_many_refused_recipients(refused: int) -> Refusal:
    """RCPT after `refused` refused recipients in one session: the session is closed (a directory harvest)."""
    return Refusal(421, "4.7.0", f"Too many refused recipients ({refused}) in this session; closing connection.",
                   "too_many_refused_recipients")


def loop() -> Refusal:
    return Refusal(550, "5.4.6", "Mail loop detected: this message has already passed through the relay.", "loop")


def not_a_participant() -> Refusal:
    return Refusal(550, "5.7.1", "Only participants of a mentoring program can write to this address.", "stranger")


def one_target_only(text: str) -> Refusal:
    """RCPT named a second, different target: one message goes to one conversation or address."""
    return Refusal(550, "5.5.3", text, "two_pairs")


def changed() -> Refusal:
    """The conversation changed between RCPT and the write (relay/store/messages.Basis): the sender's server
    tries again, and the conversation as it is then decides."""
    return Refusal(451, "4.3.0", "The mentoring conversation changed while the message was received; please send "
                   "it again.", "changed")


def unreadable_header() -> Refusal:
    return Refusal(554, "5.6.0", "The message header could not be read.", "unprocessable")


def unprocessable(why: str) -> Refusal:
    return Refusal(554, "5.6.0", f"The message could not be processed: {why}.", "unprocessable")


def from_worker(exc: Exception) -> Refusal:
    """A message the worker processes would not finish: too long a header, over the CPU budget, or a
    worker that died under it (temporary: the client may try again)."""
    from relay.workers.pool import BudgetExceeded, WorkerLost

    if isinstance(exc, BudgetExceeded):
        return Refusal(554, "5.6.0", f"The message needs more processing than the relay allows for one message "
                       f"({exc}); it was not accepted.", "over_budget")
    if isinstance(exc, WorkerLost):
        return Refusal(451, "4.3.0", "The relay could not finish processing the message; please try again later.",
                       "worker_lost")
    return Refusal(554, "5.6.0", f"The message could not be processed: {exc}.", "header_too_large")
