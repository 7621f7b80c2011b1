"""A real DNS server on 127.0.0.1 (dnslib), shared by the whole test run: the relay's sender
authentication asks it, never the machine's resolver, so tests are offline and repeatable.

Tests add records for domains of their own (`ZONE.txt("school.example", "v=spf1 ...")`), all with TTL 0
(`ZONE.ttl`) since tests change them at will; a name without records answers NXDOMAIN at once, and a name in
`ZONE.servfail` answers SERVFAIL (DNS trouble).
"""

from __future__ import annotations

import threading
from typing import Any

from dnslib import QTYPE, RCODE, RR
from dnslib.server import BaseResolver, DNSLogger, DNSServer


class Zone(BaseResolver):  # type: ignore[misc]
    def __init__(self) -> None:
        self.records: dict[tuple[str, str], list[str]] = {}
        self.servfail: set[str] = set()
        self.asked: list[tuple[str, str]] = []
        self.ttl = 0  # tests change records at will; the throughput bench sets a real-world TTL
        self._lock = threading.Lock()

    def add(self, name: str, rdtype: str, value: str) -> None:
        with self._lock:
            self.records.setdefault((name.lower().rstrip("."), rdtype), []).append(value)

    def txt(self, name: str, text: str) -> None:
        """A TXT record; long text is split into 255-byte strings, as DNS requires."""
        chunks = [text[i:i + 255] for i in range(0, len(text), 255)] or [""]
        self.add(name, "TXT", " ".join(f'"{chunk}"' for chunk in chunks))

    def forget(self, suffix: str) -> None:
        with self._lock:
            for key in [k for k in self.records if k[0] == suffix or k[0].endswith("." + suffix)]:
                del self.records[key]
            self.servfail = {n for n in self.servfail if not (n == suffix or n.endswith("." + suffix))}

    def resolve(self, request: Any, handler: Any) -> Any:
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        rdtype = QTYPE[request.q.qtype]
        with self._lock:
            self.asked.append((name, rdtype))
            if name in self.servfail:
                reply.header.rcode = RCODE.SERVFAIL
                return reply
            values = list(self.records.get((name, rdtype), []))
            exists = any(key[0] == name for key in self.records)
        for value in values:
            for rr in RR.fromZone(f"{name}. {self.ttl} IN {rdtype} {value}"):
                reply.add_answer(rr)
        if not exists:
            reply.header.rcode = RCODE.NXDOMAIN
        if not values:  # negative answers carry an SOA whose TTL says: do not cache this (RFC 2308)
            reply.add_auth(*RR.fromZone(
                f"{name}. {self.ttl} IN SOA ns.zone.test. admin.zone.test. 1 60 60 60 {self.ttl}"))
        return reply


ZONE = Zone()
# The participants the tests enrol send from loopback, and their domains say so, as real ones would.
for _domain in ("uni.example.net", "mail.example.org", "uni.example", "mail.example"):
    ZONE.txt(_domain, "v=spf1 ip4:127.0.0.0/8 ip6:::1 -all")
_servers: list[DNSServer] = []
_start_lock = threading.Lock()


def loopback_dns() -> str:
    """"127.0.0.1:PORT" of the shared server (UDP and TCP), started on first use."""
    with _start_lock:
        if not _servers:
            quiet = DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data,-log_prefix")
            for attempt in range(10):  # the UDP port's TCP twin can be taken by another process's socket
                udp = DNSServer(ZONE, address="127.0.0.1", port=0, logger=quiet)
                port = udp.server.server_address[1]
                try:
                    tcp = DNSServer(ZONE, address="127.0.0.1", port=port, tcp=True, logger=quiet)
                    break
                except OSError:
                    udp.server.server_close()
                    if attempt == 9:
                        raise
            for server in (udp, tcp):
                server.start_thread()
                _servers.append(server)
        return f"127.0.0.1:{_servers[0].server.server_address[1]}"
