"""Relay configuration: relay.yaml, programs/*.yaml and the policy names they refer to.

Validation is pydantic with unknown keys forbidden; every error is reported as `file:line: message`
using the line map of relay.yamlsource. Relative paths in relay.yaml are relative to that file's folder.
"""

from __future__ import annotations

import os
import re
from datetime import date, time, timedelta
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    ValidationError,
    field_validator,
    model_validator,
)

from relay import languages
from relay.durations import parse_duration
from relay.localtext import HelpText
from relay.yamlsource import ConfigError, Located, load

DEFAULT_CONFIG = Path("config/relay.example.yaml")
CONFIG_ENV = "MENTOR_RELAY_CONFIG"

Duration = Annotated[timedelta, BeforeValidator(parse_duration)]

DEFAULT_RETRY_SCHEDULE = ["1m", "5m", "15m", "30m", "1h", "2h", "4h", "8h", "12h", "24h", "24h", "24h", "24h"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SmtpConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(2525, ge=0, le=65535)
    max_message_size: int = Field(25 * 1024 * 1024, gt=0, le=1024**3)
    tls_cert: str | None = None
    tls_key: str | None = None
    # A client that resends a message after losing our 250 is recognised within this window.
    duplicate_window: Duration = timedelta(days=2)
    # Connection limits: a client over one gets "421 4.7.0 ..." instead of the greeting. 0 per IP: no such limit.
    max_connections: int = Field(200, ge=1, le=100_000)
    max_connections_per_ip: int = Field(20, ge=0, le=100_000)
    connections_per_ip_per_minute: int = Field(60, ge=0, le=1_000_000)
    # Held to max_connections only (a front-end MTA on the same host connects from loopback).
    per_ip_limits_exempt: list[IPvAnyNetwork] = Field(
        default_factory=lambda: [ip_network("127.0.0.0/8"), ip_network("::1/128")])
    # Idle time allowed while we wait for a command (RFC 5321 4.5.3.2.7), and for a whole DATA transfer.
    command_timeout: Duration = timedelta(minutes=5)
    data_timeout: Duration = timedelta(minutes=10)
    # Before the client's first command (after our greeting) only this long: idle connections that never
    # speak give their place back soon, so they cannot hold every place from real senders.
    greeting_timeout: Duration = timedelta(seconds=30)
    # Refused RCPTs per session: the next RCPT after this many gets "421 4.7.0" and the connection is closed.
    max_refused_recipients: int = Field(20, ge=1, le=10_000)
    # A stranger's message refused at DATA is read for safeguarding signs first (relay/inbound/strangers.py), at
    # most this many per session and per client address a minute (0: no per-address limit; exempt addresses are
    # held to the session's budget only); beyond them it is refused unread. These refusals never end a session.
    stranger_reads_per_session: int = Field(10, ge=1, le=10_000)
    stranger_reads_per_ip_per_minute: int = Field(10, ge=0, le=100_000)

    @field_validator("command_timeout", "data_timeout", "greeting_timeout")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("a timeout must be longer than zero")
        return value

    @model_validator(mode="after")
    def _tls_pair(self) -> SmtpConfig:
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("tls_cert and tls_key go together: set both for STARTTLS, or neither")
        return self


def _any_address(host: str) -> bool:
    """0.0.0.0 or ::: where a server listens on every interface, never an address a browser can open."""
    try:
        return ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


def loopback_host(host: str) -> bool:
    """localhost or a loopback address: a link to it opens only on the relay's own machine."""
    try:
        return ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host.lower() == "localhost"


class ConsoleConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8025, ge=0, le=65535)
    # Signs session cookies. Never the secret itself in YAML: "env:NAME" (an environment variable) or
    # "file:PATH" (a file holding it). Unset: a random secret kept in the store (survives restarts).
    secret_key: str | None = None
    tls_cert: str | None = None  # both set: the console is served over HTTPS and its cookie is Secure
    tls_key: str | None = None
    enabled: bool = True  # `serve` starts the console on host:port
    # Where people reach the console, e.g. https://review.school.example (a reverse proxy in front of
    # host:port): the base of every console link in mail. Unset: mail names the held message, with no link.
    public_url: str | None = None
    # Reverse proxies (addresses or networks) whose X-Forwarded-For / X-Forwarded-Proto are believed: the
    # client address behind them is what login throttling and metrics_networks see. Empty: none.
    trusted_proxies: list[IPvAnyNetwork] = Field(default_factory=list)
    # /metrics needs no login (counts only, no mail): it answers clients in these networks only.
    metrics_networks: list[IPvAnyNetwork] = Field(
        default_factory=lambda: [ip_network("127.0.0.0/8"), ip_network("::1/128")])

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("public_url must be an http:// or https:// address such as https://review.school.example")
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError("public_url is a base address: no user, query or fragment")
        if _any_address(parts.hostname):
            raise ValueError(f"public_url names {parts.hostname}, a listening address, not one a browser can open: "
                             "use the name people open, such as https://review.school.example")
        return value.strip().rstrip("/")

    @property
    def served_over_https(self) -> bool:
        """The browser talks HTTPS to the console: served with TLS here, or behind an HTTPS proxy."""
        return bool(self.tls_cert) or (self.public_url or "").startswith("https://")

    @field_validator("secret_key")
    @classmethod
    def _secret_reference(cls, value: str | None) -> str | None:
        if value is None:
            return None
        kind, _, name = value.partition(":")
        if kind not in ("env", "file") or not name.strip():
            raise ValueError('secret_key names where the secret is, never the secret itself: "env:VARIABLE" '
                             'or "file:PATH"')
        return value

    @model_validator(mode="after")
    def _tls_pair(self) -> ConsoleConfig:
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("tls_cert and tls_key go together: set both for HTTPS, or neither")
        return self


