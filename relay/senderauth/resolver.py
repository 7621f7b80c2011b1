"""DNS for sender authentication, behind one small interface so that tests inject a stub zone.

`Resolver.query(name, rdtype, timeout)` answers A, AAAA, MX, PTR and TXT questions in plain Python values
and raises DnsTemporaryError when DNS cannot answer now (timeout, SERVFAIL). A name that does not exist or
has no such record is an empty list, not an error. It is called from a worker thread (the checks run off
the event loop), so a blocking resolver is fine.
"""

from __future__ import annotations

from typing import Any, Protocol

import dns.exception
import dns.nameserver
import dns.resolver

from relay.config import SenderAuthConfig, nameserver_address


class DnsTemporaryError(Exception):
    """DNS could not answer now; the check may succeed later."""


class Resolver(Protocol):
    def query(self, name: str, rdtype: str, timeout: float) -> list[Any]:
        """A/AAAA/PTR: list[str]; MX: list[(preference, exchange)]; TXT: list[bytes] (strings joined)."""
        ...


class SystemResolver:
    """dnspython with the system's resolvers (or the configured ones) and a shared answer cache."""

    def __init__(self, config: SenderAuthConfig) -> None:
        if config.nameservers:
            self._resolver = dns.resolver.Resolver(configure=False)
            self._resolver.nameservers = [dns.nameserver.Do53Nameserver(*nameserver_address(value))
                                          for value in config.nameservers]
        else:
            self._resolver = dns.resolver.Resolver()
        self._resolver.cache = dns.resolver.LRUCache(4096)

    def query(self, name: str, rdtype: str, timeout: float) -> list[Any]:
        if timeout <= 0:
            raise DnsTemporaryError(f"no time left to look up {name} {rdtype}")
        try:
            answer = self._resolver.resolve(name, rdtype, lifetime=timeout, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.YXDOMAIN):
            return []
        except dns.exception.DNSException as exc:  # timeout, no nameservers answering, SERVFAIL
            raise DnsTemporaryError(f"{name} {rdtype}: {exc}") from None
        return [_value(rdtype, rdata) for rdata in answer]


def _value(rdtype: str, rdata: Any) -> Any:
    if rdtype in ("A", "AAAA"):
        return str(rdata.address)
    if rdtype == "MX":
        return (int(rdata.preference), rdata.exchange.to_text(omit_final_dot=True))
    if rdtype == "PTR":
        return rdata.target.to_text(omit_final_dot=True)
    return b"".join(rdata.strings)
