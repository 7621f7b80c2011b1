"""What a sender-authentication verdict means for one message under the policy's `sender_auth`.

| verdict    | prefer                         | require                                         |
|------------|--------------------------------|-------------------------------------------------|
| pass       | nothing to say                 | nothing to say                                  |
| fail       | held for review ("spoofing")   | refused, 550 5.7.1                              |
| unverified | noted with the decision only   | held for review                                 |

Mail to a program address (help@, concern@, away@, share@) cannot be held for review, and what it asks for
(pausing a pair, silencing nudges) must not happen on a forged word: what the table holds is refused there.

`off` checks nothing. Only `fail` is ever called spoofing; `unverified` mail (no records, DNS that did not
answer, a front MTA that did not look) is labelled "unverified" wherever it shows.
"""

from __future__ import annotations

from typing import Literal

from relay.moderation import Decision, Reason, amend
from relay.moderation.findings import Finding
from relay.senderauth.verdict import Verdict

Mode = Literal["require", "prefer", "off"]


def refused(verdict: Verdict, mode: Mode, *, can_hold: bool = True) -> bool:
    """Whether the message is refused at DATA: what the table holds is refused where nothing can be held."""
    if verdict.passed or mode == "off":
        return False
    if verdict.result == "fail":
        return mode == "require" or not can_hold
    return mode == "require" and not can_hold


def reason(verdict: Verdict, mode: Mode) -> Reason | None:
    """The finding the verdict adds to the decision: held or only noted; None when it passed."""
    if verdict.passed:
        return None
    hold = verdict.result == "fail" or mode == "require"
    return Reason(Finding("sender_auth", verdict.kind, verdict.summary, -1, -1), "hold" if hold else "note")


def apply(decision: Decision, verdict: Verdict | None, mode: Mode) -> Decision:
    """The policy's decision with the verdict's finding taken into account."""
    found = reason(verdict, mode) if verdict is not None else None
    return decision if found is None else amend(decision, found)