class DeliveryConfig(_Strict):
    transport: Literal["smtp", "maildir"] = "maildir"
    host: str = "127.0.0.1"
    port: int = Field(25, ge=0, le=65535)
    starttls: bool = False
    ca_file: str | None = None  # a private CA for the smarthost's certificate (default: the system's)
    username: str | None = None
    # The smarthost password never sits in YAML: an environment variable, or a file (a Docker secret, a
    # systemd credential), read at each connection; relative paths are relative to the config file.
    password_env: str | None = None
    password_file: str | None = None
    maildir: str = "var/maildir"
    retry_schedule: list[Duration] = Field(default_factory=lambda: [parse_duration(d) for d in DEFAULT_RETRY_SCHEDULE])
    connections: int = Field(4, ge=1, le=64)
    # At most this many messages handed to the smarthost (their last line written) and not yet recorded
    # as sent, across all connections: what a crash can make the relay send twice (issue 13).
    unrecorded: int = Field(2, ge=1, le=64)
    poll_interval: Duration = timedelta(seconds=2)
    timeout: Duration = timedelta(seconds=60)
    # How long an instance's claim on a queue entry lasts: when it dies while sending, another instance
    # sharing the database sends the entry once the lease is over (a restart of the same one, at once).
    lease: Duration = timedelta(minutes=10)
    # At a stop, how long sends under way may take to finish before the relay hangs up on the smarthost
    # (their entries are sent again at the next start); below systemd's and Docker's kill timeouts.
    stop_grace: Duration = timedelta(seconds=10)

    @field_validator("poll_interval", "timeout", "lease")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be longer than zero (0s would busy-loop or time out at once)")
        return value

    @field_validator("retry_schedule")
    @classmethod
    def _not_empty(cls, value: list[timedelta]) -> list[timedelta]:
        if not value:
            raise ValueError("retry_schedule needs at least one interval")
        if len(value) > 100:
            raise ValueError("retry_schedule can have at most 100 intervals")
        return value

    @model_validator(mode="after")
    def _one_password_source(self) -> DeliveryConfig:
        if self.password_env and self.password_file:
            raise ValueError("password_env and password_file are alternatives: set one of them")
        if self.username and not (self.password_env or self.password_file):
            raise ValueError("username needs password_env or password_file (the password is never in YAML)")
        return self


