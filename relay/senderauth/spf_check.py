"""SPF: is the connecting IP allowed to send for the envelope sender's domain? pyspf, with our DNS.

pyspf looks names up through a module-level function bound to the live resolver; its `query.dns` method
is the one place every lookup passes, so a subclass answers there from our Lookups instead.
"""

from __future__ import annotations

from typing import Any

import spf

from relay.senderauth.lookups import Lookups
from relay.senderauth.resolver import DnsTemporaryError


class _Query(spf.query):  # type: ignore[misc]
    def __init__(self, ip: str, sender: str, helo: str, lookups: Lookups) -> None:
        super().__init__(i=ip, s=sender, h=helo)
        self._lookups = lookups

    def dns(self, name: Any, qtype: str, cnames: Any = None, ignore_void: bool = False) -> list[Any]:
        if not name:
            raise spf.PermError("Invalid query")
        if qtype not in ("A", "AAAA", "MX", "PTR", "TXT"):
            return []
        try:
            answers = self._lookups.query(str(name), qtype)
        except DnsTemporaryError as exc:
            raise spf.TempError(f"DNS {exc}") from None
        if qtype == "TXT":
            answers = [(value,) for value in answers]
        if not answers and not ignore_void:
            self.void_lookups += 1
            if self.void_lookups > spf.MAX_VOID_LOOKUPS:
                raise spf.PermError(f"Void lookup limit of {spf.MAX_VOID_LOOKUPS} exceeded")
        return answers


def check(ip: str | None, mail_from: str, helo: str | None, lookups: Lookups) -> str:
    """pass | fail | softfail | neutral | none | permerror | temperror."""
    if not ip:
        return "none"
    try:
        result, _code, _explanation = _Query(ip, mail_from, helo or "unknown", lookups).check()
    except Exception:  # pyspf raises on malformed input it did not foresee: no verdict from SPF
        return "permerror"
    return str(result)
