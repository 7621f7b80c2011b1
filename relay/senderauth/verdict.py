"""The verdict on one message: did it come from the domain of the enrolled address it claims?

Authentic means DMARC-aligned: a valid DKIM signature, or an SPF pass for the envelope sender, from the
From domain (strictly or relaxed, as the domain's DMARC record asks; relaxed when it has none). DNS that
cannot answer now gives "temperror", which the policy may treat as "try again later". Behind a trusted
front MTA, its Authentication-Results are judged the same way instead (relay.senderauth.trusted).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from ipaddress import ip_address

from relay.config import SenderAuthConfig
from relay.senderauth import dkim_check, spf_check
from relay.senderauth.dkim_check import DkimResult
from relay.senderauth.dmarc import aligned
from relay.senderauth.lookups import Lookups
from relay.senderauth.resolver import DnsTemporaryError, Resolver, SystemResolver
from relay.senderauth.trusted import judge, trusted_results

log = logging.getLogger("relay.senderauth")


@dataclass(frozen=True)
class Verdict:
    result: str  # pass | fail | temperror
    summary: str  # what was found, for the event and the moderator ("dkim=fail header.d=...; spf=softfail")

    @property
    def passed(self) -> bool:
        return self.result == "pass"


Verifier = Callable[[bytes, dict[str, "bytes | str | None"]], Awaitable[list[DkimResult]]]


class Authenticator:
    """`verifier`: runs dkim_check.verify_prefetched elsewhere (serve: in a worker process, since RSA
    verification of a large message is CPU work); without one, the whole check runs in a thread."""

    def __init__(self, config: SenderAuthConfig, resolver: Resolver | None = None,
                 verifier: Verifier | None = None) -> None:
        self.config = config
        self.resolver = resolver if resolver is not None else SystemResolver(config)
        self.verifier = verifier

    async def check(self, raw: bytes, trace: Iterable[tuple[str, str]], *, header_from: str, mail_from: str,
                    remote: str | None, helo: str | None) -> Verdict:
        """`trace`: the message's header fields (name, value), at least its Received and Authentication-Results
        fields above the second Received line (relay/inbound/header.trace_fields)."""
        from_domain = header_from.rpartition("@")[2].lower().rstrip(".")
        authserv_id = self.config.trusted_authserv_id
        if authserv_id and self._from_front(remote):
            results = trusted_results(trace, authserv_id)
            if results is None:
                return Verdict("fail", f"no Authentication-Results from {authserv_id}")
            result, summary = judge(results, from_domain)
            return Verdict(result, f"{authserv_id}: {summary}")
        if self.verifier is None:
            return await asyncio.to_thread(self._check_here, raw, from_domain, mail_from, remote, helo)
        return await self._check_split(raw, from_domain, mail_from, remote, helo, self.verifier)

    async def _check_split(self, raw: bytes, from_domain: str, mail_from: str, remote: str | None,
                           helo: str | None, verifier: Verifier) -> Verdict:
        """The DKIM keys and SPF asked in a thread, the signatures verified by `verifier` with those keys,
        DMARC (only when something passed) in a thread again: the same verdict as _check_here."""
        lookups = Lookups(self.resolver, self.config.dns_timeout.total_seconds())

        def ask() -> tuple[dict[str, bytes | str | None], str]:
            return dkim_check.prefetch(raw, lookups), spf_check.check(remote, mail_from, helo, lookups)

        try:
            answers, spf = await asyncio.to_thread(ask)
            try:
                signatures = await verifier(raw, answers) if answers else []
            except Exception as exc:  # the worker ran over its budget or died: the signatures are unknown now
                log.warning("DKIM verification in a worker failed: %s", exc)
                signatures = [DkimResult(name.partition("._domainkey.")[2], "temperror") for name in answers]
            return await asyncio.to_thread(self._verdict, signatures, spf, from_domain, mail_from, lookups)
        except DnsTemporaryError as exc:
            return Verdict("temperror", f"DNS did not answer in time: {exc}")
        except Exception:  # a library edge case on hostile input: unverified, never a crash
            log.exception("sender authentication failed unexpectedly")
            return Verdict("fail", "the message's authentication data could not be read")

    def _from_front(self, remote: str | None) -> bool:
        try:
            address = ip_address(remote or "")
        except ValueError:
            return False
        return any(address in network for network in self.config.trusted_networks)

    def _check_here(self, raw: bytes, from_domain: str, mail_from: str, remote: str | None,
                    helo: str | None) -> Verdict:
        lookups = Lookups(self.resolver, self.config.dns_timeout.total_seconds())
        try:
            signatures = dkim_check.verify_all(raw, lookups)
            spf = spf_check.check(remote, mail_from, helo, lookups)
            return self._verdict(signatures, spf, from_domain, mail_from, lookups)
        except DnsTemporaryError as exc:
            return Verdict("temperror", f"DNS did not answer in time: {exc}")
        except Exception:  # a library edge case on hostile input: unverified, never a crash
            log.exception("sender authentication failed unexpectedly")
            return Verdict("fail", "the message's authentication data could not be read")

    @staticmethod
    def _verdict(signatures: list[DkimResult], spf: str, from_domain: str, mail_from: str,
                 lookups: Lookups) -> Verdict:
        """DMARC alignment of what passed (may ask DNS: raises DnsTemporaryError)."""
        parts = [f"dkim={s.result} header.d={s.domain}" for s in signatures] or ["dkim=none"]
        parts.append(f"spf={spf} smtp.mailfrom={mail_from}")
        dkim_domains = [s.domain for s in signatures if s.result == "pass"]
        spf_domain = mail_from.rpartition("@")[2] if spf == "pass" else None
        dmarc = "not evaluated, nothing passed"
        if dkim_domains or spf_domain:
            ok, dmarc = aligned(from_domain, dkim_domains=dkim_domains, spf_domain=spf_domain, lookups=lookups)
            if ok:
                return Verdict("pass", "; ".join([*parts, f"dmarc={dmarc} header.from={from_domain}"]))
        temporary = spf == "temperror" or any(s.result == "temperror" for s in signatures)
        summary = "; ".join([*parts, f"dmarc={dmarc} header.from={from_domain}"])
        return Verdict("temperror" if temporary else "fail", summary)
