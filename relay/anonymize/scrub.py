"""Replace the real addresses and names of both members by aliases and handles, in any text.

What counts as an address or a name, and where, is names.py's (shared with the identity rule); this
module applies it to the kinds of text a message carries. Plain text: RFC 2047 encoded words pasted
into it are decoded first, and links in it are decoded for the check (links.py). HTML: read with a real
parser (htmltext.py): the text a person reads (a name split across tags is seen whole), every
attribute, comments and hidden text; a link that leaks is rewritten or removed; a `cid:` reference
follows the part's re-minted Content-ID; a `data:` URI's bytes are cleaned like an attachment (a photo
loses its EXIF) or, when they cannot be, the URI is removed. Calendar and vCard text: cards.py unfolds, unescapes and
decodes quoted-printable first, and writes the result back in the format's own escaping.
A member's display names (mailboxes.py): the whole phrase a client writes before a member's address
("Doe, Jane (LHS Student - Grade 9) <jane.doe@...>", a CN= parameter before "mailto:") becomes the handle, and
the display names a member's own From gave this message (`Identity.display_names`) are matched whole and by
their name-like words.
"""

from __future__ import annotations

import base64
import binascii
import html
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.errors import MessageError
from email.header import decode_header, make_header
from urllib.parse import unquote_to_bytes

from relay.anonymize import armour, attachments, cards, mailboxes
from relay.anonymize.htmltext import Edits, rewrite, view
from relay.anonymize.links import URL_IN_TEXT, clean_url
from relay.anonymize.names import Hit, Person, matcher_for, replace
from relay.anonymize.writable import writable

_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")
_DATA_URI = re.compile(r"(?is)data:([^,;]*)((?:;[^,;]*)*),(.*)")  # RFC 2397: data:[<type>][;param][;base64],<data>
LINK_REMOVED = "[link removed by the program]"


@dataclass(frozen=True)
class Identity:
    """One member: what must disappear (real address, name, nicknames) and what stands in for it."""

    email: str
    name: str
    alias_address: str
    handle: str
    nicknames: tuple[str, ...] = ()
    other_emails: tuple[str, ...] = ()  # further addresses the member writes from: replaced like `email`
    language: str | None = None  # enrolled language (BCP 47): a hint at the charset of text that names none
    # the display names the member's own From gave this message ("Doe, Jane (LHS Student - Grade 9)"): matched
    # whole, and by their name-like words (mailboxes.py), like the name
    display_names: tuple[str, ...] = ()


@dataclass
class Scrubber:
    """Replaces the identities it was built with; cheap to build (the matcher is cached per pair).

    content_ids maps the Content-IDs a message came with to the ones it leaves with (anonymize fills it);
    with cleans_attachments, the MIME walk also cleans attachments and lists those it could not clean in
    `refused` as (file name, reason).
    """

    identities: Iterable[Identity]
    content_ids: dict[str, str] = field(default_factory=dict)
    cleans_attachments: bool = False
    refused: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        people = list(self.identities)
        # a member with further addresses is matched once per address, each replaced by their alias
        each = [(p, email) for p in people for email in (p.email, *p.other_emails)]
        self._matcher = matcher_for(tuple(Person(email, p.name, (*p.nicknames, *_display_words(p)))
                                          for p, email in each))
        self._replacements = [(p.alias_address, p.handle) for p, _ in each]
        self._phrases = mailboxes.Phrases((name, index) for index, (p, _) in enumerate(each)
                                          for name in p.display_names)

    def _find(self, value: str) -> list[Hit]:
        """The members' addresses and names in value, a display phrase before a member's address (or a
        display name of the sender's From) whole, as one hit."""
        hits = self._matcher.find(value)
        return mailboxes.merged(hits, [*mailboxes.phrase_hits(value, hits), *self._phrases.find(value)])

    def _plain(self, value: str) -> str:
        hits = self._find(value)
        if not any(hit.certain for hit in hits):
            repaired = _repaired(value)
            if repaired is None or not self._found(repaired):
                return value
            value, hits = repaired, self._find(repaired)
        return replace(value, hits, self._replacements)

    def text(self, value: str) -> str:
        """Scrub plain text (also the decoded value of a header); an armoured block (armour.py) gives way to
        a note and is listed in `refused`."""
        value = self._plain(decode_encoded_words(armour.strip(value, self._refuse)))
        if "%" in value or "=" in value:
            value = URL_IN_TEXT.sub(self._text_link, value)
        return value

    def _text_link(self, match: re.Match[str]) -> str:
        cleaned = clean_url(match.group(0), self.found_in, self._plain)
        return LINK_REMOVED if cleaned is None else cleaned

    def edits(self, value: str) -> Edits:
        return [(hit.start, hit.end, self._replacements[hit.person][0 if hit.kind == "address" else 1])
                for hit in self._find(value) if hit.certain]

    def url(self, attribute: str, value: str) -> str | None:
        if value[:4].lower() == "cid:":
            return "cid:" + self.content_ids.get(value[4:].strip().strip("<>").lower(), value[4:])
        if value.lstrip()[:5].lower() == "data:":
            return self.data_uri(value)
        return clean_url(value, self.found_in, self._plain)

    def data_uri(self, value: str) -> str | None:
        """A data: URI with its bytes cleaned as an attachment of its type would be (a photo without EXIF);
        one that cannot be cleaned, or whose other content names somebody, is None (removed)."""
        decoded = parse_data_uri(value)
        if decoded is None:
            return None
        media_type, data = decoded
        if attachments.kind_of(media_type, None) != "unknown":
            result = attachments.clean(data, media_type, None, self.text)
            if not isinstance(result, attachments.Cleaned):
                return None
            if result.data == data:
                return value
            return f"data:{media_type};base64,{base64.b64encode(result.data).decode()}"
        text = data.decode("utf-8", "replace")
        return None if self.found_in(text) or self.found_in(value) else value

    def html(self, value: str) -> str:
        """Scrub HTML: text runs, attributes (links decoded), comments and hidden text; an armoured block
        gives way to a note, as in plain text."""
        value = armour.strip_html(value, _readable_html, self._refuse)
        return rewrite(value, self.edits, self.text, self.url)

    def _refuse(self, kind: armour.Removed) -> None:
        """An armoured block removed from the text: the message is held, as for a file that cannot be cleaned."""
        if (kind.what, kind.reason) not in self.refused:
            self.refused.append((kind.what, kind.reason))

    def calendar(self, value: str) -> str:
        return cards.clean_calendar(value, self.text, html=self.html, handle_of=self.handle_of)

    def vcard(self, value: str) -> str:
        return cards.clean_vcard(value, self.text, handle_of=self.handle_of)

    def handle_of(self, value: str) -> str | None:
        """The handle of the member whose address the whole value is ("mailto:jane@..."), or None."""
        person = mailboxes.mailbox_owner(value, self._matcher.find)
        return None if person is None else self._replacements[person][1]

    def _found(self, value: str) -> bool:
        return self._matcher.found_in(value) or bool(self._phrases.find(value))

    def found_in(self, value: str) -> bool:
        value = decode_encoded_words(value)
        if self._found(value):
            return True
        repaired = _repaired(value)
        return repaired is not None and self._found(repaired)