class DkimConfig(_Strict):
    selector: str | None = None
    private_key: str | None = None


class EnrolmentConfig(_Strict):
    check_deliverability: bool = False


def nameserver_address(value: str) -> tuple[str, int]:
    """("IP", port) from "IP", "IP:port" or "[IPv6]:port"; ValueError with a plain message otherwise."""
    text = str(value).strip()
    host, port = text, 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            port = int(rest.removeprefix(":")) if rest.startswith(":") and rest[1:].isdigit() else -1
    elif text.count(":") == 1:
        host, _, number = text.partition(":")
        port = int(number) if number.isdigit() else -1
    try:
        ip_address(host)
    except ValueError:
        raise ValueError(f"nameserver {text!r} is not an IP address (or IP:port)") from None
    if not 0 < port < 65536:
        raise ValueError(f"nameserver {text!r} has no valid port")
    return host, port


def _nameserver(value: str) -> str:
    nameserver_address(value)
    return value


Nameserver = Annotated[str, AfterValidator(_nameserver)]


class SenderAuthConfig(_Strict):
    """How the relay checks that mail really comes from the enrolled address (the policy says how strictly)."""

    # Behind a front MTA (Postfix with OpenDKIM/OpenDMARC): its Authentication-Results header, with this
    # authserv-id, is used instead of our own checks, but only on connections from trusted_networks.
    trusted_authserv_id: str | None = None
    trusted_networks: list[IPvAnyNetwork] = Field(
        default_factory=lambda: [ip_network("127.0.0.0/8"), ip_network("::1/128")])
    # DNS for DKIM keys, SPF and DMARC records: the system's resolvers unless named here ("IP" or "IP:port",
    # "[IPv6]:port"), for example a local validating resolver such as unbound on 127.0.0.1.
    nameservers: list[Nameserver] = Field(default_factory=list)
    dns_timeout: Duration = timedelta(seconds=5)  # for all lookups of one message together

    @field_validator("dns_timeout")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("a timeout must be longer than zero")
        return value


class LimitsConfig(_Strict):
    # CPU seconds one step of a message's work (header, moderation + anonymisation, DKIM) may use in a
    # worker process; over it, the worker is replaced and the message refused with 554 5.6.0.
    message_cpu_seconds: float = Field(default=10.0, gt=0, le=3600)


def _workers(value: object) -> int:
    """`auto` (one worker process per core), or a count; 0 runs the message work in-process."""
    if value == "auto":
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 256:
        raise ValueError("workers: write auto (one per core), or a number from 0 (in-process) to 256")
    return value


DATABASE_SCHEMES = ("sqlite:///", "sqlite+aiosqlite:///", "postgresql://", "postgres://", "postgresql+asyncpg://")


class RelayConfig(_Strict):
    domain: str
    database: str = "sqlite:///var/relay.db"
    smtp: SmtpConfig = SmtpConfig()
    console: ConsoleConfig = ConsoleConfig()
    delivery: DeliveryConfig = DeliveryConfig()
    dkim: DkimConfig = DkimConfig()
    enrolment: EnrolmentConfig = EnrolmentConfig()
    sender_auth: SenderAuthConfig = SenderAuthConfig()
    programs_dir: str = "programs"
    policies_dir: str = "policies"
    demo: bool = False
    workers: Annotated[int, BeforeValidator(_workers)] = Field(default_factory=lambda: _workers("auto"))
    limits: LimitsConfig = LimitsConfig()

    @field_validator("database")
    @classmethod
    def _database(cls, value: str) -> str:
        if not value.startswith(DATABASE_SCHEMES):
            raise ValueError(f"database {value!r}: the relay stores its data in SQLite (sqlite:///var/relay.db) "
                             "or PostgreSQL (postgresql://user@host/name); no other database is supported")
        return value

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        value = value.strip().lower().rstrip(".")
        if not value or "@" in value or " " in value or "." not in value:
            raise ValueError("domain must be a host name such as relay.example.org")
        return value


