"""Moderation policies: the admin's YAML in policies/<name>.yaml, validated, with line numbers.

A policy names a default action, how many first messages of a pair are held, which rules run with
which action (hold | redact | reject | deliver-and-flag), severity (normal | urgent: a safeguarding sign,
always held for a person) and parameters, the notices senders get, who moderates and how often they hear
about held mail (and, with notify_rejections, about automatic rejections), and the service level of the
hold queue (review_within: remind the moderators; escalate_after: tell the coordinator; never auto-release).

`PolicyBook` keeps the policies a running relay uses. `serve` and `check-config` read them all at start
(relay/preflight.py) and refuse to start on any error. It re-reads a file when it changes; a file that
no longer validates is logged and the last good version stays in force.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from relay.config import policy_name_ok
from relay.durations import parse_duration
from relay.localtext import PolicyText, pick
from relay.moderation.rules.registry import RULES
from relay.yamlsource import ConfigError, Located, load

log = logging.getLogger("relay.moderation")

Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
RuleAction = Literal["hold", "redact", "reject", "deliver-and-flag"]
Severity = Literal["normal", "urgent"]
SEVERITY = {"deliver": 0, "deliver-and-flag": 1, "redact": 2, "hold": 3, "reject": 4}

DEFAULT_HELD_NOTICE = (
    "Thank you for your message. The program reviews some messages before they are passed on, and "
    "yours is waiting for a moderator. You do not need to do anything; it will be delivered after review."
)
DEFAULT_REJECTED_NOTICE = (
    "Your message could not be passed on because it does not follow the program's safety rules "
    "(for example, sharing contact details outside the program). Please write again without them."
)


def _sender_auth(value: object) -> object:
    """YAML 1.1 reads an unquoted `off` (and no, false) as the boolean false: that means "off". An
    unquoted `on` (yes, true) is the boolean true, which names neither `require` nor `prefer`."""
    if value is False:
        return "off"
    if value is True:
        raise ValueError("write require or prefer: an unquoted on, yes or true is read as a boolean "
                         "and does not say which")
    return value


SenderAuth = Annotated[Literal["require", "prefer", "off"], BeforeValidator(_sender_auth)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Notices(_Strict):
    """What a sender reads when their message is held or rejected: language -> text (relay/localtext.py; one
    plain string is the English text); {} (unset): the relay's own text, translated; null: the sender is not
    told. A reader whose language the policy does not give gets the relay's own text in their language."""

    held: PolicyText | None = Field(default_factory=dict)
    rejected: PolicyText | None = Field(default_factory=dict)

    def text(self, kind: str, reader: str, written: str) -> str | None:
        """The policy's own text of `kind` ("held" or "rejected") for a reader of `reader`'s language whose
        notice is written in `written`, or None for the relay's own (also when the policy's text is the
        relay's English default, copied into the file)."""
        texts = self.held if kind == "held" else self.rejected
        chosen = pick(texts or {}, reader, written)
        if chosen is None:
            return None
        default = DEFAULT_HELD_NOTICE if kind == "held" else DEFAULT_REJECTED_NOTICE
        return None if " ".join(chosen.split()) == default else chosen.strip()


class Moderators(_Strict):
    notify: list[str] = Field(default_factory=list)  # moderator addresses
    digest: Literal["immediately"] | Duration = "immediately"  # or e.g. 30m: one digest per period


class RuleSetting(_Strict):
    """One configured rule: its action, its severity, how many moderators must release what it holds, its params."""

    rule: str
    action: RuleAction
    severity: Severity = "normal"  # urgent: a finding is always held for a person, whatever the action says
    release_requires: int = 1
    params: Any = None  # the rule module's Params instance


class Policy(_Strict):
    name: str
    description: str = ""
    default_action: Literal["deliver", "hold"] = "deliver"
    sender_auth: SenderAuth = "prefer"
    hold_first_messages: int = Field(0, ge=0, le=1000)
    review_within: Duration = timedelta(hours=24)
    escalate_after: Duration = timedelta(hours=24)  # after review_within, before the coordinator is told
    rules: list[RuleSetting] = Field(default_factory=list)
    notices: Notices = Notices()
    moderators: Moderators = Moderators()
    notify_rejections: bool = False  # automatic rejections are reported to the moderators (at once or in the digest)

    @property
    def digest_every(self) -> timedelta | None:
        digest = self.moderators.digest
        return None if digest == "immediately" else digest  # type: ignore[return-value]


class _PolicyFile(_Strict):
    """The file as written; `rules` is checked entry by entry against each rule's own Params."""

    name: str | None = None
    description: str = ""
    default_action: Literal["deliver", "hold"] = "deliver"
    sender_auth: SenderAuth = "prefer"
    hold_first_messages: int = Field(0, ge=0, le=1000)
    review_within: Duration = timedelta(hours=24)
    escalate_after: Duration = timedelta(hours=24)
    rules: dict[str, Any] = Field(default_factory=dict)
    notices: Notices = Notices()
    moderators: Moderators = Moderators()
    notify_rejections: bool = False


