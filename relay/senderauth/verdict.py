"""The verdict on one message: did it come from the domain of the enrolled address it claims?

Three outcomes, so that a label means what it says:
- pass: DMARC-aligned, a valid DKIM signature or an SPF pass for the envelope sender from the From domain
  (strictly or relaxed, as the domain's DMARC record asks; relaxed when it has none);
- fail: a check ran and failed (a DKIM signature that does not verify, SPF fail or softfail, DMARC fail
  because the From domain publishes a record and nothing aligned passed), or the envelope sender's domain
  is not the From domain's and nothing aligned passed; only this is ever called spoofing;
- unverified: nothing could be checked: no DKIM signature and no SPF or DMARC records, an SPF record that
  cannot be read, DNS that did not answer (then `temporary`), or a trusted front MTA that did not evaluate
  the message (mail submitted on its own host).
Behind a trusted front MTA, its Authentication-Results are judged the same way (relay.senderauth.trusted).
What each outcome means for a message is the policy's `sender_auth` (see relay.senderauth.outcome).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Literal

from relay.config import SenderAuthConfig
from relay.senderauth import dkim_check, spf_check
from relay.senderauth.dkim_check import DkimResult
from relay.senderauth.dmarc import aligned, org_domain
from relay.senderauth.lookups import Lookups
from relay.senderauth.resolver import DnsTemporaryError, Resolver, SystemResolver
from relay.senderauth.trusted import judge, trusted_results

log = logging.getLogger("relay.senderauth")

Result = Literal["pass", "fail", "unverified"]
FAILED_SPF = ("fail", "softfail")


@dataclass(frozen=True)
class Verdict:
    result: Result
    summary: str  # what was found, for the event and the moderator ("dkim=fail header.d=...; spf=softfail")
    temporary: bool = False  # unverified because DNS did not answer now: trying again later may settle it

    @property
    def passed(self) -> bool:
        return self.result == "pass"

    @property
    def kind(self) -> str:
        """The finding's kind as moderators, the queue and the report see it."""
        return "spoofing" if self.result == "fail" else "unverified"


def _envelope_differs(mail_from: str, from_domain: str) -> bool:
    envelope = mail_from.rpartition("@")[2].lower().rstrip(".")
    return not envelope or org_domain(envelope) != org_domain(from_domain)


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
        """`trace`: the message's Received and Authentication-Results fields (name, value) in order
        (relay/inbound/header.trace_fields)."""
        from_domain = header_from.rpartition("@")[2].lower().rstrip(".")
        authserv_id = self.config.trusted_authserv_id
        if authserv_id and self._from_front(remote):
            return self._judge_front(trace, authserv_id, from_domain, mail_from)
        if self.verifier is None:
            return await asyncio.to_thread(self._check_here, raw, from_domain, mail_from, remote, helo)
        return await self._check_split(raw, from_domain, mail_from, remote, helo, self.verifier)

    async def _check_split(self, raw: bytes, from_domain: str, mail_from: str, remote: str | None,
                           helo: str | None, verifier: Verifier) -> Verdict:
        """The DKIM keys and SPF asked in a thread, the signatures verified by `verifier` with those keys,
        DMARC in a thread again: the same verdict as _check_here. Mail without a DKIM signature has nothing to
        verify: DMARC is judged in the first thread (one hop from the event loop, not two)."""
        lookups = Lookups(self.resolver, self.config.dns_timeout.total_seconds())

        def ask() -> tuple[dict[str, bytes | str | None], str, Verdict | None]:
            answers = dkim_check.prefetch(raw, lookups)
            spf = spf_check.check(remote, mail_from, helo, lookups)
            return answers, spf, None if answers else _verdict([], spf, from_domain, mail_from, lookups)

        try:
            answers, spf, unsigned = await asyncio.to_thread(ask)
            if unsigned is not None:
                return unsigned
            try:
                signatures = await verifier(raw, answers)
            except Exception as exc:  # the worker ran over its budget or died: the signatures are unknown now
                log.warning("DKIM verification in a worker failed: %s", exc)
                signatures = [DkimResult(name.partition("._domainkey.")[2], "temperror") for name in answers]
            return await asyncio.to_thread(_verdict, signatures, spf, from_domain, mail_from, lookups)
        except DnsTemporaryError as exc:
            return Verdict("unverified", f"DNS did not answer in time: {exc}", temporary=True)
        except Exception:  # a library edge case on hostile input: unverified, never a crash
            log.exception("sender authentication failed unexpectedly")
            return Verdict("unverified", "the message's authentication data could not be read")

    def _judge_front(self, trace: Iterable[tuple[str, str]], authserv_id: str, from_domain: str,
                     mail_from: str) -> Verdict:
        front = trusted_results(trace, authserv_id)
        if front.forged:
            return Verdict("fail", f"an Authentication-Results header in the name of {authserv_id} came with "
                                   "the message from outside (forged)")
        if front.results is None:
            summary = f"{authserv_id} did not evaluate this message (no Authentication-Results)"
        else:
            result, found = judge(front.results, from_domain)
            summary = f"{authserv_id}: {found}"
            if result in ("pass", "fail"):
                return Verdict(result, summary)  # type: ignore[arg-type]
            if result == "temperror":
                return Verdict("unverified", summary, temporary=True)
        if _envelope_differs(mail_from, from_domain):
            return Verdict("fail", f"{summary}; envelope sender {mail_from} is not of {from_domain}")
        return Verdict("unverified", summary)

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
            return _verdict(signatures, spf, from_domain, mail_from, lookups)
        except DnsTemporaryError as exc:
            return Verdict("unverified", f"DNS did not answer in time: {exc}", temporary=True)
        except Exception:  # a library edge case on hostile input: unverified, never a crash
            log.exception("sender authentication failed unexpectedly")
            return Verdict("unverified", "the message's authentication data could not be read")


def _verdict(signatures: list[DkimResult], spf: str, from_domain: str, mail_from: str, lookups: Lookups) -> Verdict:
    """The verdict from the DKIM results and SPF, with DMARC alignment (may ask DNS: DnsTemporaryError)."""
    parts = [f"dkim={s.result} header.d={s.domain}" for s in signatures] or ["dkim=none"]
    parts.append(f"spf={spf} smtp.mailfrom={mail_from}")
    dkim_domains = [s.domain for s in signatures if s.result == "pass"]
    spf_domain = mail_from.rpartition("@")[2] if spf == "pass" else None
    ok, dmarc = aligned(from_domain, dkim_domains=dkim_domains, spf_domain=spf_domain, lookups=lookups)
    summary = "; ".join([*parts, f"dmarc={dmarc} header.from={from_domain}"])
    if ok:
        return Verdict("pass", summary)
    if dmarc == "fail" or spf in FAILED_SPF or any(s.result == "fail" for s in signatures):
        return Verdict("fail", summary)
    if _envelope_differs(mail_from, from_domain):
        return Verdict("fail", f"{summary}; envelope sender is not of {from_domain}")
    temporary = spf == "temperror" or any(s.result == "temperror" for s in signatures)
    return Verdict("unverified", summary, temporary=temporary)
