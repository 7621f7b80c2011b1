"""A trusted front MTA's Authentication-Results header, read instead of checking again ourselves.

Behind Postfix with OpenDKIM and OpenDMARC, the relay's own SPF check would see only Postfix's address;
the front MTA has already checked and says so in Authentication-Results with its authserv-id. Only headers
with that id, in the trace block the front MTA added (above the second Received line: anything lower came
with the message from outside), are read; every other Authentication-Results header is ignored (and the
outbound header allowlist drops them all).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import authres

from relay.senderauth.dmarc import org_domain


def trusted_results(fields: Iterable[tuple[str, str]], authserv_id: str) -> list[Any] | None:
    """The results in the trusted headers, or None when the front MTA added none. `fields`: the message's header
    fields (name, value) in order; relay/inbound/header.trace_fields gives the ones that matter."""
    found: list[Any] = []
    seen_header = False
    received = 0
    for name, value in fields:
        lower = name.lower()
        if lower == "received":
            received += 1
            if received >= 2:
                break
        elif lower == "authentication-results":
            try:
                header = authres.AuthenticationResultsHeader.parse_value(" ".join(str(value).split()))
            except Exception:  # unreadable: not a result anyone can rely on
                continue
            if str(header.authserv_id).lower() == authserv_id.lower():
                seen_header = True
                found.extend(header.results)
    return found if seen_header else None


def judge(results: list[Any], from_domain: str) -> tuple[str, str]:
    """(pass | fail | temperror, summary) from a front MTA's results for this From domain."""
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
    if any(r.result == "temperror" for r in results):
        return "temperror", summary
    return "fail", summary


def _property(result: Any, name: str) -> str | None:
    for prop in result.properties:
        if prop.name == name:
            return str(prop.value)
    return None


def _identity(result: Any) -> str:
    parts = [f" {p.type}.{p.name}={p.value}" for p in result.properties if p.name in ("d", "mailfrom", "from")]
    return "".join(parts)