class _RuleHead(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)
    action: RuleAction
    severity: Severity = "normal"
    release_requires: int = Field(1, ge=1, le=5)


_HEAD_KEYS = ("action", "severity", "release_requires")


def _errors(exc: ValidationError, located: Located, prefix: tuple[str | int, ...]) -> list[str]:
    messages = []
    for err in exc.errors():
        loc = (*prefix, *(part for part in err["loc"] if part != "[key]"))  # a mapping's bad key: at its line
        where = ".".join(str(p) for p in loc) or "(top level)"
        text = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        messages.append(located.error(loc, f"{where}: {text}"))
    return messages


def parse_policy(file: Path) -> Policy:
    """Load and validate one policy file; every problem is a `file:line: message` in a ConfigError."""
    located = load(file)
    if not isinstance(located.data, dict):
        raise ConfigError([located.error((), "a policy file must be a mapping of keys")])
    try:
        written = _PolicyFile.model_validate(located.data)
    except ValidationError as exc:
        raise ConfigError(_errors(exc, located, ())) from None
    errors: list[str] = []
    if written.name is not None and written.name != file.stem:
        errors.append(located.error(("name",), f"name: {written.name!r} must match the file name {file.stem!r}"))
    settings: list[RuleSetting] = []
    for rule_name, entries in written.rules.items():
        if rule_name not in RULES:
            known = ", ".join(sorted(RULES))
            errors.append(located.error(("rules", rule_name), f"rules.{rule_name}: unknown rule (known: {known})"))
            continue
        listed = entries if isinstance(entries, list) else [entries]
        for index, entry in enumerate(listed):
            path: tuple[str | int, ...] = (
                ("rules", rule_name, index) if isinstance(entries, list) else ("rules", rule_name))
            if not isinstance(entry, dict):
                errors.append(located.error(path, f"rules.{rule_name}: expected a mapping with at least 'action'"))
                continue
            try:
                head = _RuleHead.model_validate(entry)
                params_data = {k: v for k, v in entry.items() if k not in _HEAD_KEYS}
                params = RULES[rule_name].Params.model_validate(params_data)
            except ValidationError as exc:
                errors.extend(_errors(exc, located, path))
                continue
            settings.append(RuleSetting(rule=rule_name, action=head.action, severity=head.severity,
                                        release_requires=head.release_requires, params=params))
    if errors:
        raise ConfigError(errors)
    if written.hold_first_messages:  # shorthand for the first_messages rule with action hold
        first = RULES["first_messages"].Params.model_validate({"count": written.hold_first_messages})
        settings.append(RuleSetting(rule="first_messages", action="hold", params=first))
    return Policy(
        name=file.stem, description=written.description, default_action=written.default_action,
        hold_first_messages=written.hold_first_messages, review_within=written.review_within,
        escalate_after=written.escalate_after, rules=settings, notices=written.notices,
        moderators=written.moderators, sender_auth=written.sender_auth, notify_rejections=written.notify_rejections,
    )


class PolicyBook:
    """The policies in force, by name; reloaded when a file changes, keeping the last good version."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._loaded: dict[str, tuple[float, Policy]] = {}

    def get(self, name: str) -> Policy:
        if not policy_name_ok(name):  # a pair's policy is never a path (/tmp/x/evil, ../x)
            raise ConfigError([f"{self.directory}: policy {name!r} is not a plain name (no path)"])
        file = self.directory / f"{name}.yaml"
        try:
            mtime = os.stat(file).st_mtime
        except OSError:
            mtime = -1.0
        cached = self._loaded.get(name)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        try:
            policy = parse_policy(file)
        except ConfigError as exc:
            if cached is None:
                raise
            log.error("policy %s not reloaded, the last good version stays in force:\n%s", name, exc)
            self._loaded[name] = (mtime, cached[1])  # do not re-read the bad file at every message
            return cached[1]
        self._loaded[name] = (mtime, policy)
        return policy

    def names(self) -> list[str]:
        """The names of the policies read so far (all valid ones after load_all)."""
        return sorted(self._loaded)

    def load_all(self) -> list[str]:
        """Read every policy file now (at start): each valid one is in force from here on; the problems
        of the others are returned as `file:line: message` lines."""
        errors: list[str] = []
        for file in sorted(self.directory.glob("*.yaml")):
            try:
                mtime = os.stat(file).st_mtime
                policy = parse_policy(file)
            except OSError as exc:
                errors.append(f"{file}:1: cannot read file: {exc}")
                continue
            except ConfigError as exc:
                errors.extend(exc.messages)
                continue
            self._loaded[file.stem] = (mtime, policy)
        return errors