def _display_words(identity: Identity) -> tuple[str, ...]:
    """The name-like words of each of the member's display names, each set as one more nickname."""
    return tuple(words for name in identity.display_names if (words := mailboxes.name_words(name)))


def _readable_html(source: str) -> str:
    """All an HTML part shows a reader (its visible and hidden text, its attributes), for armour.strip_html."""
    seen = view(source)
    return "\n".join((seen.visible, seen.hidden, *seen.attributes))


def parse_data_uri(value: str) -> tuple[str, bytes] | None:
    """A data: URI's media type (lower case, "text/plain" when absent) and bytes; None if it is malformed.

    Hand-written: the stdlib reads data: URIs only inside urllib.request's URL opener."""
    match = _DATA_URI.fullmatch(value.strip())
    if match is None:
        return None
    media_type = match.group(1).strip().lower() or "text/plain"
    try:
        if "base64" in (p.strip().lower() for p in match.group(2).split(";")):
            return media_type, base64.b64decode("".join(unquote_to_bytes(match.group(3)).decode("ascii").split()),
                                                validate=True)
        return media_type, unquote_to_bytes(match.group(3))
    except (binascii.Error, ValueError):  # bad base64 or non-ASCII in it
        return None


def _repaired(value: str) -> str | None:
    """Text whose UTF-8 was decoded in another charset ("JosÃ© MÃ¼ller"), repaired by ftfy; None when it
    does not look garbled (ASCII text never does, and most text is checked by one regular expression)."""
    if value.isascii():
        return None
    import ftfy
    from ftfy.badness import is_bad

    if not is_bad(value):
        return None
    fixed = ftfy.fix_encoding(value)
    return fixed if fixed != value else None


def decode_letter_entities(source: str) -> str:
    """Turn entities that stand for letters, digits and address punctuation back into characters
    (&#106;&#97;ne&#64; -> jane@); entities that matter to HTML (&lt; &amp; &quot;) stay as they are."""
    return _ENTITY.sub(_plain_entity, source)


def _plain_entity(match: re.Match[str]) -> str:
    decoded = html.unescape(match.group(0))
    if len(decoded) == 1 and (decoded.isalnum() or decoded in "@._+-"):
        return decoded
    return match.group(0)


def decode_encoded_words(value: str) -> str:
    """RFC 2047 encoded words in `value` decoded (those that cannot be are left as written)."""
    if "=?" not in value:
        return value

    def decode(match: re.Match[str]) -> str:
        try:
            return writable(str(make_header(decode_header(match.group(0)))))
        except (LookupError, UnicodeError, ValueError, MessageError):  # bad base64, odd charset names
            return match.group(0)

    return _ENCODED_WORD.sub(decode, value)
