"""A member's display names: the phrase a client writes before their address, and their own From's name.

A mail client writes a mailbox as a display name and an address, and the display name is whatever the
member's directory or account calls them, with what the enrolled name lacks: `Doe, Jane (LHS Student - Grade 9)
<jane.doe@...>` (a school's Exchange directory: school and grade), `Jane Okafor-Doe <jane.doe@...>` (another
surname). Replacing the enrolled name's words in it leaves "Maple (LHS Student - Grade 9) <alias>".

- `phrase_hits`: where a member's address stands in angle brackets (or `[mailto:...]`, Outlook's plain-text
  form), the display phrase before it is theirs, whole, and gives way to their handle. The phrase is a quoted
  string; or, on a header-like line ("From:", "De :", "Von:", "От:", "Organiser:", a forwarded block's
  lines), everything after the label or after the mailbox before it; or, in running text ("On Tue, 3 Nov
  2026 at 15:15, Doe, Jane (LHS Student - Grade 9) <...> wrote:"), the words before the address that read as
  a name: capitalised (or in a script without case), name particles (van, de, al...), bracketed groups, one
  comma ("Last, First"), but no date or time words, nothing with digits, and no ordinary word (also
  inflected: "Copying") at its start that is not a known name word or the "Last" of "Last, First" ("Copying
  Jane Doe <...>" keeps "Copying"), unless all its words are ordinary ("Sunny Day <...>" goes whole).
- `name_words` and `Phrases`: the display name of the sender's own From (as it came in this message) is
  matched elsewhere in it too: whole (`Phrases`, when it has a name-like word), and word by word through its
  name-like words (given to the name matcher as a nickname). A name-like word is one the name matcher would
  match anywhere (names.is_ambiguous: not an ordinary word, a place or two letters), so that a display name
  "Sunny Day" does not turn every "day" into the handle; bracketed annotations ("(LHS Student - Grade 9)",
  "(she/her)") give no words of their own.
Pure text functions: no store, no message.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence

from relay.anonymize.common import is_common_word
from relay.anonymize.fold import fold
from relay.anonymize.names import Hit, is_ambiguous

MAX_PHRASE = 200  # characters of display phrase taken before an address (a display name is rarely 80)
MAX_LOOK_BACK = 400  # characters before an address looked at (a long HTML run is one line)
MAX_WORDS = 8  # name-like words of a display name given to the matcher
_BEFORE_ADDRESS = re.compile(r"(?i)(?:\([ \t]*)?[<\[][ \t]*(?:mailto:[ \t]*)?$")  # "<", "[mailto:", Gmail's "(<"
_AFTER_ADDRESS = re.compile(r"[ \t]*[>\]]")
# A header-like line: a label of one to three words and a colon ("From:", "De :", "Reply-To:", "*From:*").
_LABEL = re.compile(r"[ \t>*|]*[^\W\d_]+(?:[ .'-][^\W\d_]+){0,2}[ \t]*\**[:：]\**[ \t]*")
_IN_WORD = "_'’.&-"  # besides letters and digits
_PARTICLES = frozenset({"van", "von", "der", "den", "de", "da", "di", "del", "della", "des", "du", "la", "le", "dos",
                        "das", "bin", "binti", "bint", "ibn", "al", "el", "ter", "ten", "zu", "y", "e"})
# Words that end a date before a display name in an attribution line ("On Tue, Nov 3, 2026 at 3:15 PM Jane ...").
_DATE_WORDS = frozenset({
    "am", "pm", "a.m.", "p.m.", "mon", "tue", "tues", "wed", "thu", "thur", "thurs", "fri", "sat", "sun", "monday",
    "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "jan", "feb", "mar", "apr", "may", "jun",
    "jul", "aug", "sep", "sept", "oct", "nov", "dec", "january", "february", "march", "april", "june", "july",
    "august", "september", "october", "november", "december", "utc", "gmt", "msk",
})  # fmt: skip
_ZONE = re.compile(r"[A-Z]{1,3}[SD]?T")  # CST, CEST, PDT, BST: a time zone after a time
_BRACKETED = re.compile(r"\([^()]*\)|\[[^\[\]]*\]|\"[^\"]*\"|<[^<>]*>")
_NOT_LETTER_BEFORE = r"(?<![^\W\d_])"
_NOT_LETTER_AFTER = r"(?![^\W\d_])"


def phrase_hits(text: str, hits: Sequence[Hit]) -> list[Hit]:
    """A hit for the display phrase before each of `hits`' certain addresses that stands in brackets: the
    phrase (see the module docstring) is the address owner's, kind "name"."""
    found = []
    known = sorted((hit.start, hit.end) for hit in hits if hit.certain and hit.kind == "name")
    starts = [start for start, _ in known]
    for hit in hits:
        if not hit.certain or hit.kind != "address" or not _AFTER_ADDRESS.match(text, hit.end):
            continue
        opening = _BEFORE_ADDRESS.search(text, max(0, hit.start - 16), hit.start)
        if opening is None:
            continue
        near = known[bisect_left(starts, opening.start() - MAX_LOOK_BACK - MAX_PHRASE):
                     bisect_left(starts, opening.start())]
        span = display_span(text, opening.start(), near)
        if span is not None:
            found.append(Hit(span[0], span[1], hit.person, "name"))
    return found


