"""DKIM signing cost: the relay's signer against dkimpy's own signer, in one process, on the same messages.

What it measures
  The same N ~2 KB text messages (those of throughput.py) are signed with one RSA-2048 key, relaxed/relaxed,
  the same h= list:
    1. dkimpy: `dkim.sign`, whose RSA step is pure Python (the baseline);
    2. relay: relay.dkim.Signer, dkimpy's canonicalisation with the RSA step in OpenSSL (`cryptography`);
  and, for reference, the relay's signer called through asyncio.to_thread (as the delivery worker calls
  it) and with an Ed25519 key. Each run is timed over all N messages after a short warm-up; one signature
  of each kind is checked with dkim.verify against its public record (a stub resolver, no DNS).
  The last line is `relay/dkimpy signing cost ratio: X.XX` (relay ms/message divided by dkimpy's).

Usage: .venv/bin/python bench/dkim_sign.py [--messages N]      (default 2000)
Exit status 1 if a signature does not verify (the figures are printed all the same).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Callable, Sequence

import dkim
from cryptography.hazmat.primitives import serialization
from throughput import DOMAIN, MENTEE, build_messages  # beside this file: the same messages as that bench

from relay.dkim.keys import PrivateKey, generate, record_value
from relay.dkim.signer import Signer, signed_names

SELECTOR = "bench"
WARM_UP = 20


def dkimpy_signer(key: PrivateKey, include: list[bytes]) -> Callable[[bytes], bytes]:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption())

    def sign(raw: bytes) -> bytes:
        return dkim.sign(raw, SELECTOR.encode(), DOMAIN.encode(), pem, canonicalize=(b"relaxed", b"relaxed"),
                         include_headers=include) + raw

    return sign


def ms_per_message(sign: Callable[[bytes], bytes], messages: Sequence[bytes]) -> float:
    for raw in messages[:WARM_UP]:
        sign(raw)
    started = time.perf_counter()
    for raw in messages:
        sign(raw)
    return (time.perf_counter() - started) * 1000 / len(messages)


def ms_per_message_in_thread(sign: Callable[[bytes], bytes], messages: Sequence[bytes]) -> float:
    async def run() -> float:
        started = time.perf_counter()
        for raw in messages:
            await asyncio.to_thread(sign, raw)
        return (time.perf_counter() - started) * 1000 / len(messages)

    return asyncio.run(run())


def verifies(signed: bytes, key: PrivateKey) -> bool:
    record = record_value(key).encode("ascii")
    return bool(dkim.verify(signed, dnsfunc=lambda name, timeout=5: record))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=2000, help="messages per run (default 2000)")
    args = parser.parse_args(argv)
    if args.messages < 1:
        parser.error("--messages must be >= 1")
    messages = build_messages(args.messages, MENTEE["email"], MENTEE["name"], f"oak.bench1@{DOMAIN}")
    rsa_key, ed_key = generate("rsa"), generate("ed25519")
    include = signed_names(dkim.rfc822_parse(messages[0])[0])
    runs: list[tuple[str, Callable[[bytes], bytes], PrivateKey]] = [
        ("dkimpy (pure-Python RSA)", dkimpy_signer(rsa_key, include), rsa_key),
        ("relay (OpenSSL RSA)", Signer(DOMAIN, SELECTOR, rsa_key).sign, rsa_key),
        ("relay Ed25519", Signer(DOMAIN, SELECTOR, ed_key).sign, ed_key),
    ]
    size = sum(map(len, messages)) // len(messages)
    print(f"DKIM signing: {len(messages)} messages of ~{size / 1024:.1f} KB, RSA-2048, relaxed/relaxed, "
          f"{len(include)} h= entries, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
          f"load average before the run {os.getloadavg()[0]:.2f}\n")
    ok = True
    figures = {}
    for name, sign, key in runs:
        figures[name] = ms_per_message(sign, messages)
        valid = verifies(sign(messages[0]), key)
        ok = ok and valid
        print(f"{name:<38} {figures[name]:8.3f} ms/message  {1000 / figures[name]:8.0f} msgs/s  "
              f"{'verifies' if valid else 'DOES NOT VERIFY'}")
    threaded = ms_per_message_in_thread(runs[1][1], messages)
    print(f"{'relay (OpenSSL RSA) via to_thread':<38} {threaded:8.3f} ms/message  {1000 / threaded:8.0f} msgs/s")
    ratio = figures[runs[1][0]] / figures[runs[0][0]]
    print(f"relay/dkimpy signing cost ratio: {ratio:.2f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
