"""The bookkeeping of the SMTP listener's per-client limits: how many sessions are open in all and per client,
how many sessions each client started in the last minute, how many strangers' refused messages each client had
read for safeguarding signs in the last minute (ReadBudget), and how often a refusal is worth a log line.

Nothing here touches a socket: the server asks `admit` when a connection arrives and releases the ticket when
it closes. Time comes from an injected monotonic clock, so tests move it instead of sleeping.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

Monotonic = Callable[[], float]
Network = IPv4Network | IPv6Network

RATE_WINDOW = 60.0  # seconds: connections_per_ip_per_minute counts the sessions started in this window
IPV6_PREFIX = 64  # an IPv6 client usually holds a whole /64: count it as one address


@dataclass(frozen=True)
class Refusal:
    """Why a connection is turned away: a short reason for the log and the reply the client gets."""

    reason: str
    reply: str


TOO_MANY = Refusal("max_connections reached", "421 4.7.0 Too many connections, try again later")
TOO_MANY_FROM_CLIENT = Refusal(
    "max_connections_per_ip reached", "421 4.7.0 Too many connections from your address, try again later")
TOO_FAST_FROM_CLIENT = Refusal(
    "connections_per_ip_per_minute reached",
    "421 4.7.0 Too many connections from your address in the last minute, try again later")


def client_key(address: str | None, exempt: Iterable[Network]) -> str | None:
    """The key that per-client limits count under, or None when they do not apply (unknown or exempt peer).

    IPv4-mapped IPv6 addresses count as their IPv4 address, and IPv6 addresses by their /64."""
    if not address:
        return None
    try:
        ip = ip_address(address.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if any(ip in network for network in exempt):
        return None
    if isinstance(ip, IPv6Address):
        return str(ip_network(f"{ip}/{IPV6_PREFIX}", strict=False))
    return str(ip)


class RecentCounts:
    """Per client, the times of its recent events (session starts, reads) within RATE_WINDOW. Clients with no
    event in the last window are forgotten once a window (bounded memory)."""

    def __init__(self, clock: Monotonic) -> None:
        self.clock = clock
        self._times: dict[str, deque[float]] = {}
        self._swept = clock()

    def take(self, key: str, limit: int) -> bool:
        """Count one event for `key` now, unless it already had `limit` in the last window (then False)."""
        now = self.clock()
        self._sweep(now)
        times = self._times.setdefault(key, deque())
        while times and times[0] <= now - RATE_WINDOW:
            times.popleft()
        if len(times) >= limit:
            return False
        times.append(now)
        return True

    def _sweep(self, now: float) -> None:
        if now - self._swept < RATE_WINDOW:
            return
        self._swept = now
        horizon = now - RATE_WINDOW
        self._times = {key: times for key, times in self._times.items() if times and times[-1] > horizon}


class ReadBudget:
    """How many strangers' refused messages (relay/inbound/strangers.py) one client may have read for safeguarding
    signs in a minute (smtp.stranger_reads_per_ip_per_minute; 0: no such limit), counted as connections are
    (client_key: an IPv6 client by its /64). Exempt and unknown clients are not counted here: a front-end MTA
    carries every sender's mail, and its sessions' own budget (relay/smtp/handler.py) holds it."""

    def __init__(self, per_client_per_minute: int, exempt: Iterable[Network] = (),
                 clock: Monotonic = time.monotonic) -> None:
        self.per_client_per_minute = per_client_per_minute
        self.exempt = tuple(exempt)
        self._reads = RecentCounts(clock)

    def take(self, address: str | None) -> bool:
        """Count one read for `address`; False (nothing counted) when its budget for the last minute is spent."""
        key = client_key(address, self.exempt)
        if key is None or not self.per_client_per_minute:
            return True
        return self._reads.take(key, self.per_client_per_minute)


class Ticket:
    """One admitted connection. `release` gives its place back; calling it again does nothing."""

    def __init__(self, limits: ConnectionLimits, key: str | None) -> None:
        self._limits = limits
        self._key = key
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._limits._release(self._key)


class ConnectionLimits:
    """Admits or refuses connections. A limit of 0 per client means no such limit; exempt networks (loopback by
    default, where a front-end MTA connects from) are held to max_connections only."""

    def __init__(self, max_connections: int, max_per_client: int, per_client_per_minute: int,
                 exempt: Iterable[Network] = (), clock: Monotonic = time.monotonic) -> None:
        self.max_connections = max_connections
        self.max_per_client = max_per_client
        self.per_client_per_minute = per_client_per_minute
        self.exempt = tuple(exempt)
        self.clock = clock
        self.open = 0
        self._open_by_client: Counter[str] = Counter()
        self._starts = RecentCounts(clock)

    def admit(self, address: str | None) -> Ticket | Refusal:
        """Count a new connection from `address` (an IP address as text), or say why it is refused."""
        if self.open >= self.max_connections:
            return TOO_MANY
        key = client_key(address, self.exempt)
        if key is not None:
            if self.max_per_client and self._open_by_client[key] >= self.max_per_client:
                return TOO_MANY_FROM_CLIENT
            if self.per_client_per_minute and not self._starts.take(key, self.per_client_per_minute):
                return TOO_FAST_FROM_CLIENT
            self._open_by_client[key] += 1
        self.open += 1
        return Ticket(self, key)

    def _release(self, key: str | None) -> None:
        self.open -= 1
        if key is not None:
            self._open_by_client[key] -= 1
            if self._open_by_client[key] <= 0:
                del self._open_by_client[key]


class RefusalLog:
    """At most one log line per `interval` about refused connections: the first refusal of a burst is logged at
    once, later ones are counted and their number goes into the next line."""

    def __init__(self, interval: float = 60.0, clock: Monotonic = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self._next_line = float("-inf")
        self._unlogged = 0

    def note(self) -> int | None:
        """Count one refusal; returns how many earlier refusals went unlogged if this one is to be logged, else
        None."""
        now = self.clock()
        if now < self._next_line:
            self._unlogged += 1
            return None
        self._next_line = now + self.interval
        unlogged, self._unlogged = self._unlogged, 0
        return unlogged
