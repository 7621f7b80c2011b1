"""The DNS lookups of one message's checks: one time budget for all of them, and answers remembered.

DKIM, SPF and DMARC each ask DNS several questions; a slow or hostile zone must not hold the SMTP client
longer than `dns_timeout` in all, and a question asked twice (the DMARC record, the From domain's TXT) is
answered once.
"""

from __future__ import annotations

import time
from typing import Any

from relay.senderauth.resolver import DnsTemporaryError, Resolver

MAX_LOOKUPS = 40  # SPF alone allows 10 mechanisms with DNS and 2 void lookups; this bounds hostile mail


class Lookups:
    def __init__(self, resolver: Resolver, budget: float) -> None:
        self._resolver = resolver
        self._deadline = time.monotonic() + budget
        self._answers: dict[tuple[str, str], list[Any]] = {}
        self.asked = 0

    def query(self, name: str, rdtype: str) -> list[Any]:
        key = (name.rstrip(".").lower(), rdtype)
        if key in self._answers:
            return self._answers[key]
        self.asked += 1
        if self.asked > MAX_LOOKUPS:
            raise DnsTemporaryError("too many DNS lookups for one message")
        answer = self._resolver.query(key[0], rdtype, self._deadline - time.monotonic())
        self._answers[key] = answer
        return answer

    def txt(self, name: str) -> list[bytes]:
        return self.query(name, "TXT")
