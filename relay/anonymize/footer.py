"""A line added at the end of a group copy's text and HTML body: who wrote, and the address that
reaches the sender alone (the private word inside a group).

Why a body line and not a header: a second address in Reply-To makes Gmail, Outlook and Apple Mail
answer both (the group and the sender), and headers such as List-Post are shown by few clients. The
sender's private alias is also the From address of the copy, so "reply to sender" in clients that
offer it (Thunderbird's "Reply to Sender Only", a click on the name) reaches the sender alone.
A private word's copy carries another line (relay/fanout.face: it was written to the recipient alone).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from email.message import EmailMessage

_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)


def footer_text(handle: str, group_name: str, private_address: str) -> str:
    return (f"{handle} wrote to {group_name}. Reply to answer the whole group; "
            f"to write to {handle} alone, write to {private_address}")


def add_footer(message: EmailMessage, text: str) -> None:
    """Append `text` to the message's plain and HTML body (a part that cannot be decoded is left alone:
    it only misses the hint)."""
    def plain(content: str) -> str:
        return content.rstrip("\n") + "\n\n-- \n" + text + "\n"

    def html_part(content: str) -> str:
        line = f'<p style="color:#666;font-size:small">{html.escape(text)}</p>'
        end = _BODY_END.search(content)
        return content[:end.start()] + line + content[end.start():] if end else content + line

    _rewrite(message, plain, html_part)


def replace_footer(message: EmailMessage, old: str, new: str) -> None:
    """Put `new` where add_footer wrote `old`, in the plain and HTML body (nothing changes where `old` is
    not found)."""
    _rewrite(message, lambda content: content.replace(old, new),
             lambda content: content.replace(html.escape(old), html.escape(new)))


def _rewrite(message: EmailMessage, plain: Callable[[str], str], html_part: Callable[[str], str]) -> None:
    for subtype, change in (("plain", plain), ("html", html_part)):
        part = message.get_body(preferencelist=(subtype,))
        if not isinstance(part, EmailMessage) or part.get_content_type() != f"text/{subtype}":
            continue
        try:
            content = part.get_content()
        except (LookupError, UnicodeError, ValueError, KeyError, AttributeError):
            continue
        if not isinstance(content, str):
            continue
        updated = change(content)
        if updated != content:
            part.set_content(updated, subtype=subtype, charset="utf-8", disposition=part.get_content_disposition())
