"""The first_messages rule: the first few messages of a pair, while the two are still strangers.

Every message is flagged until the pair has exchanged `count` messages (in either direction).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from relay.moderation.findings import Finding
from relay.moderation.inspection import Inspection

NAME = "first_messages"


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    count: int = Field(3, ge=0, le=1000, strict=True)


def check(inspection: Inspection, params: Params) -> list[Finding]:
    earlier = inspection.stats.messages_total
    if earlier >= params.count:
        return []
    match = f"message {earlier + 1} of the first {params.count}"
    return [Finding(rule=NAME, kind="first_messages", match=match, start=-1, end=-1)]
