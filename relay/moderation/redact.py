"""Redaction: replace what a policy's redact rules matched with a clear marker, in every text part.

The delivered copy carries "[contact details removed by the program]" where the matched text stood,
in plain, HTML and calendar parts and in the subject; the archive keeps the original as received.
The same MIME walk as the identity scrub is used, with this cleaner in place of the scrubber: in HTML
the text runs and attribute values are redacted, and a link any reading of which holds a redacted
match (a tel: link, a SafeLinks-wrapped profile) is removed.
"""

from __future__ import annotations

import re
from email.message import Message

from relay.anonymize import cards
from relay.anonymize.headers import header_text
from relay.anonymize.htmltext import Edits, rewrite
from relay.anonymize.links import decoded_forms
from relay.anonymize.parts import scrub_tree
from relay.moderation.findings import Finding

MARKER = "[contact details removed by the program]"


class Redactor:
    """Replaces each matched span (as written, any spacing) wherever it occurs."""

    cleans_attachments = False

    def __init__(self, findings: list[Finding]) -> None:
        self.refused: list[tuple[str, str]] = []
        self.content_ids: dict[str, str] = {}
        matches = sorted({f.match for f in findings if f.match.strip()}, key=len, reverse=True)
        self._pattern = (re.compile("|".join(r"\s+".join(re.escape(w) for w in m.split()) for m in matches))
                         if matches else None)

    def text(self, value: str) -> str:
        return value if self._pattern is None else self._pattern.sub(MARKER, value)

    def edits(self, value: str) -> Edits:
        if self._pattern is None:
            return []
        return [(m.start(), m.end(), MARKER) for m in self._pattern.finditer(value)]

    def url(self, attribute: str, value: str) -> str | None:
        return None if any(self.found_in(form) for form in decoded_forms(value)) else value

    def html(self, value: str) -> str:
        return value if self._pattern is None else rewrite(value, self.edits, self.text, self.url)

    def calendar(self, value: str) -> str:
        return value if self._pattern is None else cards.clean_calendar(value, self.text)

    def vcard(self, value: str) -> str:
        return value if self._pattern is None else cards.clean_vcard(value, self.text)

    def found_in(self, value: str) -> bool:
        return self._pattern is not None and self._pattern.search(value) is not None


def redact(message: Message, findings: list[Finding]) -> None:
    """Redact `message` in place (it is the anonymised copy, never the archived original)."""
    redactor = Redactor(findings)
    scrub_tree(message, redactor)  # type: ignore[arg-type]
    subject = header_text(message, "Subject")
    if subject is not None:
        clean = redactor.text(subject)
        if clean != subject:
            del message["Subject"]
            message["Subject"] = clean
