"""Moderation: the program's policy decides deliver | hold | redact | reject for each message.

Until the rules and policies of the moderation issue exist, the decision is always "deliver", made
and recorded through this one function so that the rest of the path does not change when rules come.
The policy in force (the pair's override, else the program's) is named in the decision's reasons.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Action = Literal["deliver", "hold", "redact", "reject"]


@dataclass(frozen=True)
class Decision:
    action: Action
    policy: str
    reasons: list[dict[str, Any]] = field(default_factory=list)


def decide(policy_name: str) -> Decision:
    return Decision(action="deliver", policy=policy_name)
