"""DMARC alignment: does a domain that passed DKIM or SPF belong to the From domain?

The From domain's DMARC record (or, without one, its organisational domain's: RFC 7489 6.6.3) says
whether alignment is strict (the same name) or relaxed (the same organisational domain, found with the
public suffix list). A domain without any DMARC record gets relaxed alignment, the DMARC default.

Written here rather than taken from authheaders: its lookup rebuilds the whole public suffix list on
every call (about 100 ms of CPU per message, measured with bench/throughput.py). The suffix list comes from
tldextract's bundled snapshot, parsed once, never fetched at run time.
"""

from __future__ import annotations

from functools import cache, lru_cache

import tldextract

from relay.senderauth.lookups import Lookups


@cache
def _extractor() -> tldextract.TLDExtract:
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, include_psl_private_domains=True)


@lru_cache(maxsize=4096)
def org_domain(domain: str) -> str:
    """The organisational domain (registrable part) of a name; under a top-level domain the list does not
    know, the last two labels, so that unrelated names under it never align."""
    name = domain.lower().rstrip(".")
    found = _extractor()(name).top_domain_under_public_suffix
    return found or ".".join(name.split(".")[-2:])


def record(domain: str, lookups: Lookups) -> dict[str, str] | None:
    """The DMARC tags that apply to `domain`, or None when neither it nor its organisation publishes one
    (two records at one name count as none, as the RFC says)."""
    names = [domain]
    if org_domain(domain) != domain:
        names.append(org_domain(domain))
    for name in names:
        texts = [t.decode("utf-8", "replace") for t in lookups.txt(f"_dmarc.{name}")]
        found = [t for t in texts if t.replace(" ", "").lower().startswith("v=dmarc1")]
        if len(found) == 1:
            return _tags(found[0])
        if len(found) > 1:
            return None
    return None


def _tags(text: str) -> dict[str, str]:
    tags = {}
    for part in text.split(";"):
        key, sep, value = part.partition("=")
        if sep:
            tags[key.strip().lower()] = value.strip().lower()
    return tags


def aligned(from_domain: str, *, dkim_domains: list[str], spf_domain: str | None,
            lookups: Lookups) -> tuple[bool, str]:
    """(aligned, dmarc) for the domains that passed; dmarc is pass | fail, or none without a record."""
    tags = record(from_domain, lookups)
    adkim = (tags or {}).get("adkim", "r")
    aspf = (tags or {}).get("aspf", "r")

    def same(other: str, mode: str) -> bool:
        other = other.lower().rstrip(".")
        return other == from_domain if mode == "s" else org_domain(other) == org_domain(from_domain)

    ok = any(same(d, adkim) for d in dkim_domains if d) or bool(spf_domain and same(spf_domain, aspf))
    return ok, ("none" if tags is None else "pass" if ok else "fail")
