"""The contact_info rule: finds the details that would let two participants talk outside the program.

It owns the recognition of e-mail addresses (plain and obfuscated: "jane at gmail dot com", "jane(at)gmail.com",
"x [at] y [dot] zone", "j a n e @ g m a i l . c o m"; an obfuscated domain may end in any suffix of the public
suffix list, tldextract's bundled snapshot, never fetched, or a reserved name such as .example),
phone numbers in any country's format (phonenumbers' matcher, with the program's
region for local formats) and phone numbers written in words, URLs and bare domains, meeting links and meeting
IDs, messaging and social handles (with or without the platform named, and the links of messaging apps: skype:,
tg://, snapchat://, msteams:, ...), street addresses (in Latin, Cyrillic and Arabic script), and locations: GPS
coordinates (decimal or in degrees, minutes and seconds), Plus Codes, what3words addresses and geo: links. The
relay's own alias addresses, and addresses and links on the relay's own domains, are never findings.

Each detector proposes spans; where proposals overlap the longer one wins, then the more specific kind, so the
findings come back sorted by offset and never overlap.

Speed: every expression is compiled here, once. Keyword expressions are compiled without IGNORECASE and run on a
lower-cased copy of the text (same offsets), which scans several times faster; a detector whose keywords are
absent from the text's words does not run at all; and the phonenumbers matcher, the costly part, only sees a
small window around each run of seven or more digits that is neither a date nor introduced as a reference.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache, lru_cache

import phonenumbers
import tldextract

from relay.anonymize.links import APP_SCHEMES, APP_SCHEMES_WITH_SLASHES
from relay.moderation.findings import Finding
from relay.moderation.rules import contact_cues

RULE = "contact_info"

# Resolution order when two proposals cover spans of the same length: the more specific kind first.
KINDS = (  # every kind this rule reports, most specific first (breaks ties between overlaps)
    "email", "meeting_link", "handle", "location", "url", "domain", "phone", "phone_words", "street_address")

_REGION_ALIASES = {"UK": "GB"}
_WORD = re.compile(r"[^\W\d_]+")  # words in any script (the cues of other languages: rules/data/contact_cues.yaml)
_CUES_DATA = contact_cues.shipped()
_REACH = 128  # characters either side of an "@" or "#" within which an address or handle must lie


def _alternation(words: Iterable[str]) -> str:
    """A regular expression alternative of words, longest first, a space in a word matching an optional space."""
    ordered = sorted(words, key=lambda word: (-len(word), word))
    return "(?:" + "|".join(re.escape(word).replace(r"\ ", r"\s?") for word in ordered) + ")"


def _first_words(names: Iterable[str]) -> frozenset[str]:
    """The first word of each name as _WORD sees it ("ajoute-moi" -> "ajoute"), to look for in a text's words."""
    return frozenset((_WORD.findall(name) or [name])[0] for name in names)


# Top-level domains accepted in a bare domain (no scheme, no "www."). Left out on purpose: those that are also
# common file extensions or words (py, md, sh, pl, rs, ai, ps, pt, so, cc, zip, mov, to, is, no, do, id, my, ...);
# hosts under them are still found when written with a scheme or "www.".
_BARE_TLDS = frozenset(
    {
        "com", "net", "org", "edu", "gov", "mil", "int", "info", "biz", "name", "pro", "io", "co", "me", "ly", "gl",
        "gg", "tv", "fm", "app", "dev", "xyz", "online", "site", "website", "store", "shop", "tech", "blog", "link",
        "club", "space", "studio", "design", "art", "academy", "school", "ngo", "agency", "digital", "cloud", "team",
        "zone", "chat", "social", "media", "games", "news", "eu", "asia", "us", "ca", "uk", "ie", "de", "fr", "es",
        "it", "nl", "be", "ch", "at", "se", "dk", "fi", "nz", "au", "jp", "cn", "kr", "tw", "hk", "sg", "ph", "th",
        "vn", "in", "pk", "bd", "lk", "np", "ng", "ke", "za", "gh", "tz", "ug", "rw", "et", "eg", "ma", "tn", "br",
        "mx", "ar", "cl", "pe", "ve", "ec", "uy", "ru", "ua", "cz", "sk", "hu", "ro", "bg", "gr", "tr", "il", "ae",
        "sa", "qa",
    }
)  # fmt: skip

# Hosts whose links lead to a call or to a person's profile; any other link is a "url" (or a bare "domain").
_MEETING_HOSTS = (
    "zoom.us", "zoom.com", "meet.google.com", "teams.microsoft.com", "teams.live.com", "whereby.com", "meet.jit.si",
    "8x8.vc", "webex.com", "gotomeet.me", "gotomeeting.com",
)  # fmt: skip
_PROFILE_HOSTS = (
    "t.me", "telegram.me", "wa.me", "chat.whatsapp.com", "signal.me", "instagram.com", "instagr.am", "facebook.com",
    "fb.com", "fb.me", "m.me", "linkedin.com", "twitter.com", "x.com", "tiktok.com", "snapchat.com", "discord.gg",
    "discord.com", "kik.me", "join.skype.com", "youtube.com", "twitch.tv", "github.com", "reddit.com", "threads.net",
)  # fmt: skip
_KNOWN_HOSTS = _MEETING_HOSTS + _PROFILE_HOSTS

# ---------------------------------------------------------------------------------------------------- e-mail
# Webmail names, leaving out the everyday words among them ("live", "web", "mail"): those would make "I live in"
# wake the obfuscated-address scan, and "jane at live.com" is still found, as a domain.
_WEBMAIL = (
    "gmail", "googlemail", "yahoo", "hotmail", "outlook", "msn", "icloud", "aol", "proton", "protonmail", "gmx",
    "yandex", "zoho", "qq", "uol",
)  # fmt: skip
_WEBMAIL_NAME = _alternation(_WEBMAIL)
_EMAIL = re.compile(rf"(?<![\w.+-])[\w.+-]++@(?:(?:[a-z0-9-]++\.)+[a-z]{{2,24}}|{_WEBMAIL_NAME})(?![\w@-]|\.\w)")
# "(at)", "[at]", " arobase " cannot be anything else; a spoken " at " needs a spelt-out dot or a webmail domain.
_AT_STRONG = r"\s*[(\[{<]\s*(?:at|arobase|@)\s*[)\]}>]\s*|\s+arobase\s+"
_AT_SPOKEN = r"\s+(?:at|@)\s+"
_DOT_OBFUSCATED = r"(?:\s*[(\[{<]\s*(?:dot|punkt|point|\.)\s*[)\]}>]\s*|\s+(?:dot|punkt)\s+)"
_ANY_DOT = rf"(?:{_DOT_OBFUSCATED}|\.)"
_LOCAL_JOIN = rf"(?:{_ANY_DOT}|\s+underscore\s+|\s+(?:dash|hyphen)\s+|[+-])"
# The pieces of a local part and the labels of a domain are bounded (_MAX_PIECES, _MAX_LABELS): unbounded, every
# word of "jane dot jane dot ..." started a scan to the chain's end, quadratic in its length. A longer spelt-out
# address is still found, from its last _MAX_PIECES pieces.
_MAX_PIECES = 32
_MAX_LABELS = 8
_OBFUSCATED_EMAIL = re.compile(
    rf"(?<![\w.+-])\w++(?:{_LOCAL_JOIN}\w++){{0,{_MAX_PIECES}}}+"
    rf"(?:(?P<strong>{_AT_STRONG})|{_AT_SPOKEN})"
    rf"(?P<domain>[a-z0-9-]++(?:{_ANY_DOT}[a-z0-9-]++){{0,{_MAX_LABELS}}}{_ANY_DOT}(?:xn--[a-z0-9-]{{2,59}}|[a-z]{{2,24}})"
    rf"|{_WEBMAIL_NAME})"
    rf"(?![\w-]|\.\w)"
)
_OBFUSCATED_AT = re.compile(rf"{_AT_STRONG}|{_AT_SPOKEN}")
_OBFUSCATED_DOT = re.compile(_DOT_OBFUSCATED)
_WEBMAIL_DOMAIN = re.compile(rf"{_WEBMAIL_NAME}\b")
_BRACKETED_WORD = re.compile(r"[(\[{<]\s*(?:at|arobase|@|dot|punkt|point|\.)\s*[)\]}>]")
_OBFUSCATION_WORDS = frozenset({"dot", "punkt", "arobase", *_WEBMAIL})
_SPACED_EMAIL = re.compile(r"(?<!\S)(?:[\w.] ){2,}\w ?@ ?\w(?: [\w.])+(?!\S)")

