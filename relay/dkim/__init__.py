"""Outbound DKIM: turns `dkim {selector, private_key}` of relay.yaml into the key and the Signer.

Signing is on when both keys are set. Every problem with them (one set without the other, a selector
that is no DNS label, a key file that is missing, unreadable or not a usable key) is a ConfigError
pointing at the line of relay.yaml, so `serve` and `check-config` stop with one clear message.
Rotation is by selector: publish the new selector's record, then switch both keys and restart.
"""

from __future__ import annotations

from relay.config import Settings
from relay.dkim.keys import KeyFileError, PrivateKey, check_selector, read_private
from relay.dkim.signer import Signer
from relay.yamlsource import ConfigError, load


def configured_key(settings: Settings) -> tuple[str, PrivateKey] | None:
    """(selector, private key) from the configuration, or None when DKIM signing is off."""
    dkim = settings.relay.dkim
    if dkim.selector is None and dkim.private_key is None:
        return None
    if dkim.selector is None or dkim.private_key is None:
        missing = "selector" if dkim.selector is None else "private_key"
        raise _located(settings, missing, f"dkim.{missing}: not set (selector and private_key go together; "
                                          "leave both out to send unsigned)")
    try:
        selector = check_selector(dkim.selector)
    except ValueError as exc:
        raise _located(settings, "selector", f"dkim.selector: {exc}") from None
    try:
        return selector, read_private(settings.resolve(dkim.private_key))
    except KeyFileError as exc:
        raise _located(settings, "private_key", f"dkim.private_key: {exc}") from None


def signer_from_settings(settings: Settings) -> Signer | None:
    configured = configured_key(settings)
    if configured is None:
        return None
    selector, key = configured
    return Signer(settings.relay.domain, selector, key)


def _located(settings: Settings, key: str, message: str) -> ConfigError:
    """The error as `file:line: message`, at the line of dkim.<key> (or of dkim when it is absent)."""
    try:
        line = load(settings.path).error(("dkim", key), message)
    except ConfigError:  # the file changed under us: still name it
        line = f"{settings.path}:1: {message}"
    return ConfigError([line])
