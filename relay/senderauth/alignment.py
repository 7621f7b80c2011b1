"""DMARC alignment: does a domain that passed DKIM or SPF belong to the From domain?

authheaders finds the From domain's DMARC record (or its organisational domain's, with the public suffix
list it ships) and applies its strict or relaxed alignment. A domain without a DMARC record still needs an
answer here: the relay then asks for relaxed alignment, the DMARC default.
"""

from __future__ import annotations

from authheaders import dmarc_per_from
from authheaders.dmarc_lookup import DMARCException, get_org_domain
from authres import DKIMAuthenticationResult, SPFAuthenticationResult

from relay.senderauth.lookups import Lookups


def org_domain(domain: str) -> str:
    """The organisational domain (registrable part) of a name; for a top-level domain the public suffix
    list does not know, the last two labels, so that unrelated names under it never align."""
    name = domain.lower().rstrip(".")
    try:
        found = str(get_org_domain(name))
    except Exception:  # a name the suffix list cannot place
        found = ""
    return found if "." in found else ".".join(name.split(".")[-2:])


def aligned(from_domain: str, *, dkim_domain: str | None = None, spf_sender: str | None = None,
            lookups: Lookups) -> tuple[bool, str]:
    """(aligned, dmarc) where dmarc is the record's verdict: pass | fail | none (no record) | permerror."""

    def dnsfunc(name: str) -> str | None:
        for value in lookups.txt(name):
            text = value.decode("utf-8", "replace")
            if text.startswith("v=DMARC1"):
                return text
        return None

    spf_result = (SPFAuthenticationResult(result="pass", smtp_mailfrom=spf_sender) if spf_sender else None)
    dkim_result = (DKIMAuthenticationResult(result="pass", header_d=dkim_domain) if dkim_domain else None)
    try:
        dmarc, _comment, _domain, _policy = dmarc_per_from(
            from_domain, spf_result=spf_result, dkim_result=dkim_result, dnsfunc=dnsfunc)
    except DMARCException:
        dmarc = "permerror"
    if dmarc in ("pass", "fail"):
        return dmarc == "pass", dmarc
    other = dkim_domain or (spf_sender or "").rpartition("@")[2]
    return bool(other) and org_domain(other) == org_domain(from_domain), dmarc
