"""The contact_info rule as the policy sees it: contact_info's detector, with the program's region and domain.

The detection itself (addresses, phones, links, handles, street addresses) is owned by contact_info; this
module only feeds it the inspection (phone region, the relay's aliases and domain are never findings) and
keeps the kinds of finding the policy asks for.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from relay.moderation.findings import Finding
from relay.moderation.inspection import Inspection
from relay.moderation.rules.contact_info import find_contact_info

NAME = "contact_info"

ContactKind = Literal["email", "meeting_link", "handle", "url", "domain", "phone", "phone_words", "street_address"]


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kinds: list[ContactKind] | None = None  # None: every kind


def check(inspection: Inspection, params: Params) -> list[Finding]:
    domains = [inspection.domain] if inspection.domain else []
    findings = find_contact_info(
        inspection.text, region=inspection.region, allowed_addresses=inspection.aliases, allowed_domains=domains
    )
    if params.kinds is None:
        return findings
    return [finding for finding in findings if finding.kind in params.kinds]
