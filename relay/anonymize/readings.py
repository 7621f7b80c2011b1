"""Text whose charset is unknown: which reading the partner gets, and which readings the rules also read.

A text part whose bytes are neither ASCII nor UTF-8 and that declares no charset (or one its bytes are not
valid in) can be read in many legacy charsets, and a short text gives a detector too little to go on:
charset-normalizer reads `أريد أن أموت` in Windows-1256 as Korean (`총孱 춥 춤撚`), Russian in KOI8-R as
Windows-1251 (`нОЕ РМПИП`) and `beau-père` in Windows-1252 as Big5 (`beau-p鋨e`). So:

- `choose` picks the reading the partner gets, the way a careful mail client does when a message names no
  charset: among the readings that decode, the one charset-normalizer finds least chaotic (its mess ratio)
  and most coherent (its language model, which needs a few dozen letters to say anything), then the one
  without words that change from lower to upper case inside (KOI8-R read as Windows-1251 and back swaps the
  case of every Cyrillic letter), then the one in the charsets the message itself points to (a charset
  declared in its HTML, in its other parts, its Content-Language, the members' enrolled languages), then
  the commonest charsets first. A reading in a CJK multi-byte charset is only a candidate when a language
  in play is written in one: random legacy bytes are nearly always valid GBK, Big5 or EUC-KR. When a reading
  holds a member's real name and the chosen one does not, that reading is the right one (the caller passes
  `prefer`), and it is scrubbed like any text.
- `others` gives the rules every other reading in a legacy charset that decodes the bytes and that
  charset-normalizer does not find messy (its own default threshold; nor most words mixing scripts that it
  calls suspiciously successive, which its average over a whole text misses when accents are few), so that a
  disclosure is seen whichever charset the child's phone used; likeliest first, bounded per part (its first
  32 KiB) and per message (128 Ki characters of readings): the rules read each reading whole.
  charset-normalizer's unrestricted guess is asked for only when none of our charsets reads the bytes
  plausibly.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.message import Message
from itertools import pairwise

# Charsets whose readings the rules see. The Windows code pages and their ISO twins (they differ in
# 0x80-0xBF) of the languages mail to children's programs is written in, from the reviews and the
# programs' languages: Western Europe (cp1252: English, Spanish, French, Portuguese, German), Central
# Europe (cp1250, iso-8859-2: Polish, Czech, Hungarian, Romanian, Croatian), Cyrillic (cp1251; koi8-r, still
# the default of older Russian mail tools; koi8-u for Ukrainian), Arabic (cp1256; iso-8859-6, older Arabic
# mail), Greek (cp1253, iso-8859-7), Hebrew (cp1255, iso-8859-8), Turkish (cp1254, iso-8859-9) and Baltic
# (cp1257). iso-8859-1 and -15 are left out: every byte they define reads the same in cp1252, which reads
# 0x80-0x9F as the punctuation those bytes are in practice. No CJK multi-byte charset: see the docstring.
READING_CHARSETS = ("cp1252", "cp1251", "koi8-r", "cp1256", "cp1250", "iso-8859-2", "iso-8859-7", "cp1253",
                    "iso-8859-8", "cp1255", "iso-8859-9", "cp1254", "iso-8859-6", "koi8-u", "cp1257")
# The legacy charsets each language (BCP 47 primary subtag) was written in, commonest first.
LANGUAGE_CHARSETS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("en", "es", "fr", "pt", "de", "it", "nl", "ca", "da", "sv", "no", "nb", "fi", "id", "ms",
                     "sw", "tl"), ("cp1252",)),
    **dict.fromkeys(("ar", "fa", "ur"), ("cp1256", "iso-8859-6")),
    **dict.fromkeys(("ru", "be", "bg", "mk", "sr"), ("cp1251", "koi8-r")),
    "uk": ("cp1251", "koi8-u"),
    **dict.fromkeys(("pl", "cs", "sk", "hu", "ro", "hr", "sl", "bs", "sq"), ("cp1250", "iso-8859-2")),
    "el": ("cp1253", "iso-8859-7"), "he": ("cp1255", "iso-8859-8"), "yi": ("cp1255", "iso-8859-8"),
    "tr": ("cp1254", "iso-8859-9"), "az": ("cp1254", "iso-8859-9"),
    **dict.fromkeys(("lt", "lv", "et"), ("cp1257",)),
    "vi": ("cp1258",), "th": ("cp874",),
    "ja": ("shift_jis", "euc-jp", "iso-2022-jp"), "zh": ("gb18030", "big5"), "ko": ("euc-kr",),
}
# The rules cost some 10-20 us a character (bench/charset_cost.py), and read each reading whole: text with few
# non-ASCII letters (French) is plausible in most charsets, so the readings are bounded in characters.
PART_READING_BYTES = 32 * 1024  # readings of a part are made of its first 32 KiB ...
MESSAGE_READING_CHARS = 128 * 1024  # ... and a message's readings hold at most 128 Ki characters, likeliest first
SAMPLE_BYTES = 4096  # the lines holding non-ASCII bytes that candidates are scored on
# charset-normalizer's own default threshold: a reading messier than this is not a reading to it
PLAUSIBLE_CHAOS = 0.2
PLAUSIBLE_MIXED_WORDS = 0.5  # a reading in which most non-ASCII words mix scripts is not one (see _mixed_words)
_CHARSET_PARAM = re.compile(rb"""charset\s*=\s*["']?([A-Za-z0-9_.:-]{2,40})""", re.IGNORECASE)


