"""DKIM: verify every signature on a message with dkimpy, looking keys up through our DNS.

A message may carry several signatures (the author's domain, its mail provider, a mailing list); DMARC
needs to know which domains signed it validly, so each one is verified, up to MAX_SIGNATURES.

The check is split in two so that the CPU part runs in a worker process (relay/workers/tasks.verify_dkim):
`key_names` reads the `s._domainkey.d` names from the header (bytes only, no parse), `prefetch` asks DNS
for them (in the authenticator's thread, through its Lookups), and `verify_prefetched` runs dkimpy with
those answers (dkimpy's `dnsfunc`), asking nobody. `verify_all` does both in one place (in-process use).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import dkim

from relay.senderauth.lookups import Lookups
from relay.senderauth.resolver import DnsTemporaryError

MAX_SIGNATURES = 5


@dataclass(frozen=True)
class DkimResult:
    domain: str  # the signature's d=
    result: str  # pass | fail | temperror


TEMPERROR = "temperror"  # a prefetched answer that DNS could not give in time
_FIELD_START = re.compile(rb"\r?\n(?![ \t])")


def key_names(raw: bytes) -> list[str]:
    """The DNS names of the keys the message's first MAX_SIGNATURES DKIM signatures name (s=, d=)."""
    end = min((i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0), default=len(raw))
    names: list[str] = []
    for field in _FIELD_START.split(raw[:end]):
        name, colon, value = field.partition(b":")
        if colon and name.strip().lower() == b"dkim-signature":
            selector, domain = _tag(value, b"s"), _tag(value, b"d")
            if selector and domain:
                names.append(f"{selector}._domainkey.{domain}")
            if len(names) >= MAX_SIGNATURES:
                break
    return names


def prefetch(raw: bytes, lookups: Lookups) -> dict[str, bytes | str | None]:
    """The first TXT answer for each key name (None: no record; TEMPERROR: DNS did not answer in time)."""
    answers: dict[str, bytes | str | None] = {}
    for name in key_names(raw):
        try:
            found = lookups.txt(name)
            answers[name] = found[0] if found else None
        except DnsTemporaryError:
            answers[name] = TEMPERROR
    return answers


def verify_prefetched(raw: bytes, answers: dict[str, bytes | str | None]) -> list[DkimResult]:
    """verify_all with the keys looked up beforehand (`prefetch`); a key not prefetched counts as missing."""
    def dnsfunc(name: bytes, timeout: float = 5) -> bytes | None:
        answer = answers.get(name.decode("ascii", "replace").rstrip(".").lower())
        if answer == TEMPERROR:
            raise DnsTemporaryError(f"no answer for {name!r}")
        return answer if isinstance(answer, bytes) else None

    return _verify(raw, dnsfunc)


def verify_all(raw: bytes, lookups: Lookups) -> list[DkimResult]:
    def dnsfunc(name: bytes, timeout: float = 5) -> bytes | None:
        answers = lookups.txt(name.decode("ascii", "replace"))
        return answers[0] if answers else None

    return _verify(raw, dnsfunc)


def _verify(raw: bytes, dnsfunc: Callable[..., bytes | None]) -> list[DkimResult]:
    try:
        checker = dkim.DKIM(raw)
    except dkim.DKIMException:
        return []
    signatures = [value for name, value in checker.headers if name.lower() == b"dkim-signature"]
    results = []
    for index, value in enumerate(signatures[:MAX_SIGNATURES]):
        domain = _tag(value, b"d")
        try:
            ok = checker.verify(idx=index, dnsfunc=dnsfunc)  # one parse of the message for every signature
            results.append(DkimResult(domain, "pass" if ok else "fail"))
        except DnsTemporaryError:
            results.append(DkimResult(domain, "temperror"))
        except Exception:  # dkimpy raises several kinds for malformed signatures or keys: all are a failure
            results.append(DkimResult(domain, "fail"))
    return results


def _tag(signature: bytes, tag: bytes) -> str:
    for part in signature.split(b";"):
        key, _, value = part.partition(b"=")
        if key.strip().lower() == tag:
            return b"".join(value.split()).decode("ascii", "replace").lower().rstrip(".")
    return ""
