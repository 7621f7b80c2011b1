"""DKIM keys: making a key pair, reading and writing the private key file, and the public key as DNS publishes it.

The private key file is PEM: RSA keys as PKCS#1 ("RSA PRIVATE KEY", what OpenDKIM and dkimpy read too),
Ed25519 keys as PKCS#8. The algorithm is a property of the key, so the file alone says how to sign.
"""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path
from typing import Literal

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

Algorithm = Literal["rsa", "ed25519"]
PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

RSA_BITS = 2048
MIN_RSA_BITS = 1024  # verifiers ignore shorter keys (RFC 8301)
_SELECTOR = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$", re.IGNORECASE)


class KeyFileError(Exception):
    """A private key file that cannot be used for signing; the message names the file."""


def check_selector(selector: str) -> str:
    """The selector, if it can be a DNS name under _domainkey (letters, digits, hyphens, dots)."""
    if not _SELECTOR.match(selector):
        raise ValueError(f"selector {selector!r} must be a DNS label such as 2025a (letters, digits, hyphens)")
    return selector


def generate(algorithm: Algorithm) -> PrivateKey:
    if algorithm == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    return rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)


def algorithm_of(key: PrivateKey) -> Algorithm:
    return "rsa" if isinstance(key, rsa.RSAPrivateKey) else "ed25519"


def describe(key: PrivateKey) -> str:
    """A short name of the key kind for messages: rsa-2048, ed25519."""
    return f"rsa-{key.key_size}" if isinstance(key, rsa.RSAPrivateKey) else "ed25519"


def write_private(key: PrivateKey, path: Path) -> None:
    """Write the key as PEM, readable by its owner only (0600); an existing file is never replaced."""
    layout = serialization.PrivateFormat.TraditionalOpenSSL if isinstance(key, rsa.RSAPrivateKey) \
        else serialization.PrivateFormat.PKCS8
    pem = key.private_bytes(serialization.Encoding.PEM, layout, serialization.NoEncryption())
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(pem)


def read_private(path: Path) -> PrivateKey:
    """Load a PEM private key for signing; every way it can be unusable is a KeyFileError."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise KeyFileError(f"{path} is encrypted; the relay needs it unencrypted (readable only by the relay's user)"
                           ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise KeyFileError(f"{path} is not a PEM private key (make one with `mentor-relay dkim keygen`)") from None
    if not isinstance(key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
        raise KeyFileError(f"{path} holds a key of another kind ({type(key).__name__}); DKIM signs with RSA or Ed25519")
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < MIN_RSA_BITS:
        raise KeyFileError(f"{path} holds an RSA key of {key.key_size} bits: too short for DKIM "
                           f"(at least {MIN_RSA_BITS}, {RSA_BITS} recommended)")
    return key


def record_name(selector: str, domain: str) -> str:
    return f"{selector}._domainkey.{domain}"


def record_value(key: PrivateKey) -> str:
    """The TXT record that publishes the public half: v=DKIM1; k=rsa|ed25519; p=<base64>."""
    public = key.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    else:
        der = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)  # RFC 8463
    return f"v=DKIM1; k={algorithm_of(key)}; p={base64.b64encode(der).decode('ascii')}"
