"""The DKIM signer: adds a DKIM-Signature (RFC 6376, relaxed/relaxed) to one outbound message.

dkimpy parses the message and canonicalises headers and body; the signature itself is computed by
`cryptography` (OpenSSL), rsa-sha256 (RFC 6376) or ed25519-sha256 (RFC 8463), which is several times
cheaper than dkimpy's pure-Python RSA. Relaxed header canonicalisation turns any run of folding
whitespace into one space, so the signature field can be folded after signing without changing its
hash, and the b= value is left out of the hash as the verifier leaves it out.
"""

from __future__ import annotations

import base64
import hashlib
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils
from dkim import rfc822_parse
from dkim.canonicalization import Relaxed

from relay.dkim.keys import PrivateKey, algorithm_of

# Signed when present: what a reader sees and what threading relies on. Each is also signed once more
# than it occurs, so that nobody on the way can add a second From (or Subject, ...) unnoticed.
SIGNED_HEADERS = (
    b"from", b"reply-to", b"to", b"subject", b"date", b"message-id", b"in-reply-to", b"references",
    b"mime-version", b"content-type", b"content-transfer-encoding",
)
FIELD = b"DKIM-Signature"
WIDTH = 78  # folded lines stay within RFC 5322's recommended length
B64_CHUNK = 64

Header = tuple[bytes, bytes]


class Signer:
    """Signs as d=<domain>, s=<selector> with one private key (RSA or Ed25519)."""

    def __init__(self, domain: str, selector: str, key: PrivateKey) -> None:
        self.domain = domain.encode("idna")  # d= names the domain in A-labels
        self.selector = selector.encode("ascii")
        self.key = key
        self.algorithm = b"rsa-sha256" if algorithm_of(key) == "rsa" else b"ed25519-sha256"

    def sign(self, raw: bytes) -> bytes:
        """The message with a DKIM-Signature field in front; raises dkim.MessageFormatError if unparsable."""
        return self.field(raw) + raw

    def field(self, raw: bytes) -> bytes:
        """The folded DKIM-Signature field for `raw`, line ending included: what `sign` puts in front. A worker
        process returns this alone, so a large message does not travel back from it."""
        headers, body = rfc822_parse(raw)
        names = signed_names(headers)
        unsigned = self._tags(names, body_hash(body)) + b" b="
        signature = base64.b64encode(self._signature(header_digest(headers, names, unsigned)))
        return fold(FIELD + b":" + unsigned + signature, _line_separator(raw))

    def _tags(self, names: list[bytes], body_digest: bytes) -> bytes:
        tags = [b"v=1", b"a=" + self.algorithm, b"c=relaxed/relaxed", b"d=" + self.domain, b"s=" + self.selector,
                b"t=" + str(int(time.time())).encode("ascii"), b"h=" + b": ".join(names),
                b"bh=" + base64.b64encode(body_digest)]
        return b"".join(b" " + tag + b";" for tag in tags)

    def _signature(self, digest: bytes) -> bytes:
        if isinstance(self.key, rsa.RSAPrivateKey):
            return self.key.sign(digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))
        return self.key.sign(digest)  # ed25519-sha256 signs the SHA-256 of the header data (RFC 8463)


def signed_names(headers: list[Header]) -> list[bytes]:
    """The h= list: each signed field as often as it occurs, then each once more (oversigning)."""
    present = [name.lower() for name, _ in headers if name.lower() in SIGNED_HEADERS]
    return present + list(dict.fromkeys(present))


def body_hash(body: bytes) -> bytes:
    return hashlib.sha256(Relaxed.canonicalize_body(body)).digest()


def header_digest(headers: list[Header], names: list[bytes], unsigned: bytes) -> bytes:
    """SHA-256 over the fields named in h= (the last instance first, RFC 6376 5.4.2), then our own field
    with an empty b= and without its line end."""
    instances: dict[bytes, list[bytes]] = {}
    for name, value in Relaxed.canonicalize_headers(headers):
        instances.setdefault(name, []).append(name + b":" + value)
    digest = hashlib.sha256()
    for name in names:
        if instances.get(name):
            digest.update(instances[name].pop())
    [(own_name, own_value)] = Relaxed.canonicalize_headers([(FIELD, unsigned)])
    digest.update(own_name + b":" + own_value.removesuffix(b"\r\n"))
    return digest.digest()


def fold(field: bytes, linesep: bytes) -> bytes:
    """Fold at the spaces of `field` and inside the b= value, lines within WIDTH; ends with `linesep`."""
    head, _, signature = field.rpartition(b" b=")
    value = b"b=" + signature
    words = [*head.split(b" "), *(value[i:i + B64_CHUNK] for i in range(0, len(value), B64_CHUNK))]
    lines = [words[0]]
    for word in words[1:]:
        if len(lines[-1]) + 1 + len(word) > WIDTH:
            lines.append(b"")
        lines[-1] += b" " + word
    return linesep.join(lines) + linesep


def _line_separator(raw: bytes) -> bytes:
    return b"\r\n" if raw.partition(b"\n")[0].endswith(b"\r") else b"\n"
