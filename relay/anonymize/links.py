"""Links that carry an identity in some encoding: decoded for the check, rewritten or removed.

A link can hide an address or a name from a plain text search: percent-encoded ("jane%2Edoe%40..."),
base64 in a query value or path segment (tracking links), or inside another link that a redirector
wraps: Microsoft SafeLinks (`...safelinks.protection.outlook.com/?url=<link>&data=<...address...>`),
Google's `/url?q=`, and the `url=`, `u=`, `redirect=`, `target=`, `dest=` parameters of tracking
services. `decoded_forms` lists every reading of a link (bounded in depth and count); `clean_url` keeps
a link none of whose readings names anybody, gives a mailto: link the scrubbed address, unwraps a
redirector around a clean link, rewrites a link whose scrubbed reading is clean, and otherwise returns
None: the caller removes the link. Hand-written because no library decodes these wrappers; the URL
parsing itself is urllib.parse.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from urllib.parse import parse_qsl, unquote, urlsplit

MAX_DEPTH = 3
MAX_FORMS = 64
_WRAPPER_PARAMS = ("url", "u", "q", "redirect", "redirect_url", "redirect_uri", "target", "dest", "destination",
                   "link", "r", "to", "goto", "out", "l")
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]{12,}={0,2}")
# Links that open a call or a chat with a person in an app, or a place on a map, rather than a page: Skype's
# skype:NAME?call (Outlook and Skype signatures), Telegram's tg://resolve?domain=NAME, snapchat://add/NAME,
# discord://, msteams:...?users=NAME, whatsapp://send?phone=, geo:LAT,LONG ... The contact rule reports them
# (relay/moderation/rules/contact_info.py) and the identity scrub decodes them in plain text, as tel: links.
# Those of the first tuple are written "scheme:target"; those of the second only "scheme://target", since their
# names are also words ("line", "signal") or short ("tg", "fb") and "line:42" is no link.
APP_SCHEMES = ("tel", "sms", "mms", "callto", "facetime", "facetime-audio", "skype", "msteams", "sip", "sips", "xmpp",
               "geo")
APP_SCHEMES_WITH_SLASHES = ("tg", "telegram", "whatsapp", "viber", "sgnl", "signal", "snapchat", "discord",
                            "fb-messenger", "fb", "instagram", "twitter", "tiktok", "line", "kik", "threema", "weixin",
                            "wechat", "slack", "zoommtg", "zoomus")
URL_IN_TEXT = re.compile(
    r"(?i)\b(?:https?://|file:/|ftp://|www\.|mailto:"
    rf"|(?:{'|'.join(map(re.escape, APP_SCHEMES))}):|(?:{'|'.join(map(re.escape, APP_SCHEMES_WITH_SLASHES))})://)"
    r"[^\s<>\"'\]\[)]+"
)


def _unbase64(value: str) -> str | None:
    if not _BASE64.fullmatch(value):
        return None
    padded = value + "=" * (-len(value) % 4)
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            raw = decode(padded)
        except (binascii.Error, ValueError):
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if text.isprintable() and any(c.isalpha() for c in text):
            return text
    return None


def _unquoted(value: str) -> str:
    for _ in range(MAX_DEPTH):
        decoded = unquote(value)
        if decoded == value:
            break
        value = decoded
    return value


def decoded_forms(url: str) -> list[str]:
    """Every reading of a link: as written, percent-decoded, each query value and path segment decoded
    (percent, base64), and the same again for links wrapped inside it."""
    forms: list[str] = []
    pending = [(url, 0)]
    while pending and len(forms) < MAX_FORMS:
        value, depth = pending.pop()
        if value in forms:
            continue
        forms.append(value)
        plain = _unquoted(value)
        if plain != value:
            pending.append((plain, depth))
        if depth >= MAX_DEPTH:
            continue
        try:
            parts = urlsplit(value)
        except ValueError:
            continue
        pieces = [v for _, v in parse_qsl(parts.query, keep_blank_values=False)]
        pieces += [v for _, v in parse_qsl(parts.fragment)] + [s for s in parts.path.split("/") if s]
        for piece in pieces:
            text = _unquoted(piece)
            if text != value:
                pending.append((text, depth + 1))
            decoded = _unbase64(text)
            if decoded is not None:
                pending.append((decoded, depth + 1))
    return forms


def wrapped_target(url: str) -> str | None:
    """The link a redirector (SafeLinks, Google, tracking services) wraps, if any."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    for key, value in parse_qsl(parts.query):
        target = _unquoted(value)
        if key.lower() in _WRAPPER_PARAMS and re.match(r"(?i)(?:https?://|mailto:|www\.)", target):
            return target
    return None


def clean_url(url: str, found_in: Callable[[str], bool], scrub: Callable[[str], str]) -> str | None:
    """The link as it may be delivered (unchanged when nothing is found), or None: remove it."""
    if not any(found_in(form) for form in decoded_forms(url)):
        return url
    scheme = url.split(":", 1)[0].lower()
    if scheme in ("mailto", "callto"):
        cleaned = scheme + ":" + scrub(_unquoted(url.split(":", 1)[1]))
        return cleaned if not any(found_in(form) for form in decoded_forms(cleaned)) else None
    inner = wrapped_target(url)
    if inner is not None:
        return clean_url(inner, found_in, scrub)
    rewritten = scrub(_unquoted(url))
    if not any(found_in(form) for form in decoded_forms(rewritten)):
        return rewritten
    return None