# -------------------------------------------------------------------------------------------- links, domains
# A link with a scheme (its host a name, an IPv4 or a bracketed IPv6 address), a protocol-relative one
# ("//pix.tracker.example/o.gif", which an <img> loads over the page's scheme), one that starts "www.", or a bare
# host under a top-level domain of _BARE_TLDS.
_URL = re.compile(
    r"""
    (?<![\w@.+/-])
    (?:
        (?P<scheme>(?i:https?|ftp)://)(?:[^\s/@<>"']++@)?(?P<shost>[\w-]++(?:\.[\w-]++)*+|\[[0-9A-Fa-f:.]{2,45}\])
        (?::\d+)?
      | (?<!:)//(?P<rhost>[\w-]++(?:\.[\w-]+)*\.[A-Za-z]{2,24}(?![\w-])|\[[0-9A-Fa-f:.]{2,45}\]|\d{1,3}(?:\.\d{1,3}){3})
        (?::\d+)?
      | (?i:www)\d{0,3}\.(?P<whost>[\w-]++(?:\.[\w-]++)++)
      | (?P<bhost>(?:[A-Za-z0-9][A-Za-z0-9-]*+\.)++(?P<tld>[A-Za-z]{2,24}))(?![\w'’-]|\.\w)
    )
    (?P<path>[/?#][^\s<>"']*+)?
    """,
    re.VERBOSE,
)
_TRAILING_PUNCTUATION = ".,;:!?)]}'\"’”"
_MEETING_WORDS = frozenset({"zoom", "meeting", "webex", "teams", "conference"})
_MEETING_ID = re.compile(
    rf"\b{_alternation(_MEETING_WORDS)}\b(?:\s+(?:meeting|call))?(?:\s+(?:id|code|number|no|is)\b\.?)*"
    r"\s*[:#]?\s*(?P<id>\d{3}[ -]?\d{3,4}[ -]?\d{3,5})(?!\d)"
)

# Links of messaging apps and maps (relay/anonymize/links.py lists the schemes): the scheme, then its target.
_APP_LINK = re.compile(
    rf"(?<![\w.+/-])(?P<scheme>{_alternation(APP_SCHEMES)}:|{_alternation(APP_SCHEMES_WITH_SLASHES)}://)"
    r"(?P<target>[^\s<>\"']*[^\W_][^\s<>\"']*)"
)
_APP_SCHEME_WORDS = _first_words((*APP_SCHEMES, *APP_SCHEMES_WITH_SLASHES))  # looked for in a text's words
_PHONE_SCHEMES = frozenset({"tel", "sms", "mms"})
_PHONE_OR_NAME_SCHEMES = frozenset({"callto", "facetime", "facetime-audio"})  # a number or a Skype/Apple name
_DIALLED = re.compile(r"\+?[\d ().-]{7,}(?![^?;&])")
_MEETING_SCHEMES = frozenset({"zoommtg", "zoomus"})
# What a scheme's target must hold to be a link rather than a word after a colon ("take a sip:it's hot"): a
# geo: link starts with its latitude, a tel:, sms: or mms: link has digits, sip: and xmpp: an address.
_TARGET_SHAPES = {"geo": re.compile(r"[-+]?\d"), "tel": re.compile(r".*\d"), "sms": re.compile(r".*\d"),
                  "mms": re.compile(r".*\d"), "sip": re.compile(r".*@"), "sips": re.compile(r".*@"),
                  "xmpp": re.compile(r".*@")}

# ------------------------------------------------------------------------------------------------- locations
# GPS coordinates as map apps copy them: "55.7963, 49.1088" (both parts with four or more decimals, about ten
# metres; three, a street, when "gps", "location" or "pin" comes just before), within latitude and longitude
# ranges, not both under 1 (a probability or a unit vector, "0.7071, 0.7071"; the sea off West Africa) and not
# inside a list of numbers ("the means were 12.3456, 23.4567, 34.5678" is no place). "Coordinates" is no cue:
# homework gives the coordinates of points, "B (4.125, 3.875)".
_DECIMAL_PAIR = re.compile(
    r"(?<![\w.,°-])(?P<lat>[-−+]?\d{1,2}\.(?P<lat_decimals>\d{3,}))\s?,\s?"
    r"(?P<lon>[-−+]?\d{1,3}\.(?P<lon_decimals>\d{3,}))(?![\w.°′'])"
)
_DECIMALS = re.compile(r"\d\.\d{3}")
_THREE_DIGITS = re.compile(r"\d{3}")
_DOTS_LOOKED_AT = 200
_COORDINATES_REACH = 64  # characters either side of a decimal point or a degree sign
_LIST_BEFORE = re.compile(r"\d\s?[,;]\s?$")
_LIST_AFTER = re.compile(r"\s?[,;]\s?[-−+]?\d")
_LOCATION_CUE = re.compile(
    r"\b(?:gps|location|pin|ubicaci[oó]n|localisation|геолокаци[яюи]|локаци[яюи]|موقعي|الموقع)\b"
)
_CUE_WINDOW = 40
# Degrees with a hemisphere: 55°47'46.7"N 49°06'31.7"E, N 55° 47.776' E 49° 6.530', 55.7963° N, 49.1088° E,
# 55°47′46″ с. ш. 49°06′32″ в. д. A pair only, and precise enough to name a street (seconds, minutes with two
# decimals, degrees with three): "Lyon lies at 45°45'N 4°50'E" in geography homework is no finding.
_DEGREES = (r"\d{1,3}(?:[.,]\d+)?\s?°(?:\s?\d{1,2}(?:[.,]\d+)?\s?['′’](?:\s?\d{1,2}(?:[.,]\d+)?\s?(?:[\"″”]|''|′′))?)?"
            r"|\d{1,3}\.\d{3,}")
_NORTH_SOUTH = r"(?:[NS]|[сю]\.\s?ш\.?)"
_EAST_WEST = r"(?:[EWO]|[вз]\.\s?д\.?)"
_HEMISPHERE_PAIR = re.compile(
    rf"(?<![\w°'′\"″.])(?:{_NORTH_SOUTH}\s?(?:{_DEGREES})|(?:{_DEGREES})\s?{_NORTH_SOUTH})(?![^\W\d_])"
    rf"\s?[,;/]?\s?(?:{_EAST_WEST}\s?(?:{_DEGREES})|(?:{_DEGREES})\s?{_EAST_WEST})(?![^\W\d_])"
)
_PRECISE_DEGREES = re.compile(r"[\"″”]|''|′′|\d[.,]\d{2,}\s?['′’]|\d\.\d{3,}")
# Open Location Code ("Plus Code"): 8 characters, "+", 2 or 3 (or a short code of 4 or 6 before the "+", its town
# after it), in the code's alphabet of digits and consonants; upper case, as map apps write it, with a digit and a
# letter ("2222+22" is a sum).
_PLUS_CODE = re.compile(
    r"(?<![\w+])(?P<code>[2-9CFGHJMPQRVWX]{8}|[2-9CFGHJMPQRVWX]{6}|[2-9CFGHJMPQRVWX]{4})\+[2-9CFGHJMPQRVWX]{2,3}"
    r"(?![\w+])"
)
_PLUS_CODE_REACH = 12
_FULL_CODE_START = re.compile(r"[2-9C][2-9CFGHJMPQRV]")
# what3words: ///filled.count.soap (in any language's words), or three dotted words after "what3words"/"w3w".
_THREE_WORDS = re.compile(r"(?<![\w/])///[^\W\d_]+\.[^\W\d_]+\.[^\W\d_]+(?![\w.])")
_THREE_WORDS_NAMED = re.compile(
    r"(?:what\s?3\s?words|w3w)\b[^\n]{0,30}?(?<![\w.])(?P<words>[^\W\d_]+\.[^\W\d_]+\.[^\W\d_]+)(?![\w.])"
)