def display_span(text: str, end: int, known: Sequence[tuple[int, int]] = ()) -> tuple[int, int] | None:
    """The span of the display phrase that ends at `end` (where the bracketed address starts), or None;
    `known`: spans of name hits, never trimmed from the phrase's start."""
    line_start = max(text.rfind("\n", max(0, end - MAX_LOOK_BACK), end) + 1, end - MAX_LOOK_BACK, 0)
    segment = text[line_start:end]
    stop = len(segment.rstrip(" \t"))
    if stop == 0:
        return None
    if segment[stop - 1] == '"':  # a quoted string: its inside
        opening = segment.rfind('"', 0, stop - 1)
        if opening < 0 or not segment[opening + 1:stop - 1].strip() or stop - opening > MAX_PHRASE:
            return None
        return line_start + opening + 1, line_start + stop - 1
    label = _LABEL.match(segment)
    if label is not None:
        start = _after_previous_mailbox(segment, label.end(), stop)
        if start is None or not segment[start:stop].strip() or stop - start > MAX_PHRASE:
            return None
        return line_start + start, line_start + stop
    start = _walk_back(segment, stop, [(s - line_start, e - line_start) for s, e in known])
    return None if start is None else (line_start + start, line_start + stop)


def _after_previous_mailbox(segment: str, start: int, stop: int) -> int | None:
    """Where the phrase starts on a header-like line: after the label, or after the mailbox before it
    ("Cc: Maria Okafor <m@...>, Doe, Jane <...>"); None when an address without brackets comes before it
    with nothing to part them."""
    previous = max(segment.rfind(">", start, stop), segment.rfind("]", start, stop), segment.rfind(";", start, stop))
    if previous >= 0:
        start = previous + 1
    at = segment.rfind("@", start, stop)
    if at >= 0:  # "Cc: m@family.example, Jane Doe <...>"
        comma = max(segment.find(",", at, stop), segment.find(";", at, stop))
        if comma < 0:
            return None
        start = comma + 1
    while start < stop and segment[start] in " \t,;":
        start += 1
    return start


def _walk_back(segment: str, stop: int, known: Sequence[tuple[int, int]]) -> int | None:
    """Where the words before `stop` that read as a display name start (see the module docstring)."""
    tokens: list[tuple[int, int, str]] = []  # (start, end, kind), right to left
    position = stop
    commas = 0
    while position > 0 and len(tokens) < 24 and stop - position <= MAX_PHRASE:
        end = len(segment[:position].rstrip(" \t"))
        if end == 0:
            break
        char = segment[end - 1]
        if char in ")]":
            opening = segment.rfind("(" if char == ")" else "[", max(0, end - 80), end - 1)
            if opening < 0 or any(c in segment[opening:end] for c in "<>@\n"):
                break
            tokens.append((opening, end, "group"))
            position = opening
        elif char == ",":
            commas += 1
            if commas > 1 or not any(kind == "word" for _, _, kind in tokens):
                break
            tokens.append((end - 1, end, "comma"))
            position = end - 1
        elif char in "-–—" and (end == 1 or segment[end - 2] in " \t"):
            tokens.append((end - 1, end, "dash"))
            position = end - 1
        else:
            start = _word_start(segment, end)
            if start is None or not _reads_as_display_word(segment[start:end], tokens):
                break
            tokens.append((start, end, "word"))
            position = start
    tokens.reverse()

    def keeper(index: int) -> bool:  # the name's: not an ordinary word, a known name, or "Last" of "Last, First"
        start, end, kind = tokens[index]
        if kind == "group":
            return True
        following = tokens[index + 1][2] if index + 1 < len(tokens) else ""
        return (following == "comma" or not _ordinary(segment[start:end].strip(".,'’"))
                or any(s < end and start < e for s, e in known))

    if any(kind == "word" and keeper(index) for index, (_, _, kind) in enumerate(tokens)):
        while tokens and (tokens[0][2] in ("comma", "dash") or (tokens[0][2] == "word" and not keeper(0))):
            tokens.pop(0)
    while tokens and tokens[0][2] in ("comma", "dash"):
        tokens.pop(0)
    if not any(kind in ("word", "group") for _, _, kind in tokens):
        return None
    return tokens[0][0]


