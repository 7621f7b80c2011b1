"""The checks `serve` and `check-config` make before anything starts, so that a configuration mistake
stops the start instead of failing a message at 3 a.m.

relay.yaml and the program files are validated when they are loaded (relay/config.py: keys, types,
time zones, phone regions, that each program's policy file exists). Here every policy file in
policies_dir is parsed and validated too (policies used to be read only when the first message needed
one), and the DKIM key is loaded. Every problem is collected, each as `file:line: message`; any
problem raises one ConfigError with all of them.
"""

from __future__ import annotations

import ssl

from relay.config import Settings
from relay.dkim import signer_from_settings
from relay.dkim.signer import Signer
from relay.moderation.policy import PolicyBook
from relay.yamlsource import ConfigError, load


def preflight(settings: Settings) -> tuple[PolicyBook, Signer | None]:
    """The policies, loaded and in force, and the DKIM signer (None when signing is off)."""
    policies = PolicyBook(settings.policies_dir)
    errors = policies.load_all()
    signer = None
    try:
        signer = signer_from_settings(settings)
    except ConfigError as exc:
        errors.extend(exc.messages)
    errors.extend(certificate_problems(settings))
    if errors:
        raise ConfigError(errors)
    return policies, signer


def certificate_problems(settings: Settings) -> list[str]:
    """smtp.tls_cert/tls_key and console.tls_cert/tls_key: each file exists and the pair loads, so that a
    missing or wrong file is named at check-config instead of `serve` failing with a bare "[Errno 2]"."""
    problems: list[str] = []
    located = None
    for section in ("smtp", "console"):
        config = getattr(settings.relay, section)
        if not (config.tls_cert and config.tls_key):
            continue
        if located is None:
            located = load(settings.path)
        paths = {key: settings.resolve(getattr(config, key)) for key in ("tls_cert", "tls_key")}
        missing = False
        for key, path in paths.items():
            if not path.is_file():
                problems.append(located.error((section, key), f"{section}.{key}: no such file {path}"))
                missing = True
        if missing:
            continue
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(str(paths["tls_cert"]), str(paths["tls_key"]))
        except (ssl.SSLError, OSError) as exc:
            problems.append(located.error((section, "tls_cert"), f"{section}.tls_cert and tls_key: cannot be loaded as "
                                          f"a certificate and its private key ({paths['tls_cert']}, "
                                          f"{paths['tls_key']}): {exc}"))
    return problems