@dataclass
class Hints:
    """What a message says about its own charset and language, in order of trust; and the readings budget."""

    charsets: tuple[str, ...] = ()
    cjk: bool = False  # a language in play is written in a CJK multi-byte charset
    budget: int = MESSAGE_READING_CHARS
    last: tuple[bytes, list[_Candidate]] | None = None  # the last part's candidates, for its other readings


def codec_name(charset: str) -> str | None:
    try:
        return codecs.lookup(charset).name
    except (LookupError, ValueError, TypeError):
        return None


def hints_for(root: Message, languages: Iterable[str | None]) -> Hints:
    """The charsets `root` points to: those declared by its parts, then those of the languages of its
    Content-Language headers and of the members (`languages`, the sender's first)."""
    charsets: list[str] = []
    tags: list[str] = []
    for part in root.walk():
        declared = part.get_param("charset")
        if isinstance(declared, str) and not part.is_multipart():
            charsets.append(declared)
        for value in part.get_all("Content-Language") or ():
            tags.extend(str(value).split(","))
    tags.extend(language for language in languages if language)
    cjk = False
    for tag in tags:
        primary = tag.strip().replace("_", "-").split("-")[0].lower()
        charsets.extend(LANGUAGE_CHARSETS.get(primary, ()))
        cjk = cjk or primary in ("ja", "zh", "ko")
    names: list[str] = []
    for charset in charsets:
        name = codec_name(charset)
        if name is not None and name not in names and name not in ("utf-8", "ascii"):
            names.append(name)
    return Hints(tuple(names), cjk)


def _decodes(raw: bytes, charset: str) -> str | None:
    try:
        return raw.decode(charset)
    except (UnicodeDecodeError, LookupError, ValueError):
        return None


def _case_flips(text: str) -> int:
    """Letters in upper case right after one in lower case: rare in any language, the mark of a KOI8-R text
    read as Windows-1251 (or the other way round)."""
    return sum(1 for first, second in pairwise(text) if first.islower() and second.isupper())


_WORD = re.compile(r"\w+")


def _mixed_words(text: str) -> float:
    """The share of the words holding a non-ASCII letter in which two letters follow each other from ranges
    that charset-normalizer calls suspiciously successive ("pиre", "Зa": a Latin text read in a Cyrillic
    charset). Its mess ratio, averaged over the whole text, misses them when accents are few."""
    from charset_normalizer.md import is_suspiciously_successive_range
    from charset_normalizer.utils import unicode_range

    words = [word for word in _WORD.findall(text) if not word.isascii()]
    if not words:
        return 0.0
    mixed = sum(1 for word in words if any(
        first.isalpha() and second.isalpha() and is_suspiciously_successive_range(unicode_range(first),
                                                                                  unicode_range(second))
        for first, second in pairwise(word)))
    return mixed / len(words)


def _sample(raw: bytes) -> bytes:
    lines = [line for line in raw.splitlines() if not line.isascii()]
    return b"\n".join(lines)[:SAMPLE_BYTES]


def _multi_byte(charset: str) -> bool:
    from charset_normalizer.utils import is_multi_byte_encoding

    name = codec_name(charset) or charset
    return is_multi_byte_encoding(name) and not name.startswith("utf")


@dataclass(frozen=True)
class _Candidate:
    charset: str
    head: str  # the reading of the part's first PART_READING_BYTES
    chaos: float  # charset-normalizer's mess ratio of the reading of the sample
    mixed: float  # _mixed_words of the reading of the sample