def _word_start(segment: str, end: int) -> int | None:
    """Where the word that ends at `end` starts (at a letter or digit), or None."""
    start = end
    while start > 0 and (segment[start - 1].isalnum() or segment[start - 1] in _IN_WORD):
        start -= 1
    while start < end and not segment[start].isalnum():
        start += 1
    return start if start < end else None


def _ordinary(word: str) -> bool:
    """An ordinary word, also inflected ("Copying", "Forwarding", "Contacts": a verb or noun that starts the
    sentence before a mailbox): the common-word lists hold base forms mostly."""
    if is_common_word(word):
        return True
    lower = word.lower()
    if len(lower) < 5:
        return False
    stems = {lower[:-1], lower[:-2]} if lower.endswith(("s", "ed")) else set()
    if lower.endswith("ing"):
        stems |= {lower[:-3], lower[:-3] + "e"} | ({lower[:-4]} if lower[-4:-3] == lower[-5:-4] else set())
    return any(len(stem) >= 3 and is_common_word(stem) for stem in stems)


def _reads_as_display_word(word: str, right: Sequence[tuple[int, int, str]]) -> bool:
    """Whether a word may belong to a display name (words to its right, `right`, already do)."""
    if any(c.isdigit() for c in word) or word.lower() in _DATE_WORDS or _ZONE.fullmatch(word):
        return False
    letter = next((c for c in word if c.isalpha()), "")
    if not letter:
        return False
    if letter.islower():
        return word.lower() in _PARTICLES and any(kind == "word" for _, _, kind in right)
    return True


def name_words(display: str) -> str:
    """The name-like words of a display name (outside brackets and quotes), at most MAX_WORDS, joined by
    spaces; "" when it has none. A hyphenated word counts when one of its pieces is name-like."""
    outside = _BRACKETED.sub(" ", display)
    kept = []
    for raw in re.split(r"[\s,;/|]+", outside):
        word = raw.strip(".'’\"()[]{}<>:!?*")
        if not word or "@" in word or any(c.isdigit() for c in word):
            continue
        pieces = [piece for piece in re.split(r"[-‐‑]", word) if piece]
        if any(sum(c.isalpha() for c in piece) >= 2 and not is_ambiguous(piece) for piece in pieces):
            kept.append(word)
    return " ".join(kept[:MAX_WORDS])


class Phrases:
    """Whole display names, each one person's (an index into the scrubber's people), found in any case and
    across any spacing, bounded by non-letters."""

    def __init__(self, phrases: Iterable[tuple[str, int]]) -> None:
        self._patterns: list[tuple[re.Pattern[str], int]] = []
        for phrase, person in phrases:
            words = fold(phrase[:MAX_PHRASE]).text.split()
            if words and name_words(phrase):
                body = r"\s+".join(re.escape(word) for word in words)
                self._patterns.append((re.compile(f"{_NOT_LETTER_BEFORE}{body}{_NOT_LETTER_AFTER}"), person))

    def __bool__(self) -> bool:
        return bool(self._patterns)

    def find(self, text: str) -> list[Hit]:
        if not self._patterns or not text:
            return []
        folded = fold(text)
        return [Hit(*folded.span(*match.span()), person, "name")
                for pattern, person in self._patterns for match in pattern.finditer(folded.text)]


def merged(hits: Sequence[Hit], wider: Sequence[Hit]) -> list[Hit]:
    """`hits` and `wider` in order, without overlaps: a hit of `wider` (a display phrase) replaces the hits it
    overlaps, and of two overlapping `wider` hits the one starting first (then the longer) stays."""
    if not wider:
        return list(hits)
    chosen: list[Hit] = []
    for hit in sorted(wider, key=lambda h: (h.start, -h.end)):
        if not chosen or hit.start >= chosen[-1].end:
            chosen.append(hit)
        elif hit.end > chosen[-1].end:  # overlapping phrases: one span covering both
            last = chosen[-1]
            chosen[-1] = Hit(last.start, hit.end, last.person, "name")
    kept = []
    index = 0  # hits and chosen are both in order: one sweep
    for hit in sorted(hits, key=lambda h: h.start):
        while index < len(chosen) and chosen[index].end <= hit.start:
            index += 1
        if index == len(chosen) or hit.end <= chosen[index].start:
            kept.append(hit)
    return sorted([*kept, *chosen], key=lambda h: h.start)


def mailbox_owner(value: str, find: Callable[[str], Sequence[Hit]]) -> int | None:
    """The person whose address the whole value is ("mailto:jane@...", "jane@..."), by `find`'s hits."""
    address = value.strip()
    if address[:7].lower() == "mailto:":
        address = address[7:].strip()
    for hit in find(address):
        if hit.kind == "address" and hit.certain and hit.start == 0 and hit.end == len(address):
            return hit.person
    return None
