"""The rules a policy can name: rule name -> rule module.

Every rule module exposes NAME (the name used in policy YAML), Params (a pydantic model of the rule's
parameters, unknown keys forbidden) and check(inspection, params) -> list[Finding], a pure function.
"""

from __future__ import annotations

from types import ModuleType

from relay.moderation.rules import attachment, contact_rule, first_messages, identity, keywords, rate

RULES: dict[str, ModuleType] = {
    module.NAME: module for module in (attachment, contact_rule, first_messages, identity, keywords, rate)
}