def _candidates(raw: bytes, hints: Hints) -> list[_Candidate]:
    """Each distinct reading that decodes, best first (see the module docstring). Only the heads are decoded
    here: a 20 MB part is not read fifteen times. charset-normalizer's unrestricted guess is asked for only
    when no charset of ours reads the bytes plausibly (it costs as much as all the rest on a short text)."""
    from charset_normalizer import from_bytes
    from charset_normalizer.utils import any_specified_encoding

    key = raw[:PART_READING_BYTES]
    if hints.last is not None and hints.last[0] == key:
        return hints.last[1]  # the part's other readings, just after choosing its reading
    inside = any_specified_encoding(raw)  # <meta charset=...> or <?xml encoding=...?> in the first bytes
    order = [name for name in (codec_name(inside) if inside else None, *hints.charsets,
                               *(codec_name(c) for c in READING_CHARSETS)) if name]
    order = list(dict.fromkeys(name for name in order if hints.cjk or not _multi_byte(name)))
    sample = _sample(raw)
    readings = _readings(raw, order)
    chaos = _chaos(sample, list(readings))
    if not any(mess <= PLAUSIBLE_CHAOS for mess, _ in chaos.values()):
        guess = from_bytes(raw).best()  # a charset of none of the languages we know of
        if guess is not None and (hints.cjk or not _multi_byte(guess.encoding)):
            name = codec_name(guess.encoding) or guess.encoding
            readings.update(_readings(raw, [name]) if name not in readings else {})
            chaos.update(_chaos(sample, [name]))
    rank = list(readings)

    def score(name: str) -> tuple[float, float, int, int]:
        mess, coherence = chaos.get(name, (2.0, 0.0))
        return mess, coherence, _case_flips(_decodes(sample, name) or ""), rank.index(name)

    found = [_Candidate(name, readings[name], chaos.get(name, (2.0, 0.0))[0],
                        _mixed_words(_decodes(sample, name) or "")) for name in sorted(readings, key=score)]
    hints.last = (key, found)
    return found


def _readings(raw: bytes, charsets: list[str]) -> dict[str, str]:
    head = raw[:PART_READING_BYTES]
    readings: dict[str, str] = {}
    for name in charsets:
        text = _decodes(raw, name) if _multi_byte(name) else _decodes(head, name)
        if text is not None and text not in readings.values():
            readings[name] = text[:PART_READING_BYTES]
    return readings


def _chaos(sample: bytes, charsets: list[str]) -> dict[str, tuple[float, float]]:
    """charset-normalizer's mess ratio and (negated) language coherence of the sample in each charset."""
    from charset_normalizer import from_bytes

    if not charsets:
        return {}
    found: dict[str, tuple[float, float]] = {}
    for match in from_bytes(sample, cp_isolation=charsets, threshold=1.0, preemptive_behaviour=False):
        for name in (match.encoding, *match.could_be_from_charset):
            found[codec_name(name) or name] = (round(match.chaos, 3), -round(match.coherence, 2))
    return found


def choose(raw: bytes, hints: Hints, prefer: Callable[[str], bool] | None = None) -> str | None:
    """The reading the partner gets, or None when no candidate charset reads the bytes."""
    chosen = _chosen(raw, hints, prefer)
    return None if chosen is None else chosen[1]


def choose_charset(raw: bytes, hints: Hints, prefer: Callable[[str], bool] | None = None) -> str | None:
    """The charset of the reading `choose` gives (None when no candidate charset reads the bytes)."""
    chosen = _chosen(raw, hints, prefer)
    return None if chosen is None else chosen[0]


def _chosen(raw: bytes, hints: Hints, prefer: Callable[[str], bool] | None) -> tuple[str, str] | None:
    candidates = _candidates(raw, hints)
    if prefer is not None and candidates and not prefer(candidates[0].head):
        named = [item for item in candidates if prefer(item.head)]
        candidates = named + [item for item in candidates if item not in named]
    for candidate in candidates:
        text = _decodes(raw, candidate.charset)  # the whole part: its head decoded, the rest may not
        if text is not None:
            return candidate.charset, text
    return None


def others(raw: bytes, chosen: str, hints: Hints) -> list[str]:
    """Every other plausible reading (charset-normalizer's mess ratio at most PLAUSIBLE_CHAOS, at most half of
    its non-ASCII words mixing scripts) of the part's first bytes in a single-byte charset that reads them,
    likeliest first, within the message's budget."""
    if hints.budget <= 0 or raw.isascii():
        return []
    seen = {chosen[:PART_READING_BYTES], chosen}
    found = []
    for candidate in _candidates(raw, hints):
        text = candidate.head[:hints.budget]
        plausible = candidate.chaos <= PLAUSIBLE_CHAOS and candidate.mixed <= PLAUSIBLE_MIXED_WORDS
        if plausible and not _multi_byte(candidate.charset) and text not in seen:
            seen.add(text)
            found.append(text)
            hints.budget -= len(text)
            if hints.budget <= 0:
                break
    return found
