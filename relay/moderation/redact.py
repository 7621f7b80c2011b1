"""Redaction: replace what a policy's redact rules matched with a clear marker, in every text part.

The delivered copy carries "[contact details removed by the program]" where the matched text stood,
in plain, HTML and calendar parts and in the subject; the archive keeps the original as received.
The same MIME walk as the identity scrub is used, with this cleaner in place of the scrubber.
"""

from __future__ import annotations

import re
from email.message import Message

from relay.anonymize.headers import header_text
from relay.anonymize.parts import scrub_tree
from relay.anonymize.scrub import decode_letter_entities
from relay.moderation.findings import Finding

MARKER = "[contact details removed by the program]"


class Redactor:
    """Replaces each matched span (as written, any spacing) wherever it occurs."""

    def __init__(self, findings: list[Finding]) -> None:
        matches = sorted({f.match for f in findings if f.match.strip()}, key=len, reverse=True)
        self._pattern = (re.compile("|".join(r"\s+".join(re.escape(w) for w in m.split()) for m in matches))
                         if matches else None)

    def text(self, value: str) -> str:
        return value if self._pattern is None else self._pattern.sub(MARKER, value)

    def html(self, value: str) -> str:
        return self.text(decode_letter_entities(value))

    def calendar(self, value: str) -> str:
        return self.text(re.sub(r"\r?\n[ \t]", "", value))

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
