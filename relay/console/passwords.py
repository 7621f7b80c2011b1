"""Secrets of moderator accounts: argon2id password hashes and API tokens (kept only as SHA-256 hashes)."""

from __future__ import annotations

import hashlib
import secrets
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()


@cache
def _dummy() -> str:
    """Verified against when the account does not exist, so that a wrong name takes as long as a wrong
    password. Made on first use: hashing costs ~150 ms, which every CLI start would otherwise pay."""
    return _HASHER.hash(secrets.token_hex(16))



def prepare() -> None:
    """Make the dummy hash now (the console does at start), not during someone's login."""
    _dummy()


MIN_PASSWORD_LENGTH = 10


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash or _dummy(), password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    return "mr_" + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