# ---------------------------------------------------------------------------------------------------- phones
# POSSIBLE, and the matches sorted below by cue, shape and validity. Measured: on the labelled set the four
# leniencies give the same message-level precision and recall, at the same speed (runs that a cue introduces cover
# most of the difference); on the phone cases of the tests, only POSSIBLE also finds numbers outside the valid
# ranges that are written with "+" or in North American shape ("+1 555 010 4477"), which VALID, STRICT_GROUPING
# and EXACT_GROUPING never return.
_PHONE_LENIENCY = phonenumbers.Leniency.POSSIBLE
_DIGIT_RUN = re.compile(r"(?<![A-Za-z0-9])\+?\(?\d(?:[ \t\u00a0().\-/]{0,3}\d){6,}")
_MATCHER_CONTEXT = 20  # characters on each side of a digit run that the matcher sees
# Characters that no number of phonenumbers' matcher holds, nor its extension (relay: _matcher_window): letters
# but those of the extensions' labels ("ext", "x", "int", "anexo", "доб", ...), line breaks and some symbols
# (phonenumbers.phonenumbermatcher._PATTERN).
_STOP = re.compile(r"(?i:[^\W\d_xXｘＸーetnsioóaдоб\u0301ｅｔｎｉ])|[\n\r!?°\"'<>@&*%$|]")
_NANP_SHAPE = re.compile(r"(?:\+?1[ .-]?)?(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}")
# Dates (03/11/2026, 2026-11-03), year ranges (2019-2023) and decimals (3.14159265), which some numbering plans
# would accept as phone numbers.
_NOT_PHONE_SHAPE = re.compile(
    r"\d{1,2}([./-])\d{1,2}\1(?:\d{4}|\d{2})|\d{4}([./-])\d{1,2}\2\d{1,2}|(?:19|20)\d\d\s?[-–/]\s?(?:19|20)\d\d"
    r"|\d{1,3}\.\d{4,}"
)
# The cue nearest before a number decides what it is: "order no. 48213977" is a reference, "call me on ..." a phone.
_REFERENCES = (
    "order", "invoice", "inv", "ref", "reference", "ticket", "tracking", "acct", "isbn", "issn", "doi", "receipt",
    "confirmation", "booking", "reservation", "transaction", "serial", "roll", "learner", "customer", "membership",
    "parcel", "shipment", "sku", "iban", "passport", "licence", "license", "registration", "flight", "id", "issue",
    "bestellung", "rechnung", "kundennummer", "commande", "facture", "pedido", "factura", "ordine", "fattura",
    *_CUES_DATA.words("reference"),
)  # fmt: skip
# Nouns that only make a reference with "number", "no.", "code" or "id" after them: "case number", "exam no.".
_REFERENCE_NOUNS = (
    "case", "account", "student", "member", "candidate", "policy", "claim", "item", "model", "part", "application",
    "exam", "seat", "room", "page", "bug", "task", "step", "employee", "staff", "badge", "permit", "tax", "security",
)  # fmt: skip
_REFERENCE_SUFFIXES = ("number", "num", "no", "nr", "n°", "code", "id",
                       *_CUES_DATA.words("reference_suffixes"))
_CUES = re.compile(
    rf"(?P<reference>\b{_alternation(_REFERENCES)}\b(?:\W{{0,3}}{_alternation(_REFERENCE_SUFFIXES)}\b)?"
    rf"|\b{_alternation(_REFERENCE_NOUNS)}\W{{0,3}}{_alternation(_REFERENCE_SUFFIXES)}\b|#)"
    r"|(?P<phone>\b(?:call|phone|ph|tel|telephone|mobile|mob|cell|cellphone|text|txt|sms|ring|whats\s?app|signal|viber"
    r"|telegram|number|num|nummer|handy|portable|tél|téléphone|celular|cel|móvil|movil|número|numero|telefono|teléfono"
    r"|telefone|zap|line)\b"
    rf"|\b{_alternation(_CUES_DATA.words('phone'))}\b|携帯|電話)"
)
_CUE_BEFORE = 60
_CUE_WORD = 40  # how far back of _CUE_BEFORE the word that holds it may start
_CUE_AFTER = 30

_DIGIT_WORDS = frozenset(
    {"zero", "oh", "nought", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
     *_CUES_DATA.digits}
)
_SPOKEN_TOKEN = rf"(?:(?:double|triple)\s+)?{_alternation(_DIGIT_WORDS)}\b|\d{{1,4}}(?!\d)"
_SPOKEN_RUN = re.compile(rf"(?<![\w-])(?:{_SPOKEN_TOKEN})(?:[\s,.\-/]{{1,3}}(?:{_SPOKEN_TOKEN}))+")
_SPOKEN_PART = re.compile(rf"(?P<times>double|triple)?\s*{_alternation(_DIGIT_WORDS)}\b|(?P<digits>\d+)")
_SPOKEN_MINIMUM_WORDS = 2
_PHONE_MINIMUM_DIGITS = 7

# --------------------------------------------------------------------------------------------------- handles
_PLATFORMS = (
    "whatsapp", "whats app", "telegram", "signal", "insta", "instagram", "ig", "snap", "snapchat", "tiktok", "tik tok",
    "discord", "wechat", "weixin", "kik", "skype", "facebook", "fb", "messenger", "linkedin", "linked in", "twitter",
    "threads", "reddit", "github", "gitlab", "twitch", "youtube", "steam", "xbox", "psn", "playstation", "roblox",
    "fortnite", "minecraft", "viber", "slack", "bereal", "mastodon", "bluesky", "pinterest", "tumblr", "vsco",
    *_CUES_DATA.words("platforms"),
)  # fmt: skip
_PLATFORM_WORDS = frozenset(name for name in _PLATFORMS if " " not in name)  # skipped between a cue and its handle
_HANDLE_CUES = ("username", "user name", "handle", "gamertag", "gamer tag", "screen name",
                *_CUES_DATA.words("handle_cues"))
_REQUEST_VERBS = frozenset({"add", "follow", "find", "dm", "message"})  # "add me", "dm me", ...
_REQUESTS = _CUES_DATA.words("requests")  # whole phrases in other languages: "agrégame", "добавь меня"
_ANCHOR_WORDS = _first_words(_PLATFORMS) | _first_words(_HANDLE_CUES) | _REQUEST_VERBS | _first_words(_REQUESTS)
_ANCHOR = re.compile(
    rf"\b(?:(?P<platform>{_alternation(_PLATFORMS)})|(?P<cue>{_alternation(_HANDLE_CUES)})"
    rf"|(?P<request>{_alternation(_REQUEST_VERBS)}\s+me|{_alternation(_REQUESTS)}))\b"
)
_OWNER_BEFORE = re.compile(
    rf"\b(?:my|mein|meine|mon|ma|mi|meu|minha|mio|{_alternation(_CUES_DATA.words('owners'))})\s+$")
_OWNER_WINDOW = 12
_HANDLE_BEFORE_PLATFORM = re.compile(
    r"\b(?:i'm|im|i am|as|add|follow|find)\s+(?P<handle>@?[a-z_][\w.]{1,30}\w)\s+on\s+$"
)
_HANDLE_BEFORE_WINDOW = 50
_AT_HANDLE = re.compile(r"(?<![\w@.+/-])@(?P<name>[A-Za-z_][\w.]{0,29}\w)")
_NOT_DISCORD_NAMES = frozenset({*_REFERENCES, *_REFERENCE_NOUNS, *_REFERENCE_SUFFIXES, "pr"})  # "issue#1234"
_DISCORD_TAG = re.compile(r"(?<![\w#])(?P<name>[A-Za-z][\w.]{1,31})#\d{4}(?!\w)")
_TOKEN = re.compile(r"\S+")
_HANDLE_TOKEN = re.compile(r"@?[A-Za-z_][\w.:-]{2,40}")
_PLAIN_HANDLE = re.compile(r"[A-Za-z][\w.]{2,29}")
_NAME_WORD = re.compile(r"[A-Z][a-z]+")
_LATIN_LETTER = re.compile(r"[a-zà-ÿ]")
_ABBREVIATION = re.compile(r"(?:[A-Za-z]\.)+[A-Za-z]?")
_OPENING = "(\"'“‘"
_CLOSING = ".,;:!?)\"'”’"
_INTRODUCERS = frozenset({":", "="})
_DASHES = frozenset({"-", "–", "—"})
_SCAN_AFTER_ANCHOR = 80
_MAX_CONNECTORS = 6
_CONNECTORS = frozenset(
    {
        "is", "it's", "its", "es", "ist", "est", "é", "è", "c'est", "my", "me", "on", "at", "as", "in", "under",
        "called", "i'm", "im", "add", "find", "follow", "dm", "message", "search", "for", "id", "username", "user",
        "handle", "name", "tag", "gamertag", "account", "acc", "profile", "page", "channel", "there", "here", "too",
        "also", "just", "now", "mein", "mon", "mi", "meu", "il", "mio", *_CUES_DATA.words("connectors"),
    }
)  # fmt: skip
_IS = frozenset({"is", "it's", "its", "es", "ist", "est", "é", "è", "c'est", *_CUES_DATA.words("is")})
_NAMING = frozenset({"id", "username", "user", "handle", "name", "tag", "gamertag"})
_BEFORE_NAME = frozenset({"as", "i'm", "im", "under", "called"})
_AS = frozenset({"as", "under", "como", "comme", "как", "под", "باسم"})  # "follow me on insta as ..."
# Plain words that follow "my instagram is" in messages that give no handle.
_NOT_HANDLES = frozenset(
    {
        "a", "an", "the", "not", "private", "public", "down", "broken", "gone", "deleted", "blocked", "banned",
        "hacked", "inactive", "dead", "empty", "new", "old", "full", "so", "too", "very", "really", "just", "still",
        "only", "mostly", "mainly", "basically", "literally", "probably", "pretty", "kind", "kinda", "super", "quite",
        "all", "about", "way", "fine", "ok", "okay", "same", "different", "mine", "better", "great", "good", "bad",
        "cool", "fun", "funny", "weird", "messy", "busy", "quiet", "boring", "set", "linked", "locked", "closed",
        "open", "where", "what", "how", "like", "for", "off", "out", "there", "here", "also", "always", "never", "now",
        "currently",
    }
)  # fmt: skip
_NOT_AT_HANDLES = frozenset({"the", "home", "work", "school", "noon", "night", "lunch", "everyone", "all", "here"})

