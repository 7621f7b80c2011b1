"""Armoured blocks pasted as text: OpenPGP (RFC 4880 ASCII armour) and PEM (RFC 7468: S/MIME certificates,
PKCS #7 / CMS signatures, keys), found in plain text and in HTML, and replaced by a note.

Such a block cannot be cleaned, and what it holds the scrub cannot see: an OpenPGP key carries its owner's
user ID ("Jane Doe <jane.doe@...>") in its base64, a signature its key's fingerprint, a certificate its
subject's name and address; an encrypted message no rule can read (a disclosure, a phone number inside it
would pass unseen). Mailvelope and webmail users paste keys and encrypted text into the body; clear-signed mail
(-----BEGIN PGP SIGNED MESSAGE-----) keeps its text and ends in a signature block. Each block, from its BEGIN
line to its END line (to the end of the text when the END line is missing: a cut key still names its owner),
gives way to a note saying what was removed and why, and is reported to the caller (as an attachment that
could not be cleaned is), which holds the message for a moderator: the block is never delivered as it came.
The signed text of a clear-signed message is ordinary text, scrubbed and read by the rules; only its
signature is a block. Pure: text in, text and what was removed out.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass

# "-----BEGIN PGP PUBLIC KEY BLOCK-----", "-----BEGIN PGP MESSAGE, PART 1/2-----", "-----BEGIN PKCS7-----"
# (labels are upper case: RFC 4880 6.2, RFC 7468 3)
BEGIN = re.compile(r"-----BEGIN ([A-Z0-9][A-Z0-9 ,/._+-]{0,60}?)-----")
NOTE = re.compile(r"\[An? [^\]\n]{1,120} was removed by the program: ")  # a note in text once cleaned
_DASH_ENTITY = re.compile(r"&#(?:0*45|[xX]0*2[dD]);")  # "-" written as a character reference
_SIGNED_HEADER = "PGP SIGNED MESSAGE"  # the start of a clear-signed text: its signature is the block
_KEY_LABELS = ("PGP PUBLIC KEY BLOCK", "PGP PRIVATE KEY BLOCK", "PGP SECRET KEY BLOCK")
_SMIME_LABELS = ("CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE", "PKCS7", "CMS", "CERTIFICATE REQUEST",
                 "NEW CERTIFICATE REQUEST", "X509 CRL")


@dataclass(frozen=True)
class Removed:
    """One kind of block removed: what it was (the moderator's label) and why it cannot be delivered."""

    what: str
    reason: str

    @property
    def note(self) -> str:
        return f"[{self.what[0].upper()}{self.what[1:]} was removed by the program: {self.reason}.]"


def kind_of(label: str) -> Removed:
    """What a block of this armour label is, and why it is held."""
    if label in _KEY_LABELS:
        return Removed("an OpenPGP key pasted as text", "a key names its owner (its user ID) and cannot be cleaned")
    if label.startswith("PGP MESSAGE"):
        return Removed("an OpenPGP-encrypted text", "no rule of the program can read an encrypted text, and it "
                                                   "names the keys it was written to")
    if label == "PGP SIGNATURE":
        return Removed("an OpenPGP signature", "a signature names its owner's key and cannot be cleaned")
    if label.startswith("PGP "):
        return Removed(f"an OpenPGP block ({label})", "it cannot be read to clean it of its owner's name")
    if label in _SMIME_LABELS:
        return Removed(f"an S/MIME certificate or signature pasted as text ({label})",
                       "a certificate or signature names its owner and cannot be cleaned")
    return Removed(f"an armoured block ({label}) pasted as text", "it cannot be read to clean it of personal data")


def _armour(label: str) -> bool:
    """Whether a BEGIN line's label is one of a block that names or hides somebody: any OpenPGP block, an
    S/MIME one, a key, a certificate or a signature of another kind (an SSH or PKCS #8 private key)."""
    return label.startswith("PGP ") or label in _SMIME_LABELS or label.endswith(("KEY", "KEY BLOCK")) or any(
        word in label for word in ("CERTIFICATE", "PKCS", "SIGNATURE"))


def blocks(text: str) -> list[tuple[int, int, Removed]]:
    """The armoured blocks of `text`: (start, end, kind), in order, not overlapping."""
    found: list[tuple[int, int, Removed]] = []
    position = 0
    while (begin := BEGIN.search(text, position)) is not None:
        label = begin.group(1)
        if label == _SIGNED_HEADER or not _armour(label):
            position = begin.end()  # a clear-signed text follows, then its signature block; or no armour at all
            continue
        end_line = f"-----END {label}-----"
        end = text.find(end_line, begin.end())
        stop = end + len(end_line) if end >= 0 else len(text)
        found.append((begin.start(), stop, kind_of(label)))
        position = stop
    return found


def strip(text: str, report: Callable[[Removed], None], escape: bool = False) -> str:
    """`text` with each armoured block replaced by its note (HTML-escaped when `escape`); each kind removed
    is passed to `report`."""
    if "-----" not in text:
        return text
    pieces: list[str] = []
    position = 0
    for start, end, kind in blocks(text):
        report(kind)
        pieces.extend((text[position:start], html.escape(kind.note) if escape else kind.note))
        position = end
    if not pieces:
        return text
    pieces.append(text[position:])
    return "".join(pieces)


def strip_html(source: str, visible: Callable[[str], str], report: Callable[[Removed], None]) -> str:
    """An HTML source with each armoured block replaced by its note. A block is found in the source as
    written (Mailvelope and webmail write it as text, a line per <div> or <br>): the source from its BEGIN
    to its END goes. A block the source hides from that search but that the reader sees (`visible`: the
    text of the HTML as a person reads it; entities for the dashes, a tag inside the BEGIN line) takes the
    whole HTML with it: a paragraph with the note is all that is left."""
    stripped = strip(source, report, escape=True)
    if stripped != source or ("BEGIN" not in source and not _DASH_ENTITY.search(source)):
        return stripped  # a block was found as written, or none hides in the source (the common case: no second parse)
    found = blocks(visible(source))
    if not found:
        return source
    for _, _, kind in found:
        report(kind)
    return "".join(f"<p>{html.escape(kind.note)}</p>" for kind in dict.fromkeys(k for _, _, k in found))
