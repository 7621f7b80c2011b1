"""DKIM: verify every signature on a message with dkimpy, looking keys up through our DNS.

A message may carry several signatures (the author's domain, its mail provider, a mailing list); DMARC
needs to know which domains signed it validly, so each one is verified, up to MAX_SIGNATURES.
"""

from __future__ import annotations

from dataclasses import dataclass

import dkim

from relay.senderauth.lookups import Lookups
from relay.senderauth.resolver import DnsTemporaryError

MAX_SIGNATURES = 5


@dataclass(frozen=True)
class DkimResult:
    domain: str  # the signature's d=
    result: str  # pass | fail | temperror


def verify_all(raw: bytes, lookups: Lookups) -> list[DkimResult]:
    def dnsfunc(name: bytes, timeout: float = 5) -> bytes | None:
        answers = lookups.txt(name.decode("ascii", "replace"))
        return answers[0] if answers else None

    try:
        checker = dkim.DKIM(raw)
    except dkim.DKIMException:
        return []
    signatures = [value for name, value in checker.headers if name.lower() == b"dkim-signature"]
    results = []
    for index, value in enumerate(signatures[:MAX_SIGNATURES]):
        domain = _tag(value, b"d")
        try:
            ok = checker.verify(idx=index, dnsfunc=dnsfunc)  # one parse of the message for every signature
            results.append(DkimResult(domain, "pass" if ok else "fail"))
        except DnsTemporaryError:
            results.append(DkimResult(domain, "temperror"))
        except Exception:  # dkimpy raises several kinds for malformed signatures or keys: all are a failure
            results.append(DkimResult(domain, "fail"))
    return results


def _tag(signature: bytes, tag: bytes) -> str:
    for part in signature.split(b";"):
        key, _, value = part.partition(b"=")
        if key.strip().lower() == tag:
            return b"".join(value.split()).decode("ascii", "replace").lower().rstrip(".")
    return ""
