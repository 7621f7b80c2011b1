"""The address of a MAIL FROM or RCPT TO command, parsed as aiosmtpd parses it, remembered.

aiosmtpd's `SMTP._getaddr` parses each path with the stdlib's RFC 5322 parser and defines a typing
Protocol class on every call; together that was about 7% of the event loop's time in bench/throughput.py
(two paths per message). Senders and aliases repeat, so each distinct argument is parsed once, by the same
stdlib functions with the same outcome, and the result remembered (a bounded LRU: a client sending ever
new addresses only churns it). RelaySession._getaddr applies aiosmtpd's local-part limit on top, as
aiosmtpd does.
"""

from __future__ import annotations

from email._header_value_parser import get_addr_spec, get_angle_addr
from email.errors import HeaderParseError
from functools import lru_cache

REMEMBERED = 4096  # distinct arguments kept; a command line is at most 512 octets (aiosmtpd's limit)


@lru_cache(maxsize=REMEMBERED)
def parsed_path(arg: str) -> tuple[str | None, str | None]:
    """(address, the rest of the argument: its parameters), ('', '') for an empty argument, and
    (None, None) when the argument is not an address."""
    if not arg:
        return "", ""
    try:
        if arg.lstrip().startswith("<"):
            angle, rest = get_angle_addr(arg)
            return angle.addr_spec, rest
        spec, rest = get_addr_spec(arg)
        return spec.addr_spec, rest
    except HeaderParseError:
        return None, None
