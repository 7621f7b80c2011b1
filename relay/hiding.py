"""Taking real addresses, client IP addresses and phone numbers out of what staff read without the right to
see them (pure: imports nothing from the store or the console).

Two readers use it:
- the console, for an account without ADDRESSES_SEE (viewers, moderators): event details on /audit and in
  `GET /api/events` (relay.console.event_view.visible_detail) and the notes of a history. A message's own words
  stored in an event (TEXT_KEYS: a stranger's refused message in its `stranger_alert`, which may carry the
  sender's phone number and home address) are hidden whole: only the lead, the coordinator and admins read them;
- the relay's own mail to staff (moderators, the coordinator, the safeguarding lead), which quotes a message's
  subject: `staff_subject` takes the subject of the anonymised copy (where the members' names and addresses
  are already handles and aliases) and hides what is left: anyone's address, IP addresses, phone-like
  numbers.

An address on the relay's own domain (an alias, help@, a bounce address) stays: it names nobody. Anything
else that reads as an address is hidden: a dot-atom or quoted local part ("jane doe"@school.example),
a domain with or without a dot (jane@localhost) or an IP literal (jane@[192.0.2.1], jane@[IPv6:2001:db8::1]).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

HIDDEN = "(hidden)"
NO_SUBJECT = "(no subject)"
# A held item of a relay older than the staff subject (migration 0021): its subject is not quoted at all.
SUBJECT_NOT_SHOWN = "(subject not shown: see the console)"

_LOCAL = r"""(?:"(?:[^"\\\r\n]|\\.)+"|[\w.!#$%&'*+/=?^`{|}~-]+)"""
_DOMAIN = r"(?:\[[^\]\s]{1,100}\]|[\w-]+(?:\.[\w-]+)*)"
ADDRESS = re.compile(rf"{_LOCAL}@(?P<domain>{_DOMAIN})", re.UNICODE)
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])")
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f.]*(?:%\w+)?(?![\w:])")
_PHONE = re.compile(r"(?<!\w)\+?\(?\d(?:[\s().\-/]*\d){6,}(?!\w)")
_DATE = re.compile(r"\d{1,4}([-/.])\d{1,2}\1\d{1,4}")  # 2026-12-03, 03/12/2026: a date, not a phone number
IP_KEYS = frozenset({"remote", "address"})  # event detail keys whose value is a client's IP address
# Event detail keys whose value is a message's own words (a stranger's refused message and its subject in a
# `stranger_alert`, a subject quoted in a help@ or digest@ record): hidden whole, since a phone number or a home
# address in free text has no pattern to find it by. `match` (a finding's matched words) keeps its words, with
# addresses, IP addresses and phone-like numbers hidden, as in staff mail (staff_subject).
TEXT_KEYS = frozenset({"text", "subject", "body"})
MATCH_KEYS = frozenset({"match"})


def ours(host: str, domain: str) -> bool:
    """Whether `host` (an address's domain) is the relay's own domain or under it."""
    host, domain = host.strip().lower().rstrip("."), domain.strip().lower().rstrip(".")
    return bool(domain) and (host == domain or host.endswith("." + domain))


def hide_addresses(text: str, domain: str, mark: str = HIDDEN) -> str:
    """`text` with every address not on `domain` replaced by `mark`."""
    return ADDRESS.sub(lambda m: m.group(0) if ours(m.group("domain"), domain) else mark, text)


def _ip(candidate: str) -> bool:
    try:
        ipaddress.ip_address(candidate.split("%", 1)[0])
    except ValueError:
        return False
    return True


def hide_ips(text: str, mark: str = HIDDEN) -> str:
    """`text` with every IPv4 and IPv6 address replaced by `mark` (a time such as 12:30:00 is no address)."""
    text = _IPV6.sub(lambda m: mark if _ip(m.group(0)) else m.group(0), text)
    return _IPV4.sub(lambda m: mark if _ip(m.group(0)) else m.group(0), text)


def hide_text(text: str, domain: str, mark: str = HIDDEN) -> str:
    """Addresses not on `domain`, then IP addresses, replaced by `mark`."""
    return hide_ips(hide_addresses(text, domain, mark), mark)


def hide_value(value: Any, domain: str, key: str | None = None) -> Any:
    """A JSON value (an event's detail) with real addresses and IP addresses hidden, at any depth: a string
    under an IP key (`remote`, `address`) or a text key (`text`, `subject`, `body`) is HIDDEN whole; one under
    `match` has phone-like numbers hidden too; every other string has its addresses and IP addresses replaced.
    Keys, numbers, booleans and the shape stay."""
    if isinstance(value, str):
        if key in IP_KEYS or key in TEXT_KEYS:
            return HIDDEN if value else value
        if key in MATCH_KEYS:
            return hide_phones(hide_text(value, domain))
        return hide_text(value, domain)
    if isinstance(value, list):
        return [hide_value(item, domain, key) for item in value]
    if isinstance(value, dict):
        return {name: hide_value(item, domain, name) for name, item in value.items()}
    return value


def hide_phones(text: str, mark: str = HIDDEN) -> str:
    """`text` with phone-like numbers (7 digits or more, a date aside) replaced by `mark`."""
    return _PHONE.sub(lambda m: m.group(0) if _DATE.fullmatch(m.group(0)) else mark, text)


def staff_subject(anonymised: str | None, domain: str) -> str:
    """The subject staff mail may quote, from the anonymised copy's subject: addresses not on `domain`, IP
    addresses and phone-like numbers (7 digits or more, a date
    aside) hidden."""
    if anonymised is None or not anonymised.strip():
        return NO_SUBJECT
    text = " ".join(anonymised.split())
    return hide_phones(hide_text(text, domain))
