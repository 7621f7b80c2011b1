"""Auto-replies: recognise an out-of-office or other automatic answer from a participant.

Such a message is archived but never forwarded as written: an out-of-office text carries phone
numbers, employers and colleagues' addresses. The partner gets, at most once per pair per
NOTICE_EVERY, a short neutral notice that the other is away. Signals (RFC 3834 and common practice):
Auto-Submitted other than "no"; Precedence auto_reply, bulk, junk or list; X-Autoreply,
X-Autorespond and Microsoft's X-MS-Exchange-Inbox-Rules-Loop; a subject that starts the way
automatic replies start in common languages.

`no_auto_answer_signal`: a message that asks not to be answered automatically (Microsoft's
X-Auto-Response-Suppress: All, OOF or AutoReply) without being an automatic reply itself. It is ordinary
mail (partner mail is delivered as any), but the relay's own automatic answers (help@'s confirmation) are not
sent to it.
"""

from __future__ import annotations

import re
from datetime import timedelta
from email.message import Message

from relay.anonymize.headers import header_text

NOTICE_EVERY = timedelta(days=7)

_SUBJECT = re.compile(
    r"^\s*(automatic reply|auto[- ]?reply|autoreply|auto:|out of (the )?office\s*[:(\-]|out of office$|"
    r"abwesenheitsnotiz|automatische antwort|réponse automatique|absence du bureau|respuesta automática|"
    r"fuera de la oficina|risposta automatica|resposta automática|fora do escritório|automatisch antwoord)",
    re.IGNORECASE,
)
_FLAG_HEADERS = ("X-Autoreply", "X-Autorespond", "X-MS-Exchange-Inbox-Rules-Loop")


def auto_reply_signal(message: Message) -> str | None:
    """What marks `message` as automatic ("Auto-Submitted: auto-replied", ...), or None."""
    submitted = (header_text(message, "Auto-Submitted") or "").strip()
    if submitted and submitted.split(";")[0].strip().lower() != "no":
        return f"Auto-Submitted: {submitted}"
    precedence = (header_text(message, "Precedence") or "").strip().lower()
    if precedence in ("auto_reply", "bulk", "junk", "list"):
        return f"Precedence: {precedence}"
    for name in _FLAG_HEADERS:
        value = header_text(message, name)
        if value is not None:
            return f"{name}: {value}"
    subject = header_text(message, "Subject") or ""
    if _SUBJECT.match(subject):
        return f"Subject: {subject}"
    return None


_SUPPRESSED = ("all", "oof", "autoreply")


def no_auto_answer_signal(message: Message) -> str | None:
    """What asks that `message` get no automatic answer ("X-Auto-Response-Suppress: All", ...), or None."""
    value = (header_text(message, "X-Auto-Response-Suppress") or "").strip()
    words = {word.strip().lower() for word in value.split(",")}
    return f"X-Auto-Response-Suppress: {value}" if words & set(_SUPPRESSED) else None
