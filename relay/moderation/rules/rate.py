"""The rate rule: a pair writing more messages in a day than the program expects.

The count is the pair's messages in the 24 hours before this one; the message that would take it over
max_per_day is flagged, and so is every further one until the count falls back.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from relay.moderation.findings import Finding
from relay.moderation.inspection import Inspection

NAME = "rate"


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_per_day: int = Field(20, ge=1, le=1_000_000, strict=True)


def check(inspection: Inspection, params: Params) -> list[Finding]:
    earlier = inspection.stats.messages_last_24h
    if earlier < params.max_per_day:
        return []
    return [Finding(rule=NAME, kind="rate", match=f"{earlier + 1} messages in 24 hours", start=-1, end=-1)]
