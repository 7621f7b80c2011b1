"""The checks `serve` and `check-config` make before anything starts, so that a configuration mistake
stops the start instead of failing a message at 3 a.m.

relay.yaml and the program files are validated when they are loaded (relay/config.py: keys, types,
time zones, phone regions, that each program's policy file exists). Here every policy file in
policies_dir is parsed and validated too (policies used to be read only when the first message needed
one), and the DKIM key is loaded. Every problem is collected, each as `file:line: message`; any
problem raises one ConfigError with all of them.
"""

from __future__ import annotations

from relay.config import Settings
from relay.dkim import signer_from_settings
from relay.dkim.signer import Signer
from relay.moderation.policy import PolicyBook
from relay.yamlsource import ConfigError


def preflight(settings: Settings) -> tuple[PolicyBook, Signer | None]:
    """The policies, loaded and in force, and the DKIM signer (None when signing is off)."""
    policies = PolicyBook(settings.policies_dir)
    errors = policies.load_all()
    signer = None
    try:
        signer = signer_from_settings(settings)
    except ConfigError as exc:
        errors.extend(exc.messages)
    if errors:
        raise ConfigError(errors)
    return policies, signer