# ------------------------------------------------------------------------------------------ street addresses
_STREET_SUFFIXES = (
    r"(?:Street|Avenue|Road|Boulevard|Lane|Drive|Court|Place|Way|Terrace|Close|Crescent|Parkway|Highway|Square"
    r"|Circle|Trail|Row|Mews)\b|(?:St|Ave|Rd|Blvd|Ln|Dr|Ct|Pl|Pkwy|Hwy|Sq|Cir)\b\.?"
)
_ROMANCE_STREET_TYPES = (
    r"Calle|C/|Avenida|Avda\.?|Av\.|Paseo|Plaza|Carrer|Via|Viale|Piazza|Corso|Largo|Rua|Travessa|Alameda"
)
_UK_POSTCODE_AREAS = (
    r"AB|AL|B|BA|BB|BD|BH|BL|BN|BR|BS|BT|CA|CB|CF|CH|CM|CO|CR|CT|CV|CW|DA|DD|DE|DG|DH|DL|DN|DT|DY|E|EC|EH|EN|EX|FK|FY"
    r"|G|GL|GU|GY|HA|HD|HG|HP|HR|HS|HU|HX|IG|IM|IP|IV|JE|KA|KT|KW|KY|L|LA|LD|LE|LL|LN|LS|LU|M|ME|MK|ML|N|NE|NG|NN|NP"
    r"|NR|NW|OL|OX|PA|PE|PH|PL|PO|PR|RG|RH|RM|S|SA|SE|SG|SK|SL|SM|SN|SO|SP|SR|SS|ST|SW|SY|TA|TD|TF|TN|TQ|TR|TS|TW|UB"
    r"|W|WA|WC|WD|WF|WN|WR|WS|WV|YO|ZE"
)
_ROMANCE_PARTICLES = r"(?:de|del|la|las|los|di|dei|della|delle|do|da|dos|das)"
_US_STATES = (
    r"AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY|NC|ND|OH|OK"
    r"|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY"
)
# A street's name in Cyrillic (up to three words, "8 Марта" too) and a house number ("7", "10/2", "7а", "д. 7,
# кв. 15", "корп. 2"): the house number is the finding's end.
_CYRILLIC_STREET_NAME = r"(?:\d{1,2}-?(?:го|я)?\s)?[А-ЯЁа-яёІіЇїЄє][\w'’-]*(?:\s[А-ЯЁа-яёІіЇїЄє][\w'’-]*){0,2}"
_CYRILLIC_HOUSE = (r"\d{1,4}(?:\s?[а-яА-Я](?!\w))?(?:/\d{1,4})?"
                   r"(?:,?\s?(?i:кв|квартира|корп|к|стр|под)\.?\s?\d{1,4}(?!\d))*")
