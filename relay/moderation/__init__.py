"""Moderation: the policy in force turns a message's findings into exactly one decision.

Rules (relay.moderation.rules, one predicate each) produce findings; each finding carries the action
and the severity its rule is configured with. The most severe action wins (reject > hold > redact >
deliver), and deliver-and-flag delivers but marks the message for the moderators. One exception comes
first: a finding of an urgent rule (a safeguarding sign such as a disclosure or a grooming pattern) makes
the message held for a person, whatever the other rules say: never delivered automatically, never
rejected automatically. A policy's default_action "hold" holds messages that no rule flagged
(hold_first_messages is shorthand for the first_messages rule). A match a redact rule finds in an attached
document's text cannot be redacted there (the file goes as it is): it holds the message instead. A hold
needs as many different moderators to release it as the strictest holding or urgent rule asks for
(release_requires).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from relay.moderation.findings import Finding
from relay.moderation.inspection import Inspection
from relay.moderation.policy import SEVERITY, Policy
from relay.moderation.rules.registry import RULES

Action = Literal["deliver", "hold", "redact", "reject"]
Severity = Literal["normal", "urgent"]

# "note": recorded with the decision for the moderators to see, changing nothing (e.g. mail that could not
# be verified under sender_auth: prefer).
_RANK = {**SEVERITY, "note": 0}


@dataclass(frozen=True)
class Reason:
    finding: Finding
    action: str
    severity: Severity = "normal"
    release_requires: int = 1

    def as_dict(self) -> dict[str, Any]:
        urgent = {"severity": "urgent"} if self.severity == "urgent" else {}
        return {**self.finding.as_dict(), "action": self.action, **urgent}


@dataclass(frozen=True)
class Decision:
    action: Action
    policy: str
    reasons: list[Reason] = field(default_factory=list)
    flagged: bool = False
    release_requires: int = 1

    def reason_dicts(self) -> list[dict[str, Any]]:
        return [r.as_dict() for r in self.reasons]

    @property
    def severity(self) -> Severity:
        return "urgent" if any(r.severity == "urgent" for r in self.reasons) else "normal"

    @property
    def urgent(self) -> bool:
        return self.severity == "urgent"

    @property
    def redactions(self) -> list[Finding]:
        return [r.finding for r in self.reasons if r.action == "redact" and r.finding.start >= 0]


_ACTIONS: dict[int, Action] = {0: "deliver", 1: "deliver", 2: "redact", 3: "hold", 4: "reject"}


def _combine(policy: str, reasons: list[Reason]) -> Decision:
    """One decision from all reasons: urgent holds; otherwise the most severe action wins."""
    urgent = any(r.severity == "urgent" for r in reasons)
    action: Action = "hold" if urgent else _ACTIONS[max((_RANK[r.action] for r in reasons), default=0)]
    flagged = any(r.action == "deliver-and-flag" for r in reasons)
    release_requires = max((r.release_requires for r in reasons if r.action == "hold" or r.severity == "urgent"),
                           default=1)
    return Decision(action=action, policy=policy, reasons=reasons, flagged=flagged,
                    release_requires=release_requires if action == "hold" else 1)


def decide(policy: Policy, inspection: Inspection) -> Decision:
    reasons: list[Reason] = []
    for setting in policy.rules:
        for finding in RULES[setting.rule].check(inspection, setting.params):
            action = setting.action
            if action in ("redact", "reject") and finding.start >= 0 and inspection.in_document(finding.start):
                # in a file (or a charset's other reading): it cannot be redacted, and a sender cannot take a link
                # out of a handout as out of a sentence; a person judges it (a citation, or a private channel)
                action = "hold"
            reasons.append(Reason(finding, action, setting.severity, setting.release_requires))
    if policy.default_action == "hold":
        reasons.append(Reason(Finding("policy", "review_all", "every message is reviewed", -1, -1), "hold"))
    return _combine(policy.name, reasons)


def amend(decision: Decision, reason: Reason) -> Decision:
    """The decision with one more reason found outside the rules (sender authentication), decided again."""
    combined = _combine(decision.policy, [*decision.reasons, reason])
    return replace(combined, flagged=combined.flagged or decision.flagged)
