"""The DNS records the relay's domain publishes so that receivers trust its mail: MX, SPF, DKIM, DMARC,
and the PTR that only the hosting provider can set. Printed in zone-file syntax, ready to paste.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from relay.config import Settings
from relay.dkim import configured_key
from relay.dkim.keys import PrivateKey, describe, record_name, record_value

TXT_STRING = 255  # the longest character-string one TXT record may hold; longer values are split


@dataclass(frozen=True)
class Record:
    kind: str  # MX, SPF, DKIM, DMARC, PTR
    type: str  # the DNS record type
    name: str | None  # None: not known here (see the note)
    value: str | None
    note: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def zone_line(self) -> str | None:
        if self.name is None or self.value is None:
            return None
        value = txt_strings(self.value) if self.type == "TXT" else self.value
        return f"{self.name}. IN {self.type} {value}"


def txt_strings(value: str) -> str:
    """A TXT value as quoted strings of at most 255 characters (DNS joins them back into one)."""
    return " ".join(f'"{value[i:i + TXT_STRING]}"' for i in range(0, len(value), TXT_STRING))


def dkim_record(domain: str, selector: str, key: PrivateKey) -> Record:
    return Record("DKIM", "TXT", record_name(selector, domain), record_value(key),
                  f"DKIM: the public half of the {describe(key)} key the relay signs with (selector {selector}).")


def required_records(settings: Settings) -> list[Record]:
    domain = settings.relay.domain
    return [
        Record("MX", "MX", domain, f"10 {domain}.",
               f"MX: where mail for the aliases arrives. Adapt the host if the relay is not reached as {domain} "
               "(the host needs its own A/AAAA record)."),
        Record("SPF", "TXT", domain, "v=spf1 mx -all",
               "SPF: only the MX hosts may send as this domain. If mail leaves through a smarthost "
               "(delivery.host), add its mechanism before -all, e.g. include:<provider's SPF domain> "
               "or ip4:<its address>."),
        _dkim(settings),
        *_dmarc(settings),
        Record("PTR", "PTR", None, f"{domain}.",
               f"PTR: the reverse DNS of the IP address mail leaves from must name {domain} (the name the relay "
               "greets with), and that name must resolve back to the address. It is set at the hosting "
               "provider, not in this zone; with a smarthost it is the smarthost's address."),
    ]


def _dkim(settings: Settings) -> Record:
    configured = configured_key(settings)
    if configured is None:
        return Record("DKIM", "TXT", None, None,
                      "DKIM: no key configured. Make one with `mentor-relay dkim keygen --selector NAME`, set "
                      "dkim.selector and dkim.private_key in relay.yaml, then run dns-records again.")
    selector, key = configured
    return dkim_record(settings.relay.domain, selector, key)


def _dmarc(settings: Settings) -> list[Record]:
    domain = settings.relay.domain
    reports = _report_address(settings)
    policy = f"v=DMARC1; p=quarantine; adkim=s; aspf=s; rua=mailto:{reports}"
    records = [Record("DMARC", "TXT", f"_dmarc.{domain}", policy,
                      f"DMARC: receivers quarantine mail from {domain} that passes neither SPF nor DKIM in strict "
                      f"alignment (the relay's envelope sender and d= are on {domain}); aggregate reports go to "
                      f"{reports}.")]
    report_domain = reports.rpartition("@")[2].lower()
    if report_domain != domain:
        records.append(Record("DMARC", "TXT", f"{domain}._report._dmarc.{report_domain}", "v=DMARC1",
                              f"DMARC reports: {report_domain} (not this zone) must publish this record to accept "
                              f"reports about {domain} (RFC 7489 7.1); otherwise change rua."))
    return records


def _report_address(settings: Settings) -> str:
    """The first program's coordinator (by id), else postmaster of the relay's domain."""
    coordinators = [settings.programs[program_id].coordinator for program_id in sorted(settings.programs)]
    return coordinators[0] if coordinators else f"postmaster@{settings.relay.domain}"