# Quantifiers over the words of a street's or a town's name and over the letters of one word are bounded: an
# unbounded one made a pattern that fails scan from each of its starts to the end of the run it can cross (every
# capital of "Anna Bell Chris Dee ..." to the last capitalised word, every "ul." of "ul.ul.ul..." to the next
# space), which is quadratic in the run's length (bench/rules_shapes.py). A name of more words, or a word of more
# letters, is no street's.
_NAME_WORDS = 6
_WORD_LETTERS = 40
# Each pattern with the lower-case strings one of which the text must hold for it to match (none: always run), or
# with a frozenset of the words it starts with: it is then tried only where those words are (as _at_words does),
# not at every character; such a pattern starts with (?<!\w) ("ш." is no street inside "ваш.").
# Patterns start with a digit, a capital or a literal (not with \b, a lookbehind or a character class of both
# cases), so that the scan can skip ahead; one that starts inside a word ("McTulsa OK 74159") still finds an address.
_STREET_ADDRESSES: tuple[tuple[re.Pattern[str], tuple[str, ...] | frozenset[str]], ...] = tuple(
    (re.compile(pattern), hints)
    for pattern, hints in (
        # 221B Baker Street, 1600 Pennsylvania Avenue NW, 55 W 42nd St (a first digit with no word before it)
        (
            rf"\d(?<![\w/.-]\d)\d{{0,4}}[A-Za-z]?\s+(?:(?:[A-Z][a-z'’.-]+|[NSEW]\.?|\d+(?:st|nd|rd|th))\s+){{1,4}}"
            rf"(?:{_STREET_SUFFIXES})(?:\s+(?:NW|NE|SW|SE)\b)?",
            (),
        ),
        # "i live at 12 elm street": an address typed in lower case, after words that say it is one (without
        # them, "a 2 way street" would be one too); only the address is the finding
        (
            r"(?i:(?:live[sd]?|living|stay(?:ing|s)?)\s+(?:at|on)|address\s+is|address:|house\s+is\s+(?:at|on)"
            r"|come\s+(?:over\s+)?to)\s+(?P<address>\d{1,5}[a-z]?\s+(?:[a-z][a-z'’.-]+\s+){1,3}"
            r"(?:street|avenue|road|boulevard|lane|drive|court|place|way|terrace|close|crescent|st|ave|rd|blvd|ln|dr)"
            r")\b",
            ("live", "living", "stay", "address", "house", "come"),
        ),
        # 12 rue de la Paix, 8 avenue Victor Hugo, 45 Calle Mayor
        (
            r"\d(?<![\w/.-]\d)\d{0,3}(?:\s?(?:bis|ter))?,?\s+(?i:rue|avenue|boulevard|bd|place|chemin|allée|impasse"
            r"|quai|calle|avenida)\s+(?:(?:de|du|des|la|le|les|del)\s+|l'|d')*[A-ZÀ-Ý][\w'’-]+(?:\s+[A-ZÀ-Ý][\w'’-]+)*",
            ("rue", "avenue", "boulevard", "bd", "place", "chemin", "allée", "impasse", "quai", "calle", "avenida"),
        ),
        # the same typed in lower case, "j'habite au 12 rue des lilas": only after a number and a type of street that
        # is no English word ("2 place settings", "3 avenue trees" are not addresses)
        (
            r"\d(?<![\w/.-]\d)\d{0,3}(?:\s?(?:bis|ter))?,?\s+(?i:rue|chemin|allée|impasse|quai|calle|carrer|rua)\s+"
            r"(?:(?i:de|du|des|la|le|les|del|da|do|dos|das)\s+|l'|d'|l’|d’)*[^\W\d_][\w'’-]+",
            ("rue", "chemin", "allée", "impasse", "quai", "calle", "carrer", "rua"),
        ),
        # Calle de Alcalá 120, Via Garibaldi 27, Rua Augusta 1508, Av. Insurgentes Sur 1602
        (
            rf"(?:{_ROMANCE_STREET_TYPES})\s+(?:{_ROMANCE_PARTICLES}\s+){{0,3}}[A-ZÀ-Ý][\w'’.-]*"
            rf"(?:\s+(?:[A-ZÀ-Ý][\w'’.-]*|{_ROMANCE_PARTICLES})){{0,{_NAME_WORDS}}}?,?\s+(?:n[º°o.]\s*)?\d{{1,5}}[A-Za-z]?\b",
            (),
        ),
        # Hauptstraße 5, Berliner Straße 12a, Königsallee 27, Kaiserring 3; Dutch: Kerkstraat 12, Herengracht 502.
        # "Ring" only after three letters and a consonant: "Spring 2026", "During 5 weeks" and "Mentoring 5
        # students" are no streets.
        (
            rf"[A-ZÄÖÜ](?:[\wäöüß-]{{0,{_WORD_LETTERS}}}(?:\s|-)?(?i:straße|strasse|str\.|weg|gasse|platz|allee|damm"
            rf"|ufer|straat|laan|plein|gracht|kade|dijk|singel|steeg)"
            rf"|[\wäöüß-]{{2,{_WORD_LETTERS}}}(?<![aeiouyäöü])(?:\s|-)?(?i:ring))\s+\d{{1,4}}[a-z]?\b",
            ("straße", "strasse", "str.", "weg", "gasse", "platz", "allee", "ring", "damm", "ufer", "straat", "laan",
             "plein", "gracht", "kade", "dijk", "singel", "steeg"),
        ),
        # the same in lower case, where the word can only be a street: "ich wohne in der hauptstraße 5", "kerkstraat 12"
        (
            rf"(?<![a-zäöü])[a-zäöü][a-zäöüß-]{{0,{_WORD_LETTERS}}}(?:\s|-)?(?:straße|strasse|straat)\s+\d{{1,4}}[a-z]?\b",
            ("straße", "strasse", "straat"),
        ),
        # a type of street typed in lower case before its name, after words that say it is one's address:
        # "vivo en la calle mayor 5", "mi dirección es avenida libertad 12", "ich wohne am lindenweg 3"
        (
            r"(?<!\w)(?i:viv[oe]|vivimos|moro|abito|habite|wohne|wohnen|direcci[oó]n|domicilio|adresse|indirizzo|endere[cç]o"
            r"|morada)\b[^.\n\d]{0,20}?(?P<address>(?i:calle|c/|avenida|avda\.?|av\.|paseo|plaza|carrer|rua|travessa"
            r"|alameda|via|viale|piazza|corso|largo|rue|avenue|boulevard|chemin|allée|impasse|quai)\s+"
            r"(?:[^\W\d_][\w'’.-]*\s+){0,3}?[^\W\d_][\w'’.-]*,?\s+(?:n[º°o.]\s*)?\d{1,5}[a-z]?\b"
            r"|[^\W\d_]+(?i:weg|gasse|platz|allee|damm|ufer|ring|laan|plein|gracht|kade)\s+\d{1,4}[a-z]?\b)",
            frozenset({"vivo", "vive", "vivimos", "moro", "abito", "habite", "wohne", "wohnen", "dirección",
                       "direccion", "domicilio", "adresse", "indirizzo", "endereço", "endereco", "morada"}),
        ),
        # ул. Баумана, д. 7, кв. 15; пр. Мира 12; вул. Хрещатик, 22 (a street abbreviated with its dot: any case)
        (
            rf"(?<!\w)(?i:ул|вул|пр|просп|пер|пров|наб|пл|бул|ш|мкр)\.\s?{_CYRILLIC_STREET_NAME}"
            rf",?\s?(?:(?i:д|дом|буд)\.?\s?)?{_CYRILLIC_HOUSE}",
            frozenset({"ул", "вул", "пр", "просп", "пер", "пров", "наб", "пл", "бул", "ш", "мкр"}),
        ),
        # улица Ленина, 5; на проспекте Мира дом 12 (the street's name in capitals, or "дом" before the number)
        (
            rf"(?<!\w)(?i:улиц[аеуыи]|вулиц[яіею]|проспект[аеу]?|переул(?:ок|ке|ка)|бульвар[аеу]?|шоссе|набережн(?:ая|ой|ую)"
            rf"|площад[ьи]|проезд[аеу]?|микрорайон[аеу]?)\s+(?:[А-ЯЁІЇЄ][\w'’-]*(?:\s+[А-ЯЁІЇЄ][\w'’-]*){{0,2}}"
            rf",?\s?(?:(?i:д|дом|буд)\.?\s?)?|{_CYRILLIC_STREET_NAME},?\s?(?i:д|дом|буд)\.?\s?){_CYRILLIC_HOUSE}",
            frozenset({
                "улица", "улице", "улицу", "улицы", "улици", "вулиця", "вулиці", "вулицю", "вулице", "проспект",
                "проспекта", "проспекте", "проспекту", "переулок", "переулке", "переулка", "бульвар", "бульвара",
                "бульваре", "бульвару", "шоссе", "набережная", "набережной", "набережную", "площадь", "площади",
                "проезд", "проезда", "проезде", "проезду", "микрорайон", "микрорайона", "микрорайоне", "микрорайону",
            }),
        ),
        # شارع الملك فهد 24، ; طريق الملك عبدالله 12 ; 15 شارع التحرير (Egypt writes the number first)
        (
            r"(?:شارع|طريق|ش\.)\s+(?:[\u0621-\u064A\u0660-\u0669]+\s+){1,4}?(?:رقم\s+)?[\d٠-٩]{1,5}(?![\d٠-٩])"
            r"(?=\s*(?:[،,.؛\n]|$|(?:حي|الحي|مبنى|عمارة|شقة|الرياض|جدة|القاهرة|عمان|دبي)\b))"
            r"|[\d٠-٩](?<![\w/.-][\d٠-٩])[\d٠-٩]{0,4}\s+(?:شارع|ش\.)\s+[\u0621-\u064A]+(?:\s+[\u0621-\u064A]+)?",
            ("شارع", "طريق", "ش."),
        ),
        # ul. Marszałkowska 10/12, al. Jerozolimskie 44, pl. Zbawiciela 3 (Polish; "et al. 2019" is no street)
        (
            rf"(?<!\w)(?:(?i:ul)\.\s?(?:[^\W\d_][\w'.-]{{0,{_WORD_LETTERS}}}\s){{1,3}}?|(?<!et )(?:al|pl|os)\.\s?"
            rf"(?:[A-ZÀ-ÝŁŚŻŹĆŃ][\w'.-]{{0,{_WORD_LETTERS}}}\s){{1,3}}?)(?:\d{{1,4}}[a-zA-Z]?(?:/\d{{1,4}}[a-zA-Z]?)?)\b",
            frozenset({"ul", "al", "pl", "os"}),
        ),
        # PO Box 123, Post Office Box 9, Postfach 1234, Caixa Postal 55, Private Bag 7
        (
            r"(?:P\.?\s?O\.?\s*(?:Box|BOX)|p\.?\s?o\.?\s*box|Post\s+Office\s+Box|Postfach|Apartado|Caixa\s+Postal"
            r"|Private\s+Bag)\s*#?\s*\d{1,6}\b",
            ("box", "postfach", "apartado", "caixa", "bag"),
        ),
        # Springfield, IL 62704 and Tulsa OK 74159-1234
        (rf"[A-Z][a-z]+(?:\s[A-Z][a-z]+){{0,{_NAME_WORDS}}},?\s+(?:{_US_STATES})\s+\d{{5}}(?:-\d{{4}})?\b", ()),
        # Manchester M14 6XQ (a UK postcode, in one of the postcode areas, after its town)
        (rf"[A-Z][a-z]+,?\s+(?:{_UK_POSTCODE_AREAS})\d[A-Z\d]?\s\d[ABD-HJLNP-UW-Z]{{2}}\b", ()),
        # 3-14-2 Shibuya, Shibuya-ku (a Japanese block address) and 〒150-0002
        (
            r"\d(?<![\w-]\d)\d?-\d{1,2}(?:-\d{1,3})?\s+[A-Z][a-z]+,\s+[A-Z][a-z]+-(?:ku|shi|cho|machi)\b"
            r"|〒\s?\d{3}-\d{4}",
            ("-ku", "-shi", "-cho", "-machi", "〒"),
        ),
    )
)