def _email(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("expected an email address")
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"invalid email address {value!r}: {exc}") from None


def _timezone(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a time zone name such as Europe/Berlin")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


def _region(value: object) -> str:
    """The program's phone region: a code phonenumbers knows (UK is taken for GB, as relay's rules do)."""
    if not isinstance(value, str) or (value not in phonenumbers.SUPPORTED_REGIONS and value != "UK"):
        raise ValueError(f"unknown phone region {value!r}: an ISO 3166 country code such as US, GB, DE, IN")
    return value


def _policy_name(value: object) -> str:
    if not isinstance(value, str) or not policy_name_ok(value):
        raise ValueError(f"policy {value!r} is not a plain name: letters, digits, spaces, . + - _ and no .. "
                         "(the file name in policies_dir without .yaml)")
    return value


Email = Annotated[str, BeforeValidator(_email)]
PolicyName = Annotated[str, BeforeValidator(_policy_name)]
Region = Annotated[str, AfterValidator(_region)]
TimeZone = Annotated[str, BeforeValidator(_timezone)]


class RetentionConfig(_Strict):
    """How long a closed pair's message bodies are kept (relay.archive.retention); unset: for ever."""

    after_close: Duration | None = None
    after_concern: Duration | None = None  # when a concern was raised about the pair; should be longer

    @field_validator("after_close", "after_concern")
    @classmethod
    def _positive_retention(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise ValueError("a retention period must be longer than zero")
        return value

    @model_validator(mode="after")
    def _concern_keeps_longer(self) -> RetentionConfig:
        if self.after_close and self.after_concern and self.after_concern < self.after_close:
            raise ValueError("after_concern must be at least as long as after_close (a concern keeps the record "
                             "longer)")
        return self


def _quiet_hours(value: object) -> tuple[time, time] | None:
    """"21:00-08:00" (local time of the recipient); "" or null: no quiet hours."""
    if value is None or value == "":
        return None
    if isinstance(value, tuple):
        return value  # type: ignore[return-value]
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", str(value))
    if match is None:
        raise ValueError(f"expected quiet hours such as 21:00-08:00, got {value!r}")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
        raise ValueError(f"quiet hours {value!r}: hours go from 00 to 23 and minutes from 00 to 59")
    return time(h1, m1), time(h2, m2)


QuietHours = Annotated[tuple[time, time] | None, BeforeValidator(_quiet_hours)]


class Responsiveness(_Strict):
    """When the relay nudges a mentor, tells the coordinator, checks in on a silent pair (relay/nudges/)."""

    nudge_mentor_after: Duration = timedelta(hours=48)
    second_nudge_after: Duration = timedelta(hours=96)
    escalate_after: Duration = timedelta(days=7)
    pair_silence_after: Duration = timedelta(days=14)
    quiet_hours: QuietHours = (time(21, 0), time(8, 0))
    ending_notice_before: Duration = timedelta(days=7)

    @model_validator(mode="after")
    def _in_order(self) -> Responsiveness:
        if not self.nudge_mentor_after < self.second_nudge_after < self.escalate_after:
            raise ValueError("nudge_mentor_after < second_nudge_after < escalate_after must hold")
        if self.nudge_mentor_after <= timedelta(0) or self.pair_silence_after <= timedelta(0):
            raise ValueError("waiting times must be longer than zero")
        return self


DigestMode = Literal["none", "daily", "weekly"]


class CommunityConfig(_Strict):
    """The program's communities (relay/communities.py): mentors@ for its mentors, mentees@ for its mentees,
    each off unless enabled, and how their members receive the messages by default (none: each message;
    daily or weekly: one digest, relay/digests/)."""

    mentors: bool = False
    mentees: bool = False
    digest: DigestMode = "none"


class SafeguardingConfig(_Strict):
    """Who hears at once about an urgent hold (a disclosure, a grooming sign), and what its sender is told."""

    lead: Email  # the safeguarding lead: told at once, by a mail whose subject starts with "URGENT"
    # sent to the sender of an urgent message instead of "waiting for review", and in a youth welcome: one text
    # for every language, or language -> text with a `default` (relay/localtext.py); None: the relay's own
    help_text: HelpText | None = None
    urgent_review_within: Duration = timedelta(hours=1)  # nobody acted by then: lead and coordinator told again

    @field_validator("urgent_review_within")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("urgent_review_within must be longer than zero")
        return value


class ProgramConfig(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    name: str
    goals: list[str] = Field(default_factory=list)
    coordinator: Email
    policy: PolicyName
    region: Region = Field("US", pattern=r"^[A-Z]{2}$")
    timezone: TimeZone = "UTC"
    end_date: date | None = None  # from 2000-01-01 to 2100-12-31, as a pair's (relay/enrol.py)
    responsiveness: Responsiveness = Field(default_factory=lambda: Responsiveness())
    templates: str | None = None  # a folder (relative to relay.yaml) whose notice templates replace ours
    language: str = "en"  # participants' notices (BCP 47; a shipped catalog or a <language>.po in `templates`)
    staff_language: str = "en"  # notices to the coordinator and moderators
    audience: Literal["adult", "youth"] = "adult"  # youth: simpler wording of the notices mentees get most
    welcome: bool = True  # both members get a welcome message when their pair is created
    contact_exchange: bool = False  # at the end, members who both say yes (share@) get each other's address
    send_conversation_at_end: bool = False  # each participant gets the anonymised conversation as an mbox
    retention: RetentionConfig = Field(default_factory=lambda: RetentionConfig())  # none set: kept for ever
    community: CommunityConfig = Field(default_factory=lambda: CommunityConfig())  # off unless enabled
    group_digest: DigestMode = "none"  # how a group's members receive its messages by default
    safeguarding: SafeguardingConfig | None = None  # none: urgent holds go to the coordinator at once

    @field_validator("end_date")
    @classmethod
    def _end_date(cls, value: date | None) -> date | None:
        if value is not None and not FIRST_END_DATE <= value <= LAST_END_DATE:
            raise ValueError(f"end_date {value.isoformat()} is out of range: it must be between "
                             f"{FIRST_END_DATE.isoformat()} and {LAST_END_DATE.isoformat()}")
        return value

    @field_validator("goals", mode="before")
    @classmethod
    def _goals(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value


class Settings:
    """The loaded configuration: relay settings, programs by id, and where things live."""

    def __init__(self, path: Path, relay: RelayConfig, programs: dict[str, ProgramConfig]) -> None:
        self.path = path
        self.relay = relay
        self.programs = programs

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def resolve(self, relative: str) -> Path:
        candidate = Path(relative).expanduser()
        return candidate if candidate.is_absolute() else (self.base_dir / candidate).resolve()

    @property
    def database_url(self) -> str:
        return database_url(self.relay.database, self.base_dir)

    @property
    def policies_dir(self) -> Path:
        return self.resolve(self.relay.policies_dir)

    def program(self, program_id: str) -> ProgramConfig:
        try:
            return self.programs[program_id]
        except KeyError:
            known = ", ".join(sorted(self.programs)) or "none"
            raise ConfigError([f"unknown program {program_id!r} (known: {known})"]) from None

    def policy_exists(self, name: str) -> bool:
        """A policy file of that name is in policies_dir (never one elsewhere: a name is a plain name)."""
        return policy_name_ok(name) and (self.policies_dir / f"{name}.yaml").is_file()


# End dates (a program's, a pair's: relay/enrol.py): later ones overflow date arithmetic in the sweeps.
FIRST_END_DATE = date(2000, 1, 1)
LAST_END_DATE = date(2100, 12, 31)
POLICY_NAME = re.compile(r"[^\W][\w .+-]{0,63}")  # any letters (jóvenes), digits, "youth-strict.v2", "Youth Strict"


def policy_name_ok(name: str) -> bool:
    """A policy name that names a file in policies_dir and nothing else: it starts with a letter or digit
    and holds letters, digits, spaces, "." "+" "-" "_" (never a path: /tmp/x/evil, ../x, .hidden)."""
    return isinstance(name, str) and POLICY_NAME.fullmatch(name) is not None and ".." not in name


def console_warnings(settings: Settings) -> list[str]:
    """What `check-config` warns about in the console's keys: not errors (the relay runs), but mail links
    or login throttling that will not work as people expect."""
    console = settings.relay.console
    if not console.enabled:
        return []
    where = f"{settings.path}: warning: console.public_url"
    if console.public_url is None:
        return [f"{where} is not set: mail to moderators and coordinators names held messages without a link. "
                "Set it to the address people open, e.g. https://review.school.example"]
    found: list[str] = []
    if loopback_host(urlsplit(console.public_url).hostname or ""):
        found.append(f"{where} {console.public_url} opens only on this machine: links in mail will not work "
                     "on a moderator's phone")
    if console.public_url.startswith("https://") and not console.tls_cert and not console.trusted_proxies:
        found.append(f"{settings.path}: warning: console.trusted_proxies is empty while the console is served "
                     "through an HTTPS proxy: login throttling will see the proxy's address, not the client's")
    return found


def database_url(url: str, base_dir: Path) -> str:
    """Map the admin's URL to the async driver; relative SQLite paths are relative to base_dir."""
    if url.startswith(("sqlite:///", "sqlite+aiosqlite:///")):
        path = url.split(":///", 1)[1]
        if path and path != ":memory:" and not os.path.isabs(path):
            path = str((base_dir / path).resolve())
        return f"sqlite+aiosqlite:///{path}"
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    return url


def _validate(model: type[_Strict], located: Located) -> Any:
    try:
        return model.model_validate(located.data)
    except ValidationError as exc:
        messages = []
        for err in exc.errors():
            loc = tuple(part for part in err["loc"] if part != "[key]")  # a mapping's bad key: at its line
            where = ".".join(str(p) for p in loc) or "(top level)"
            text = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            messages.append(located.error(loc, f"{where}: {text}"))
        raise ConfigError(messages) from None


def config_path(explicit: str | None) -> Path:
    """--config wins, then $MENTOR_RELAY_CONFIG, then the embedded default."""
    return Path(explicit or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


def load_settings(path: Path) -> Settings:
    """Load relay.yaml and every program; all problems are collected into one ConfigError."""
    located = load(path)
    if not isinstance(located.data, dict):
        raise ConfigError([located.error((), "the relay configuration must be a mapping of keys")])
    relay = _validate(RelayConfig, located)
    settings = Settings(path.resolve(), relay, {})
    errors: list[str] = []
    policies_dir = settings.policies_dir
    if not policies_dir.is_dir():
        errors.append(located.error(("policies_dir",), f"policies_dir: no such folder {policies_dir}"))
    programs_dir = settings.resolve(relay.programs_dir)
    if not programs_dir.is_dir():
        errors.append(located.error(("programs_dir",), f"programs_dir: no such folder {programs_dir}"))
    else:
        for file in sorted(programs_dir.glob("*.yaml")):
            try:
                program_source = load(file)
                if not isinstance(program_source.data, dict):
                    raise ConfigError([program_source.error((), "a program file must be a mapping of keys")])
                program = _validate(ProgramConfig, program_source)
            except ConfigError as exc:
                errors.extend(exc.messages)
                continue
            if program.id != file.stem:
                errors.append(program_source.error(
                    ("id",), f"id: {program.id!r} must match the file name {file.stem!r}"))
            if not settings.policy_exists(program.policy):
                errors.append(program_source.error(
                    ("policy",), f"policy: no policy named {program.policy!r} in {policies_dir}"))
            folder = settings.resolve(program.templates) if program.templates else None
            for key in ("language", "staff_language"):
                try:
                    program = program.model_copy(update={key: languages.check(getattr(program, key), folder)})
                except languages.LanguageError as exc:
                    errors.append(program_source.error((key,), f"{key}: {exc}"))
            settings.programs[program.id] = program
    if errors:
        raise ConfigError(errors)
    return settings

