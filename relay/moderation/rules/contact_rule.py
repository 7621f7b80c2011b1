"""The contact_info rule as the policy sees it: contact_info's detector, with the program's region and domain.

The detection itself (addresses, phones, links, handles, street addresses) is owned by contact_info; this
module only feeds it the inspection (phone region, the relay's aliases and domain are never findings) and
keeps the kinds of finding the policy asks for.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, field_validator

from relay.moderation.findings import Finding
from relay.moderation.inspection import Inspection
from relay.moderation.rules.contact_info import KINDS, find_contact_info

NAME = "contact_info"

class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kinds: list[str] | None = None  # None: every kind

    @field_validator("kinds")
    @classmethod
    def _known(cls, value: list[str] | None) -> list[str] | None:
        unknown = [kind for kind in value or [] if kind not in KINDS]
        if unknown:
            raise ValueError(f"unknown kind {unknown[0]!r} (known: {', '.join(KINDS)})")
        return value


def check(inspection: Inspection, params: Params) -> list[Finding]:
    domains = [inspection.domain] if inspection.domain else []
    findings = find_contact_info(
        inspection.text, region=inspection.region, allowed_addresses=inspection.aliases, allowed_domains=domains
    )
    if params.kinds is None:
        return findings
    return [finding for finding in findings if finding.kind in params.kinds]