@dataclass(frozen=True)
class _Hit:
    """A proposed span; allowed hits take part in overlap resolution but are never reported."""

    kind: str
    start: int
    end: int
    allowed: bool = False


@dataclass(frozen=True)
class _Allowed:
    addresses: frozenset[str]
    domains: tuple[str, ...]

    def host(self, host: str) -> bool:
        return _on_any(host.lower().rstrip("."), self.domains)

    def address(self, address: str) -> bool:
        return address.lower() in self.addresses or self.host(address.rpartition("@")[2])


@dataclass(frozen=True)
class _Scan:
    """One text to scan: as written; lower-cased at the same offsets; its ASCII words, in order and as a set,
    which tell a detector whether its keywords occur at all; the phone region; and what the caller allows."""

    text: str
    lower: str
    words: list[str]
    vocabulary: frozenset[str]
    region: str
    allowed: _Allowed


def find_contact_info(
    text: str, *, region: str = "US", allowed_addresses: Iterable[str] = (), allowed_domains: Iterable[str] = ()
) -> list[Finding]:
    """Contact details in text, sorted by offset and non-overlapping.

    region is the program's default phone region (ISO 3166 code) for numbers written in local format; numbers
    written with +country code are found whatever the region. allowed_addresses (the relay's aliases) and
    addresses and links on allowed_domains (the relay's domain and its subdomains) are never reported.
    """
    lower = _lowered(text)
    words = _WORD.findall(lower)
    scan = _Scan(
        text=text,
        lower=lower,
        words=words,
        vocabulary=frozenset(words),
        region=_REGION_ALIASES.get(region.upper(), region.upper()),
        allowed=_Allowed(
            addresses=frozenset(address.lower() for address in allowed_addresses),
            domains=tuple(domain.lower().strip(".") for domain in allowed_domains),
        ),
    )
    hits = [hit for detect in _DETECTORS for hit in detect(scan)]
    return [
        Finding(rule=RULE, kind=hit.kind, match=text[hit.start : hit.end], start=hit.start, end=hit.end)
        for hit in _resolve(hits)
        if not hit.allowed
    ]


def _around(text: str, char: str) -> Iterator[tuple[int, int]]:
    """Spans of text within _REACH of each occurrence of char, overlapping spans merged: an expression that needs
    the character searches these rather than the whole text."""
    return _spans(_occurrences(text, char), _REACH)


def _occurrences(text: str, char: str) -> Iterator[int]:
    position = text.find(char)
    while position >= 0:
        yield position
        position = text.find(char, position + 1)


def _spans(positions: Iterable[int], reach: int) -> Iterator[tuple[int, int]]:
    """Spans within reach of each of positions (ascending), overlapping spans merged."""
    start = end = -1
    for position in positions:
        if position - reach > end >= 0:
            yield start, end
            start = -1
        if start < 0:
            start = max(position - reach, 0)
        end = position + reach
    if start >= 0:
        yield start, end


def _at_words(scan: _Scan, words: frozenset[str], pattern: re.Pattern[str], *,
              as_written: bool = False) -> Iterator[re.Match[str]]:
    """Matches of pattern (on the lower-cased text, or on the text as written) that start at one of words, looked
    for only where the text holds those words rather than by scanning it whole."""
    subject = scan.text if as_written else scan.lower
    for word in words & scan.vocabulary:
        position = scan.lower.find(word)
        while position >= 0:
            match = pattern.match(subject, position)
            if match is not None:
                yield match
            position = scan.lower.find(word, position + 1)


def _lowered(text: str) -> str:
    """text in lower case with unchanged offsets (str.lower lengthens a few characters, such as "İ")."""
    lower = text.lower()
    return lower if len(lower) == len(text) else "".join(char.lower()[0] for char in text)


def _resolve(hits: list[_Hit]) -> list[_Hit]:
    """Keep the longer, then the more specific, of overlapping hits; return them sorted by offset.

    The hits kept so far never overlap, so they are kept sorted by start (bisect) and a candidate is checked
    against its two neighbours only: O(n log n) plus list inserts, where comparing each candidate with every
    kept hit cost 67 s of CPU for the 20,000 hits of 400 KB of text full of addresses and phone numbers."""
    starts: list[int] = []
    chosen: list[_Hit] = []
    for hit in sorted(hits, key=lambda h: (h.start - h.end, KINDS.index(h.kind), h.start)):
        index = bisect.bisect_right(starts, hit.start)
        if index > 0 and chosen[index - 1].end > hit.start:
            continue  # the kept hit that starts at or before this one reaches into it
        if index < len(chosen) and chosen[index].start < hit.end:
            continue  # the kept hit that starts after this one begins inside it
        starts.insert(index, hit.start)
        chosen.insert(index, hit)
    return chosen


# ---------------------------------------------------------------------------------------------------- e-mail
def _emails(scan: _Scan) -> Iterator[_Hit]:
    if _BRACKETED_WORD.search(scan.lower) or not _OBFUSCATION_WORDS.isdisjoint(scan.vocabulary):
        for match in _OBFUSCATED_EMAIL.finditer(scan.lower):
            if _is_obfuscated_email(match):
                yield _Hit("email", match.start(), match.end(), scan.allowed.address(_deobfuscate(match.group())))
    for start, end in _around(scan.text, "@"):
        for match in _EMAIL.finditer(scan.lower, start, end):
            yield _Hit("email", match.start(), match.end(), scan.allowed.address(match.group()))
        for match in _SPACED_EMAIL.finditer(scan.lower, start, end):
            address = match.group().replace(" ", "")
            if _EMAIL.fullmatch(address):
                yield _Hit("email", match.start(), match.end(), scan.allowed.address(address))


def _is_obfuscated_email(match: re.Match[str]) -> bool:
    """A spoken " at " only makes an address with a spelt-out dot or a webmail domain: "work at example.com" is a
    domain, "jane at gmail.com" an address. The domain must end in a public suffix (any, not a fixed list)."""
    domain = match.group("domain")
    if _WEBMAIL_DOMAIN.match(domain):
        return True
    if not (match.group("strong") or _OBFUSCATED_DOT.search(domain)):
        return False
    return _public_suffix(_OBFUSCATED_DOT.sub(".", domain).replace(" ", ""))


# Names reserved for examples and tests (RFC 2606, RFC 6761): not on the public suffix list, but written like
# real domains in documentation, and by people who copy it.
_RESERVED_SUFFIXES = frozenset({"example", "test", "invalid", "localhost"})


@cache
def _suffixes() -> tldextract.TLDExtract:
    """tldextract's bundled public suffix list snapshot, parsed once, never fetched (as relay.senderauth.dmarc)."""
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, include_psl_private_domains=False)


