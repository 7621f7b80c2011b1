"""A trusted front MTA's Authentication-Results header, read instead of checking again ourselves.

Behind Postfix with OpenDKIM and OpenDMARC, the relay's own SPF check would see only Postfix's address;
the front MTA has already checked and says so in Authentication-Results with its authserv-id. Only headers
with that id, in the trace block the front MTA added (above the second Received line: anything lower came
with the message from outside, and one in the front MTA's name down there is a forgery), are read; every
other Authentication-Results header is ignored (and the outbound header allowlist drops them all). A front
MTA that added no header at all did not evaluate the message (Postfix's milters skip mail submitted on the
host itself, as in the deploy guide's loopback test): that is "unverified", not a failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message
from typing import Any

import authres

from relay.senderauth.dmarc import org_domain


@dataclass(frozen=True)
class FrontResults:
    """What the trusted front MTA said: its results (None when it added no header), and whether a header in
    its name came with the message from outside (below its Received line: a forgery)."""

    results: list[Any] | None
    forged: bool = False


def trusted_results(message: Message, authserv_id: str) -> FrontResults:
    """The results in the trusted headers of the front MTA's trace block."""
    found: list[Any] = []
    seen_header = forged = False
    received = 0
    for name, value in message.raw_items():
        lower = name.lower()
        if lower == "received":
            received += 1
        elif lower == "authentication-results":
            try:
                header = authres.AuthenticationResultsHeader.parse_value(" ".join(str(value).split()))
            except Exception:  # unreadable: not a result anyone can rely on
                continue
            if str(header.authserv_id).lower() != authserv_id.lower():
                continue
            if received >= 2:
                forged = True
            else:
                seen_header = True
                found.extend(header.results)
    return FrontResults(found if seen_header else None, forged)


def judge(results: list[Any], from_domain: str) -> tuple[str, str]:
    """(pass | fail | unverified | temperror, summary) from a front MTA's results for this From domain.

    fail: DMARC failed, or a DKIM or SPF check ran and failed; unverified: nothing was checked (none,
    neutral, permerror, or no results at all); temperror: DNS did not answer the front MTA."""
    summary = "; ".join(f"{r.method}={r.result}" + _identity(r) for r in results) or "no results"
    dmarc = next((r.result for r in results if r.method == "dmarc"), None)
    if dmarc == "pass":
        return "pass", summary
    if dmarc == "fail":
        return "fail", summary
    origin = org_domain(from_domain)
    for result in results:
        if result.result != "pass":
            continue
        domain = _property(result, "d") if result.method == "dkim" else None
        if result.method == "spf":
            domain = (_property(result, "mailfrom") or "").rpartition("@")[2] or None
        if domain and org_domain(domain) == origin:
            return "pass", summary
    if any(r.method in ("dkim", "spf") and r.result in ("fail", "softfail") for r in results):
        return "fail", summary
    if any(r.result == "temperror" for r in results):
        return "temperror", summary
    return "unverified", summary


def _property(result: Any, name: str) -> str | None:
    for prop in result.properties:
        if prop.name == name:
            return str(prop.value)
    return None


def _identity(result: Any) -> str:
    parts = [f" {p.type}.{p.name}={p.value}" for p in result.properties if p.name in ("d", "mailfrom", "from")]
    return "".join(parts)
