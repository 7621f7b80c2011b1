"""Moderation: the policy in force turns a message's findings into exactly one decision.

Rules (relay.moderation.rules, one predicate each) produce findings; each finding carries the action
its rule is configured with; the most severe action wins (reject > hold > redact > deliver), and
deliver-and-flag delivers but marks the message for the moderators. A policy's default_action "hold"
holds messages that no rule flagged (hold_first_messages is shorthand for the first_messages rule).
A hold needs as many different moderators to release it as the strictest holding rule asks for
(release_requires).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from relay.moderation.findings import Finding
from relay.moderation.inspection import Inspection
from relay.moderation.policy import SEVERITY, Policy
from relay.moderation.rules.registry import RULES

Action = Literal["deliver", "hold", "redact", "reject"]


@dataclass(frozen=True)
class Reason:
    finding: Finding
    action: str

    def as_dict(self) -> dict[str, Any]:
        return {**self.finding.as_dict(), "action": self.action}


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
    def redactions(self) -> list[Finding]:
        return [r.finding for r in self.reasons if r.action == "redact" and r.finding.start >= 0]


_ACTIONS: dict[int, Action] = {0: "deliver", 1: "deliver", 2: "redact", 3: "hold", 4: "reject"}


def decide(policy: Policy, inspection: Inspection) -> Decision:
    reasons: list[Reason] = []
    release_requires = 1
    for setting in policy.rules:
        for finding in RULES[setting.rule].check(inspection, setting.params):
            reasons.append(Reason(finding, setting.action))
            if setting.action == "hold":
                release_requires = max(release_requires, setting.release_requires)
    if policy.default_action == "hold":
        reasons.append(Reason(Finding("policy", "review_all", "every message is reviewed", -1, -1), "hold"))
    strongest = max((SEVERITY[r.action] for r in reasons), default=0)
    action: Action = _ACTIONS[strongest]
    flagged = any(r.action == "deliver-and-flag" for r in reasons)
    return Decision(action=action, policy=policy.name, reasons=reasons, flagged=flagged,
                    release_requires=release_requires if action == "hold" else 1)