@lru_cache(maxsize=4096)
def _public_suffix(domain: str) -> bool:
    """Whether domain has a registrable name under a suffix of the public suffix list (or a reserved name)."""
    labels = domain.strip(".").split(".")
    if len(labels) < 2 or not all(re.fullmatch(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", label) for label in labels):
        return False
    if labels[-1] in _RESERVED_SUFFIXES:
        return True
    parts = _suffixes()(domain)
    return bool(parts.suffix and parts.domain)


def _deobfuscate(address: str) -> str:
    at = _OBFUSCATED_AT.search(address)
    assert at is not None  # only called on matches of _OBFUSCATED_EMAIL
    domain = _OBFUSCATED_DOT.sub(".", address[at.end() :])
    return address[: at.start()] + "@" + domain.replace(" ", "")


# -------------------------------------------------------------------------------------------- links, domains
def _links(scan: _Scan) -> Iterator[_Hit]:
    text = scan.text
    for match in _URL.finditer(text):
        tld = match.group("tld")
        host = (match.group("shost") or match.group("rhost") or match.group("whost") or match.group("bhost")).lower()
        if tld is not None and not ((tld.islower() and tld in _BARE_TLDS) or _on_any(host, _KNOWN_HOSTS)):
            continue
        end = match.end()
        while end > match.start() and text[end - 1] in _TRAILING_PUNCTUATION:
            end -= 1
        path = text[match.start("path") : end] if match.group("path") else ""
        yield _Hit(_link_kind(host, path, bare=tld is not None), match.start(), end, scan.allowed.host(host))


def _link_kind(host: str, path: str, *, bare: bool) -> str:
    if len(path) > 1:
        if _on_any(host, _MEETING_HOSTS) or "jitsi" in host:
            return "meeting_link"
        if _on_any(host, _PROFILE_HOSTS):
            return "handle"
    return "domain" if bare and not path else "url"


def _on_any(host: str, domains: tuple[str, ...]) -> bool:
    return any(host == domain or host.endswith("." + domain) for domain in domains)


def _app_links(scan: _Scan) -> Iterator[_Hit]:
    """Links that open a chat or a call in an app (skype:NAME?call, tg://resolve?domain=NAME, snapchat://add/NAME,
    msteams:...?users=NAME) or a place (geo:LAT,LONG): a handle, a phone number or a location, never a page."""
    if ":" not in scan.text:
        return
    for match in _at_words(scan, _APP_SCHEME_WORDS, _APP_LINK):
        scheme = match.group("scheme").split(":")[0]
        end = match.end()
        while end > match.start("target") and scan.text[end - 1] in _TRAILING_PUNCTUATION:
            end -= 1
        target = scan.lower[match.start("target") : end].lstrip("/")
        shape = _TARGET_SHAPES.get(scheme)
        if not any(char.isalnum() for char in target) or (shape is not None and not shape.match(target)):
            continue
        yield _Hit(_app_link_kind(scheme, target), match.start(), end, "@" in target and scan.allowed.address(target))


def _app_link_kind(scheme: str, target: str) -> str:
    if scheme == "geo":
        return "location"
    if scheme in _PHONE_SCHEMES or (scheme in _PHONE_OR_NAME_SCHEMES and _DIALLED.match(target)):
        return "phone"
    if scheme in _MEETING_SCHEMES or (scheme == "msteams" and "meetup-join" in target):
        return "meeting_link"
    return "handle"


def _meeting_ids(scan: _Scan) -> Iterator[_Hit]:
    for match in _at_words(scan, _MEETING_WORDS, _MEETING_ID):
        yield _Hit("meeting_link", match.start("id"), match.end("id"))


# ---------------------------------------------------------------------------------------------------- phones
def _phones(scan: _Scan) -> Iterator[_Hit]:
    """Runs of seven or more digits that are not dates, decimals, codes or references: a run that a phone cue
    introduces ("call me", "my cell") is a phone number whatever its shape, and the matcher looks in each run."""
    for run in _DIGIT_RUN.finditer(scan.text):
        if _embedded(scan.text, run.start(), run.end()) or _NOT_PHONE_SHAPE.fullmatch(run.group()):
            continue
        cue = _cue(scan.lower, run.start(), run.end())
        if cue == "reference":
            continue
        if cue == "phone":
            yield _Hit("phone", run.start(), run.end())
        found = list(_matched_phones(scan, run, cued=cue == "phone"))
        yield from found or _foreign_phones(scan, run)


def _run_matches(scan: _Scan, run: re.Match[str],
                 region: str) -> Iterator[tuple[phonenumbers.PhoneNumberMatch, int, int]]:
    """The matcher's numbers for `region` that overlap the run (the window around it is context only) and are
    not codes or other shapes that are no phone number: (match, start, end) in the text."""
    offset, end = _matcher_window(scan.text, run)
    window = scan.text[offset:end]
    for match in _window_numbers(window, region):
        start, end = offset + match.start, offset + match.end
        if end <= run.start() or start >= run.end() or _embedded(window, match.start, match.end):
            continue
        if not _NOT_PHONE_SHAPE.fullmatch(match.raw_string):
            yield match, start, end


@lru_cache(maxsize=4096)
def _window_numbers(window: str, region: str) -> tuple[phonenumbers.PhoneNumberMatch, ...]:
    """The matcher's numbers in a window for a region. Cached: the matcher is the costly part of the rule (a
    parse for each number in each region tried), and a text that repeats itself asks the same again and again."""
    return tuple(phonenumbers.PhoneNumberMatcher(window, region, leniency=_PHONE_LENIENCY))


def _matcher_window(text: str, run: re.Match[str]) -> tuple[int, int]:
    """The span of text the matcher reads for a run: _MATCHER_CONTEXT characters either side, less what lies
    beyond a character that no number the matcher finds can hold (_STOP).

    The matcher's numbers are digits, its punctuation and a leading "+" or bracket, with an extension after them
    ("ext. 12", "x12", ";ext=12", "- 503#"), and it reads the 3 characters after a number (a time stamp's
    ":30"). The numbers it finds after such a character, left of the run, are the same whatever came before it,
    and those that start right of one come after every number that overlaps the run. The context cut off held
    only numbers that do not overlap the run, which the matcher parsed (in each region tried) to be thrown away:
    the same numbers are found, at a fraction of the cost when the runs come close together (a table).
    """
    start = max(run.start() - _MATCHER_CONTEXT, 0)
    stops = [stop.start() for stop in _STOP.finditer(text, start, run.start())]
    after = _STOP.search(text, run.end(), run.end() + _MATCHER_CONTEXT)
    return (stops[-1] if stops else start,
            run.end() + _MATCHER_CONTEXT if after is None else min(after.start() + 3, run.end() + _MATCHER_CONTEXT))


def _matched_phones(scan: _Scan, run: re.Match[str], *, cued: bool) -> Iterator[_Hit]:
    """The matcher's numbers in a run, kept when cued, international, valid, or shaped like a North American
    number (whose fictional 555 numbers the matcher does not hold valid)."""
    for match, start, end in _run_matches(scan, run, scan.region):
        raw = match.raw_string
        if cued or raw.startswith("+") or _NANP_SHAPE.fullmatch(raw) or phonenumbers.is_valid_number(match.number):
            yield _Hit("phone", start, end)


# Where else a participant's number may be from (a pupil in a US program with a UK mobile, "07700 900123"):
# a run the program's region does not read as a number is a phone number when one of these holds it valid.
# The US and Canada share one numbering plan: the program's region already read their numbers.
_OTHER_REGIONS = ("GB", "IE", "CA", "AU", "IN", "ES", "MX", "FR", "DE", "IT", "RU", "EG", "SA", "AE", "MA")
_SHARED_PLAN = {"US": "CA", "CA": "US"}


def _foreign_phones(scan: _Scan, run: re.Match[str]) -> Iterator[_Hit]:
    """The run's numbers as another region writes them in its national form, when that region holds them valid."""
    for region in _OTHER_REGIONS:
        if region in (scan.region, _SHARED_PLAN.get(scan.region)):
            continue
        for match, start, end in _run_matches(scan, run, region):
            if phonenumbers.is_valid_number(match.number):
                yield _Hit("phone", start, end)
                return


def _embedded(text: str, start: int, end: int) -> bool:
    """Digits glued to letters or digits ("1Z999AA10123456784") are part of a code, not a phone number."""
    return any(char.isascii() and char.isalnum() for char in text[max(start - 1, 0) : start] + text[end : end + 1])


def _cue(lower: str, start: int, end: int) -> str | None:
    """Phone or reference, from the nearest cue before the number, else "phone" if one follows it closely."""
    # from the start of the word _CUE_BEFORE characters back, but never further than _CUE_WORD more: without a
    # space there (a line of "1234567;1234567;..."), each run's window reached back to the text's start
    limit = max(start - _CUE_BEFORE, 0)
    window = lower.rfind(" ", max(limit - _CUE_WORD, 0), limit) + 1 or max(limit - _CUE_WORD, 0)
    before = list(_CUES.finditer(lower, window, start))
    if before:
        return before[-1].lastgroup
    after = _CUES.search(lower, end, end + _CUE_AFTER)
    return "phone" if after is not None and after.lastgroup == "phone" else None


def _spoken_phones(scan: _Scan) -> Iterator[_Hit]:
    """Phone numbers in words, or words and digits: "five five five, one two three, 4567"."""
    if sum(map(_DIGIT_WORDS.__contains__, scan.words)) < _SPOKEN_MINIMUM_WORDS:
        return
    for match in _SPOKEN_RUN.finditer(scan.lower):
        digits = words = 0
        for part in _SPOKEN_PART.finditer(match.group()):
            if part.group("digits"):
                digits += len(part.group("digits"))
            else:
                words += 1
                digits += {"double": 2, "triple": 3}.get(part.group("times") or "", 1)
        if words >= _SPOKEN_MINIMUM_WORDS and digits >= _PHONE_MINIMUM_DIGITS:
            yield _Hit("phone_words", match.start(), match.end())


# --------------------------------------------------------------------------------------------------- handles
def _handles(scan: _Scan) -> Iterator[_Hit]:
    for start, end in _around(scan.text, "@"):
        for match in _AT_HANDLE.finditer(scan.text, start, end):
            name = match.group("name")
            if name.lower() not in _NOT_AT_HANDLES:
                yield _Hit("handle", match.start(), match.end(), "." in name and scan.allowed.host(name))
    for start, end in _around(scan.text, "#"):
        for match in _DISCORD_TAG.finditer(scan.text, start, end):
            if match.group("name").lower() not in _NOT_DISCORD_NAMES:
                yield _Hit("handle", match.start(), match.end())
    for anchor in _at_words(scan, _ANCHOR_WORDS, _ANCHOR):
        if anchor.group("platform"):
            yield from _handle_before(scan, anchor)
        hit = _handle_after(scan, anchor)
        if hit is not None:
            yield hit


def _handle_before(scan: _Scan, anchor: re.Match[str]) -> Iterator[_Hit]:
    """The handle named just before its platform: "I'm maddie_b on threads"."""
    match = _HANDLE_BEFORE_PLATFORM.search(scan.lower, max(anchor.start() - _HANDLE_BEFORE_WINDOW, 0), anchor.start())
    if match is not None and _handle_like(scan.text[match.start("handle") : match.end("handle")]):
        yield _Hit("handle", match.start("handle"), match.end("handle"))


def _handle_after(scan: _Scan, anchor: re.Match[str]) -> _Hit | None:
    """The handle given after a platform's name, "username" or "add me": "my insta is lunar.lens", "Snap me:
    emmaxoxo.14", "find me on Facebook as Jane Doe". Connecting words are skipped; the first other word decides.
    After "add me" or "dm me" alone, only a word shaped like a username will do ("DM me: whenever" is no handle)."""
    owner = _OWNER_BEFORE.search(scan.lower, max(anchor.start() - _OWNER_WINDOW, 0), anchor.start())
    owned = anchor.group("cue") is not None or owner is not None
    # A cue in another script ("мой телеграм", "سنابي"): a word in Latin letters after it is the handle.
    foreign = not anchor.group().isascii() and not _LATIN_LETTER.search(anchor.group())
    previous = ""
    asked = False
    tokens = list(_TOKEN.finditer(scan.text, anchor.end(), anchor.end() + _SCAN_AFTER_ANCHOR))
    for index, token in enumerate(tokens[: _MAX_CONNECTORS + 1]):
        raw = token.group()
        core = raw.lstrip(_OPENING).rstrip(_CLOSING)
        if not core or raw in _INTRODUCERS or raw in _DASHES or core.lower() in _CONNECTORS \
                or core.lower() in _PLATFORM_WORDS:
            owned = owned or core.lower() in _NAMING
            # "follow me on instagram as ...": asked to find them on a platform under a name
            asked = asked or (anchor.group("request") is not None and core.lower() in _PLATFORM_WORDS)
            previous = ":" if raw.endswith(tuple(_INTRODUCERS)) or (owned and raw in _DASHES) else core.lower()
            continue
        start = token.start() + len(raw) - len(raw.lstrip(_OPENING))
        if _handle_like(core):
            return _Hit("handle", start, start + len(core))
        if asked and previous in _AS and _plain_handle(core):
            return _Hit("handle", start, start + len(core))
        if anchor.group("request"):
            return None
        if (_strong(previous, owned=owned) or (owned and foreign and core[:1].islower())) and _plain_handle(core):
            return _Hit("handle", start, start + len(core))
        following = tokens[index + 1].group().rstrip(_CLOSING) if index + 1 < len(tokens) else ""
        if previous in _BEFORE_NAME and _NAME_WORD.fullmatch(core) and _NAME_WORD.fullmatch(following):
            return _Hit("handle", start, tokens[index + 1].start() + len(following))
        return None
    return None


def _strong(previous: str, *, owned: bool) -> bool:
    """Whether the word before a candidate introduces a handle even when it looks like a plain word."""
    return previous == ":" or (owned and previous in _IS)


def _handle_like(token: str) -> bool:
    """Shaped like a username rather than a word: an @, a digit, an underscore, or a dot inside a lower-case
    name ("maya.draws_22", "lunar.lens", "@inkbyzoe"); not an abbreviation ("e.g.") or a file name ("Node.js")."""
    if not _HANDLE_TOKEN.fullmatch(token) or _ABBREVIATION.fullmatch(token):
        return False
    body = token.lstrip("@")
    return (
        token.startswith("@")
        or any(char.isdigit() or char == "_" for char in body)
        or (body[0].islower() and "." in body.strip("."))
    )


def _plain_handle(word: str) -> bool:
    return _PLAIN_HANDLE.fullmatch(word) is not None and word.lower() not in _NOT_HANDLES


# ------------------------------------------------------------------------------------------------- locations
def _locations(scan: _Scan) -> Iterator[_Hit]:
    """GPS coordinates, Plus Codes and what3words addresses (geo: links are app links)."""
    text = scan.text
    yield from _coordinates(scan)
    for start, end in _spans(_occurrences(text, "+"), _PLUS_CODE_REACH):
        for match in _PLUS_CODE.finditer(text, start, end):
            code = match.group()
            if any(char.isdigit() for char in code) and any(char.isalpha() for char in code) \
                    and (len(match.group("code")) < 8 or _FULL_CODE_START.match(code)):
                yield _Hit("location", match.start(), match.end())
    if "///" in text:
        for match in _THREE_WORDS.finditer(text):
            yield _Hit("location", match.start(), match.end())
    if ("w" in scan.vocabulary or {"what", "words"} <= scan.vocabulary) \
            and any(name in scan.lower for name in ("w3w", "what3words", "what 3 words")):
        for match in _THREE_WORDS_NAMED.finditer(scan.lower):
            yield _Hit("location", match.start("words"), match.end("words"))


def _decimal_points(text: str) -> list[int]:
    """The offsets of the points of numbers with three decimals or more ("55.796"): found by looking at each dot,
    which costs less than scanning every character with an expression, unless dots are many."""
    if text.count(".") > _DOTS_LOOKED_AT:
        return [match.start() + 1 for match in _DECIMALS.finditer(text)]
    return [position for position in _occurrences(text, ".")
            if position and text[position - 1].isdigit() and _THREE_DIGITS.fullmatch(text, position + 1, position + 4)]


def _coordinates(scan: _Scan) -> Iterator[_Hit]:
    """Coordinates are looked for near each number with three decimals and each degree sign only."""
    text = scan.text
    spots = sorted([*_decimal_points(text), *_occurrences(text, "°")])
    for start, end in _spans(spots, _COORDINATES_REACH):
        yield from _coordinates_in(scan, start, end)


def _coordinates_in(scan: _Scan, start: int, end: int) -> Iterator[_Hit]:
    text = scan.text
    for match in _DECIMAL_PAIR.finditer(text, start, end):
        latitude, longitude = (float(match.group(part).replace("−", "-")) for part in ("lat", "lon"))
        if abs(latitude) > 90 or abs(longitude) > 180 or max(abs(latitude), abs(longitude)) < 1:
            continue
        if _LIST_BEFORE.search(text, max(match.start() - 4, 0), match.start()) \
                or _LIST_AFTER.match(text, match.end()):
            continue
        places = min(len(match.group("lat_decimals")), len(match.group("lon_decimals")))
        before = scan.lower[max(match.start() - _CUE_WINDOW, 0) : match.start()]
        if places >= 4 or _LOCATION_CUE.search(before):
            yield _Hit("location", match.start(), match.end())
    for match in _HEMISPHERE_PAIR.finditer(text, start, end):
        if _PRECISE_DEGREES.search(match.group()):
            yield _Hit("location", match.start(), match.end())


# ------------------------------------------------------------------------------------------ street addresses
def _street_addresses(scan: _Scan) -> Iterator[_Hit]:
    for pattern, hints in _STREET_ADDRESSES:
        if isinstance(hints, frozenset):
            matches = _at_words(scan, hints, pattern, as_written=True)
        elif hints and not any(hint in scan.lower for hint in hints):
            continue
        else:
            matches = pattern.finditer(scan.text)
        for match in matches:
            group = "address" if "address" in pattern.groupindex else 0
            yield _Hit("street_address", match.start(group), match.end(group))


_DETECTORS = (_emails, _links, _app_links, _meeting_ids, _phones, _spoken_phones, _handles, _locations,
              _street_addresses)
