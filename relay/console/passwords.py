"""Secrets of moderator accounts: argon2id password hashes and API tokens (kept only as SHA-256 hashes).

Verifying a password costs ~100 ms of CPU and 64 MiB: the console does it off the event loop (`Verifier`: in
threads, a few at a time, a bounded number waiting), so SMTP and other requests go on during a flood of logins."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
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


class Verifier:
    """Password verification for the console: at most `at_once` argon2 runs at a time, each in a thread; at
    most `admitted` logins in progress (verifying or waiting). A login beyond that is told the console is busy
    before anything is counted or verified."""

    def __init__(self, at_once: int = 2, admitted: int = 64) -> None:
        self._turns = asyncio.Semaphore(at_once)
        self._admitted = admitted
        self._inside = 0

    @contextmanager
    def admission(self) -> Iterator[bool]:
        """True (and a place held until the block ends) when there is room; False when busy."""
        if self._inside >= self._admitted:
            yield False
            return
        self._inside += 1
        try:
            yield True
        finally:
            self._inside -= 1

    async def verify(self, password_hash: str | None, password: str) -> bool:
        async with self._turns:
            return await asyncio.to_thread(verify_password, password_hash, password)


def new_token() -> str:
    return "mr_" + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
