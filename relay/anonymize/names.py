"""Find the members' real addresses and names in text, written the way people write them.

Shared by the scrub (which replaces what it finds) and the identity rule (which reports what the scrub
left), so that both judge a piece of text alike. Text is folded first (relay.anonymize.fold: case,
accents, NFD, fullwidth and look-alike letters, letters with a stroke such as "ł", "ø", "đ", and Arabic
letters written one for another such as "ة"/"ه", "ى"/"ی"/"ي"), and every match maps back to the text as
written.

What is looked for, for each member:
  - the address, with or without a +tag, in any case, also wrapped at the "@" across a line break
    (with quote markers "> " on the next line); the local part alone when it has 4 characters or more;
  - the full name, any two consecutive words of it, and "Last, First", across spaces, line breaks,
    underscores, dots or hyphens ("amaru_quispe");
  - each word of the name and each piece of a hyphenated word; prefixes of the first name of four
    letters or more ("Theo" for Théodora); every nickname given at enrolment, whole and word by word;
  - German umlauts written out ("Mueller") or dropped ("Muller"), Danish and Norwegian ø and å too ("Soeren",
    "Soren");
  - an apostrophe in any form ("O’Brien", "O´Brien", "Oʼbrien" for "O'Brien", and the reverse: fold.py folds
    them all to "'") or left out ("OBrien").
A word matches between anything that is not a letter: "_", ".", "-" and digits are boundaries inside a
token ("amaru_quispe09", "theo.v").

Distinctive words are found in any case, anywhere. A word is *ambiguous* when it is also an ordinary
word in one of the shipped lists (relay/anonymize/data/common-words-*.txt: "Will", "Rose", "May",
"Hope", "Luz", "Вера"; see common.py for how they were made) or has only two letters. An ambiguous
word counts as the name (and is replaced) only where it reads as one:
  - written with a capital, except at the start of a sentence when a lower-case word follows ("Will
    you...", "Hope you are well") and except in all-capital text ("I WILL");
  - in any case where it stands alone on its line ("- will"), right after a greeting or a closing word
    ("thanks will", "hola luz", "привет вера"), after "my name is"/"call me" and the like (after "I'm",
    "it's", "я", "انا", where an adjective may stand too, only a word that is no ordinary word: "im jo", not
    "it's sunny"), as a vocative at the start of a line ("will, can you..."), or glued to digits, "_" or "."
    ("will_88").
Everywhere else (lower case in running text, "I will send it") it is the word; `find(..., every_form=
True)` reports those too, marked as not certain, for a policy that wants to see them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from relay.anonymize.common import is_common_word, is_place
from relay.anonymize.fold import Folded, fold, fold_word

# Letters also written out with two: German umlauts ("Mueller"), Danish and Norwegian ø and å ("Soeren",
# "Aase"); fold.py gives the one-letter reading ("Muller", "Soren", "Asa").
_TRANSLIT = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue",
                           "ø": "oe", "Ø": "Oe", "å": "aa", "Å": "Aa"})
_GAP = r"[\s_.\-]+"
_NOT_LETTER_BEFORE = r"(?<![^\W\d_])"
_NOT_LETTER_AFTER = r"(?![^\W\d_])"
# Scripts written without spaces between words (Han, kana, bopomofo): a name there stands between other
# letters ("我是王小明，"), so it has no letter boundary to look for.
_UNSPACED = re.compile(r"[\u3040-\u30ff\u3100-\u312f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# Russian declines names ("от Веры Ивановой", from Vera Ivanova): see _ru_cases. Arabic writes "and", "to",
# "with" as a letter joined to the name ("لأحمد").
_CYRILLIC = re.compile(r"[\u0400-\u04ff]+")
_ARABIC = re.compile(r"[\u0621-\u064a]+")
_AR_LETTERS = "وفبلك"
_AR_JOINED = f"[{_AR_LETTERS}]{{1,2}}"
_AT = r"(?:[ \t]*\r?\n[ \t>]*)?@(?:[ \t]*\r?\n[ \t>]*)?"  # an address wrapped at the "@"
MIN_PREFIX = 4
# Bounds on what one name adds to the matcher, whatever a store holds (enrolment refuses longer names): runs
# of words are taken from the first MAX_RUN_WORDS words only (each run adds patterns, and a name of n words
# has n² runs), and prefixes only of a first name up to MAX_PREFIXED letters (a prefix per letter).
MAX_RUN_WORDS = 8
MAX_PREFIXED = 40
_GREETINGS = (
    "hi", "hey", "hello", "dear", "thanks", "thank you", "thx", "ty", "cheers", "best", "regards", "love", "xo",
    "xoxo", "yours", "sincerely", "from", "bye", "see you", "talk soon", "morning", "good morning", "hiya", "yo",
    "hola", "querido", "querida", "gracias", "saludos", "besos", "abrazos", "un abrazo", "atentamente", "buenos dias",
    "bonjour", "salut", "cher", "chere", "merci", "bises", "cordialement", "amities", "coucou",
    "привет", "здравствуй", "здравствуйте", "дорогой", "дорогая", "спасибо", "пока", "целую", "с уважением",
    "مرحبا", "عزيزي", "عزيزتي", "شكرا", "اهلا", "مع تحياتي", "السلام عليكم",
    "你好", "您好", "亲爱的", "谢谢", "こんにちは",
)  # fmt: skip
_INTRODUCTIONS = (
    "my name is", "call me", "signed", "me llamo", "mi nombre es", "je m'appelle", "меня зовут", "اسمي",
)  # fmt: skip
# Words after which a name may stand, but so may an adjective: "it's Sunny" / "it's sunny today", "soy Linda"
# / "soy feliz", "я Вера" / "я рада", "انا سعيد" (I am Saeed / I am happy). They mark a name only when the
# word there is no ordinary word (a short name: "im jo"); an ordinary word after them is the word, unless it
# is written with a capital (the rules below) or the member's whole name follows (matched as a run).
_MAYBE_INTRODUCTIONS = (
    "i'm", "im", "i am", "this is", "it's", "its", "soy", "je suis", "moi c'est", "я", "это", "انا",
)  # fmt: skip


def _cue(words: Iterable[str]) -> re.Pattern[str]:
    """Any of `words` (folded) at the end of the text before a word, with the punctuation that may follow."""
    alternation = "|".join(re.escape(w).replace(r"\ ", r"\s+")
                           for w in sorted({fold_word(w) for w in words}, key=len, reverse=True))
    return re.compile(r"(?:^|[^\w'])(?:" + alternation + r")[\s,.!:;\-–—~，！：、،؛]*$")  # (Arabic comma, semicolon)


_CUE_BEFORE = _cue((*_GREETINGS, *_INTRODUCTIONS))
_MAYBE_CUE_BEFORE = _cue(_MAYBE_INTRODUCTIONS)
# Words after which a place name is the place ("in Lima", "à Paris", "в Сантьяго", "في باريس").
_PLACE_BEFORE = re.compile(r"(?:^|[^\w])(?:in|to|from|of|near|around|across|visited|visiting|visit|en|a|al|de|desde|"
                           r"hasta|visitamos|visite|vers|depuis|au|в|во|из|до|في|الى|من)\s+$")
# How far either side of a word its line is read ("alone on its line", a cue at the line's start): reading a
# line whole for each word on it made the scrub and the identity rule quadratic in the length of a long line (an
# HTML part without line breaks, text pasted as one line) full of words that are also names ("will", "rose").
LINE_REACH = 200
_SENTENCE_END = re.compile(r"(?:^|[.!?…]|\n)[\s\"'“‘(\[«¡¿]*$")


@dataclass(frozen=True)
class Person:
    """What is matched for one member: the real address, the real name, and known nicknames."""

    email: str
    name: str
    nicknames: tuple[str, ...] = ()


@dataclass(frozen=True)
class Hit:
    """text[start:end] is person's address or name; certain is False for an ambiguous word that reads as a
    word where it stands (reported only with every_form)."""

    start: int
    end: int
    person: int
    kind: str  # "address" | "name"
    certain: bool = True


@dataclass(frozen=True)
class _Form:
    person: int
    kind: str
    ambiguous: bool


def _edged(text: str, pattern: str) -> str:
    """`pattern` (for `text`) bounded by non-letters, except at an edge written in a script without spaces;
    an Arabic name may have a particle joined before it ("لأحمد": to Ahmed)."""
    before = "" if _UNSPACED.match(text[:1]) else _NOT_LETTER_BEFORE
    if _ARABIC.match(text[:1]):
        before = f"{_NOT_LETTER_BEFORE}(?:{_AR_JOINED})?"
    after = "" if _UNSPACED.match(text[-1:]) else _NOT_LETTER_AFTER
    return f"{before}{pattern}{after}"


def _given(word: str) -> str:
    """A Chinese or Japanese name written as one word, of three letters or more, without its first letter
    (the family name comes first: 王小明, whom friends call 小明); "" for any other word."""
    return word[1:] if len(word) >= 3 and all(_UNSPACED.match(c) for c in word) else ""


def _words(name: str) -> list[str]:
    return [w for w in re.split(r"\s+", name.strip()) if w]


def _spellings(word: str) -> set[str]:
    """The folded word, with umlauts written out (Müller: mueller), and a name enrolled with them written
    out also as written with umlauts (Mueller: muller, which is how "Müller" folds).

    A word with an apostrophe (every form of which folds to "'") is also read without it ("OBrien").

    The umlaut reading is taken only for an "ae", "oe", "ue" inside the word (a final "e" is not an umlaut
    written out: "Doe" is not "Dö") and only when it does not make an ordinary word of a name that was none
    (else "Doe" would match every "do" and "Do you")."""
    folded = fold_word(word)
    spellings = {folded, fold_word(word.translate(_TRANSLIT))}
    umlaut = re.sub(r"(?<![gq])([aou])e(?=\w)", r"\1", folded)
    if not is_common_word(umlaut):
        spellings.add(umlaut)
    for spelling in [s for s in spellings if "'" in s]:  # "O'Brien" typed without it: "OBrien", "Obrien"
        bare = spelling.replace("'", "")
        if bare and not is_common_word(bare):
            spellings.add(bare)
    return spellings




def _inflected(word: str) -> list[str]:
    """Patterns for the forms a Russian name takes in a sentence besides its own (its cases); none for other
    scripts (an Arabic name's joined particle: `_edged`). Hand-written: no maintained library declines given
    names and surnames, and a name needs only its endings, not a full morphology."""
    if not _CYRILLIC.fullmatch(word):
        return []
    patterns = []
    for stem, endings in _ru_cases(word.lower()):
        if len(stem) >= 3:
            folded = sorted({fold_word(ending) for ending in endings}, key=len, reverse=True)
            patterns.append(f"{re.escape(fold_word(stem))}(?:{'|'.join(re.escape(e) for e in folded)})")
    return patterns


_RU_HUSHING = "жшщчц"  # after these an unstressed "о" is written "е" (Сашей, not Сашой)
_RU_VELAR_HUSHING = "гкхжшщч"  # after these "ы" is written "и" (Ольги, not Ольгы)
# The endings of a surname in -ов/-ин after its stem, either gender: Иванова, Иванову, Ивановым, Иванове,
# Ивановой, Ивановою, Ивановы, Ивановых, Ивановыми
_RU_SURNAME = ("а", "у", "ым", "е", "ой", "ою", "ы", "ых", "ыми")


def _ru_cases(word: str) -> list[tuple[str, tuple[str, ...]]]:
    """A Russian name's case forms as (stem, endings), by its declension: only the endings that declension
    gives, so that an ordinary word sharing the stem is not taken for the name ("верю", I believe, is no form
    of Вера: Веры, Вере, Веру, Верой, Верою). A name ending in another vowel (Шевченко) does not decline.
    A surname also in the forms of the other gender (Иванов's mother "Ивановой"; Иванова's father "Иванов"),
    which name the same family."""
    if len(word) < 3:
        return []
    stem, last = word[:-1], word[-1]
    adjectival = word.endswith(("ый", "ая")) or (word.endswith(("ий", "ой")) and word[:-2].endswith(("к", "ст")))
    if adjectival:  # an adjectival surname: Островский, Ковальская, Толстой, Толстая, Белый
        velar = word[-3] in _RU_VELAR_HUSHING
        return [(word[:-2], ("ий" if velar else "ый", "ой", "ая", "ого", "ому", "им" if velar else "ым", "ом", "ую",
                             "ою", "ие" if velar else "ые", "их" if velar else "ых"))]
    if word.endswith("ий"):  # Василий, Дмитрий
        return [(stem, ("я", "ю", "ем", "и"))]
    if last in "йь":  # Андрей, Николай, Игорь; Нинель
        return [(stem, ("я", "ю", "ем", "е", "и", "ью"))]
    if len(word) >= 6 and word.endswith(("ова", "ева", "ёва", "ина", "ына")):  # Иванова, Пушкина (not Нина)
        return [(stem, ("", *_RU_SURNAME))]
    if last == "а":  # Вера, Ольга, Саша, Никита
        plain = "и" if stem[-1] in _RU_VELAR_HUSHING else "ы"
        instrumental = ("ей", "ею") if stem[-1] in _RU_HUSHING else ("ой", "ою")
        return [(stem, (plain, "е", "у", *instrumental))]
    if last == "я":  # Мария, Таня
        return [(stem, ("и", "ю", "ей", "ею") if stem.endswith("и") else ("и", "е", "ю", "ей", "ею"))]
    if last in "оеиыуюэё":
        return []
    if len(word) >= 5 and word.endswith(("ов", "ев", "ёв", "ин", "ын")):  # Иванов, Пушкин (not Лев)
        return [(word, _RU_SURNAME)]
    return [(word, ("а", "у", "ем" if last in _RU_HUSHING else "ом", "е"))]  # Иван, Максимович


def _logins(words: list[str]) -> list[str]:
    """A name of two or more words run together as a login or a handle: every word ("janedoe"), or the first
    word's initial and the last word ("jdoe"); "." marks where a separator may stand. Left out where that
    makes an ordinary word ("Li Ke": "like"; "Peter Rice": "price") or is too short to tell."""
    if len(words) < 2 or any(_UNSPACED.match(word[:1]) for word in words):
        return []
    folded = [fold_word(word) for word in words]
    found = [".".join(folded), f"{folded[0][:1]}.{folded[-1]}"]
    return [login for login in found if len(login) >= 7 and not is_common_word(login.replace(".", ""))]


def is_ambiguous(word: str) -> bool:
    """A word that may be an ordinary word where it stands; two letters are a whole name in Chinese (王明),
    but a given name taken from a Chinese name (海洋 of 王海洋) may be a word ("ocean")."""
    letters = sum(c.isalpha() for c in word)
    short = letters <= 2 and not _UNSPACED.match(word[:1])
    return short or is_common_word(word) or is_place(word)


class NameMatcher:
    """Built once per set of people (cached by `matcher_for`); `find` is pure and cheap to call."""

    def __init__(self, people: Sequence[Person]) -> None:
        alternatives: dict[str, _Form] = {}

        def add(pattern: str, form: _Form) -> None:
            alternatives.setdefault(pattern, form)

        for index, person in enumerate(people):
            local, _, domain = person.email.strip().rpartition("@")
            base = local.split("+", 1)[0]
            if base and domain:
                address = (rf"{re.escape(fold_word(base))}(?:\+[^@\s<>\"']*)?{_AT}{re.escape(fold_word(domain))}"
                           r"(?![\w-]|\.\w)")
                add(address, _Form(index, "address", False))
                if len(base) >= 4:
                    add(rf"(?<![\w.+\-]){re.escape(fold_word(base))}(?![\w-]|\.\w)",
                        _Form(index, "name", False))
            for name in (person.name, *person.nicknames):
                words = _words(name)[:MAX_RUN_WORDS]  # (the words past it are still matched one by one)
                for first in range(len(words)):  # the whole name and every run of two or more words
                    for last in range(first + 2, len(words) + 1):
                        for pattern in self._sequences(words[first:last]):
                            add(pattern, _Form(index, "name", False))
                for login in _logins(words):  # "janedoe", "jdoe", "j.doe": a name as a login or a handle
                    add(_edged(login, re.escape(login).replace(r"\.", "[._\\-]?")), _Form(index, "name", False))
                if len(words) > 1:  # "Last, First" as directories write it
                    for last_word in self._sequences([words[-1]], bounded=False):
                        for rest in self._sequences(words[:-1], bounded=False):
                            add(f"{_NOT_LETTER_BEFORE}{last_word},?\\s+{rest}{_NOT_LETTER_AFTER}",
                                _Form(index, "name", False))
                words = _words(name)
                parts = {*words, *(piece for word in words for piece in re.split(r"[-‐‑]", word))}
                given = {name for part in parts if (name := _given(part))}
                for part in parts | given:
                    if sum(c.isalpha() for c in part) < 2:
                        continue
                    for spelling in _spellings(part):
                        add(self._bounded(spelling), _Form(index, "name", part in given or is_ambiguous(part)))
                    for pattern in _inflected(part):  # a declined form may be an ordinary word ("в мире")
                        add(f"{_NOT_LETTER_BEFORE}{pattern}{_NOT_LETTER_AFTER}", _Form(index, "name", True))
            first_name = _words(person.name)[:1]
            if first_name and MIN_PREFIX < sum(c.isalpha() for c in first_name[0]) <= MAX_PREFIXED:
                word = first_name[0]
                for length in range(MIN_PREFIX, len(word)):
                    prefix = word[:length]
                    if not prefix[-1].isalpha():
                        continue
                    for spelling in _spellings(prefix):
                        add(self._bounded(spelling), _Form(index, "name", is_ambiguous(prefix)))
        ordered = sorted(alternatives.items(), key=lambda item: (item[1].kind != "address", -len(item[0])))
        self._forms = [form for _, form in ordered]
        # A lookahead on the characters a match can start with lets the engine skip most positions at once
        # instead of trying every alternative there.
        words = [w for person in people
                 for w in [person.email, *re.split(r"[\s\-‐‑]+", " ".join((person.name, *person.nicknames)))] if w]
        words += [_given(w) for w in words if _given(w)]
        initials = {fold_word(w)[:1] for w in words} | {fold_word(w.translate(_TRANSLIT))[:1] for w in words}
        if any(_ARABIC.fullmatch(w) for w in words):
            initials |= {fold_word(letter) for letter in _AR_LETTERS}
        lookahead = "[" + "".join(re.escape(c) for c in sorted(initials - {""})) + "]"
        body = "|".join(f"(?P<g{i}>{p})" for i, (p, _) in enumerate(ordered))
        self._pattern = re.compile(f"(?={lookahead})(?:{body})") if ordered else None

    @staticmethod
    def _bounded(spelling: str) -> str:
        return _edged(spelling, re.escape(spelling))

    @staticmethod
    def _sequences(words: list[str], bounded: bool = True) -> list[str]:
        """Patterns for words in this order, each in each spelling, across any gap."""
        options = [sorted(_spellings(word)) for word in words]
        patterns = [""]
        for choices in options:
            patterns = [f"{p}{_GAP if p else ''}{re.escape(c)}" for p in patterns for c in choices][:16]
        return [_edged(words[0] + words[-1], p) if bounded else p for p in patterns]

    def find(self, text: str, *, every_form: bool = False) -> list[Hit]:
        """Where the people's addresses and names stand in text (sorted, never overlapping)."""
        if self._pattern is None or not text:
            return []
        return self.find_folded(text, fold(text), every_form=every_form)

    def find_folded(self, text: str, folded: Folded, *, every_form: bool = False) -> list[Hit]:
        """`find` with `text` folded already (`folded` is fold(text))."""
        if self._pattern is None or not text:
            return []
        hits: list[Hit] = []
        for match in self._pattern.finditer(folded.text):
            form = self._forms[int(match.lastgroup[1:])]  # type: ignore[index]
            start, end = folded.span(*match.span())
            certain = not form.ambiguous or reads_as_name(text, start, end)
            if certain or every_form:
                hits.append(Hit(start, end, form.person, form.kind, certain))
        return hits

    def found_in(self, text: str) -> bool:
        return any(hit.certain for hit in self.find(text))


def reads_as_name(text: str, start: int, end: int) -> bool:
    """Whether an ambiguous word at text[start:end] is used as a name there (see the module docstring)."""
    word = text[start:end]
    before, after = text[max(0, start - 1):start], text[end:end + 2]
    if (before and (before.isdigit() or before in "_.")) or (after[:1] and (after[:1].isdigit() or after[:1] == "_")):
        return True  # glued into a user name: will_88, 88will, x.will
    if after[:1] == "." and after[1:2].isalnum():
        return True  # will.smith
    line_start, clipped = _line_start(text, start)
    line_end = text.find("\n", end, end + LINE_REACH)
    line_end = min(end + LINE_REACH, len(text)) if line_end < 0 else line_end
    rest = text[line_start:start] + text[end:line_end]
    if not any(c.isalnum() for c in rest):
        return True  # alone on its line: a signature
    # past the reach, "_": no cue starts there (a cue is its own word) and nothing before it is empty
    leading = ("_" if clipped else "") + fold(text[line_start:start]).text
    if _CUE_BEFORE.search(leading):
        return True
    if _MAYBE_CUE_BEFORE.search(leading) and not is_common_word(word) and not is_place(word):
        return True  # "im jo"; not "it's sunny", "انا سعيد"
    if not leading.strip(" \t-–—~*>") and text[end:end + 1] in (",", "!", ":", "，", "！", "：", "、", "،"):
        return True  # vocative at the start of a line: "will, can you ..."
    if not word[:1].isupper():
        return False
    if word.isupper() and len(word) > 1 and _shouting(text, start, end):
        return False
    if is_place(word) and _PLACE_BEFORE.search(fold(text[max(0, start - 30):start]).text):
        return False  # "we visited Lima", "el viaje a París": the place, not the person
    if is_common_word(word) and _SENTENCE_END.search(text[max(0, start - 40):start]):
        following = re.match(r"[ \t]+(\w)", text[end:end + 8])
        if following is not None and following.group(1).islower():
            return False  # "Will you", "Hope you are well", "May I"
    return True


def _line_start(text: str, start: int) -> tuple[int, bool]:
    """Where the line of text[start] starts, looking back at most LINE_REACH characters; and whether it was cut
    there (the line goes on before)."""
    reach = max(0, start - LINE_REACH)
    newline = text.rfind("\n", reach, start)
    return (newline + 1, False) if newline >= 0 else (reach, reach > 0)


def _shouting(text: str, start: int, end: int) -> bool:
    neighbours = re.findall(r"[^\W\d_]{2,}", text[max(0, start - 30):start] + " " + text[end:end + 30])
    return any(word.isupper() for word in neighbours)


SIEVE_FROM = 4  # people (one per address) from which a matcher first sieves out those a text cannot name


class SievedMatcher:
    """A NameMatcher for many people (a group, and everyone else enrolled in the sender's programs) at the cost
    of the people a text may name.

    One regular expression with every person's forms tries each form at every letter of the text: its cost
    grows with the people (2 people: 0.15 ms for 2,000 characters; 10: 8 ms; 300: 2.4 s). Each form a person
    is matched by contains a literal piece of text that any match shows (`_keys`): a word of the name that
    ends a run of letters there (it is bounded by non-letters, or followed by a gap or "@"), so the end of one
    of the text's letter runs; a few pieces (a Russian stem, a name in a script written without spaces, an
    address's local part made of digits) are looked for as they are. A name part that is an ordinary word
    ("will", "grace") is a whole letter run where it matches, and counts only where it reads as a name
    (`reads_as_name`): unless every form is asked for, it makes its people candidates only there, so that
    the common words of hundreds of names do not bring their people into every search. `find` keeps the
    candidates and runs the NameMatcher of those alone (cached: mostly the members, or nobody), their hits
    renumbered as the whole list's. People keep their order, so the same form of two people goes to the
    first, as in NameMatcher.

    With every_form, `find` gives exactly what NameMatcher(people) gives. Without, everything it gives (a
    form left out of the search can no longer hide, in one expression's scan, a form that starts inside it)
    and possibly more (tests/test_bystanders.py compares both on many names and texts)."""

    def __init__(self, people: Sequence[Person]) -> None:
        self._people = tuple(people)
        self._ends: dict[str, list[int]] = {}
        self._words: dict[str, list[int]] = {}
        self._pieces: list[tuple[str, int]] = []
        self._always: list[int] = []
        for index, person in enumerate(self._people):
            keys = _keys(person)
            if keys.always:
                self._always.append(index)
            for end in keys.ends:
                self._ends.setdefault(end, []).append(index)
            for word in keys.words:
                self._words.setdefault(word, []).append(index)
            self._pieces += [(piece, index) for piece in keys.pieces]
        self._lengths = sorted({len(end) for end in self._ends})

    def people_in(self, text: str, folded: Folded | None = None, *, every_form: bool = True) -> list[int]:
        """The indexes of the people whose forms `text` may show, in order (`folded`: fold(text), if known)."""
        folded = folded or fold(text)
        found = set(self._always)
        ends, lengths, words = self._ends, self._lengths, self._words
        runs = set(_LETTER_RUN.findall(folded.text))
        for run in runs:
            for length in lengths:
                if length > len(run):
                    break
                found.update(ends.get(run[-length:], ()))
            if every_form:
                found.update(words.get(run, ()))
        if not every_form and any(run in words for run in runs):
            for match in _LETTER_RUN.finditer(folded.text):
                people = words.get(match.group())
                if people and not found.issuperset(people) and reads_as_name(text, *folded.span(*match.span())):
                    found.update(people)
        found.update(index for piece, index in self._pieces if index not in found and piece in folded.text)
        return sorted(found)

    def find(self, text: str, *, every_form: bool = False) -> list[Hit]:
        if not text:
            return []
        folded = fold(text)
        chosen = self.people_in(text, folded, every_form=every_form)
        if not chosen:
            return []
        hits = _plain_matcher(tuple(self._people[i] for i in chosen)).find_folded(text, folded, every_form=every_form)
        return [Hit(hit.start, hit.end, chosen[hit.person], hit.kind, hit.certain) for hit in hits]

    def found_in(self, text: str) -> bool:
        return any(hit.certain for hit in self.find(text))


_LETTER_RUN = re.compile(r"[^\W\d_]+")


def _last_run(literal: str) -> str:
    runs = _LETTER_RUN.findall(literal)
    return runs[-1] if runs else ""


@dataclass(frozen=True)
class _Keys:
    """What SievedMatcher looks for to know that a text may name one person. Every pattern NameMatcher builds
    for the person has one of these in any text it matches: an `end` ends one of the text's letter runs; a
    `word` (an ambiguous form, a word of letters alone) is one of them, and is reported only where it reads as
    a name; a `piece` stands in the text as written. `always`: some pattern has none of them (a name or
    address without letters), so the person is always looked for."""

    ends: frozenset[str]
    words: frozenset[str]
    pieces: frozenset[str]
    always: bool


@lru_cache(maxsize=4096)
def _keys(person: Person) -> _Keys:
    """`_Keys` of `person`: mirrors NameMatcher.__init__ form by form."""
    ends: set[str] = set()
    words: set[str] = set()
    pieces: set[str] = set()
    always = False

    def ending(literal: str) -> None:  # `literal` is followed, in any match, by a non-letter or the text's end
        nonlocal always
        run = _last_run(literal)
        if run:
            ends.add(run)
        elif literal:
            pieces.add(literal)
        else:
            always = True

    def bounded(spelling: str, ambiguous: bool) -> None:  # `_edged(spelling, ...)`: open after an unspaced letter
        if _UNSPACED.match(spelling[-1:]):
            pieces.add(spelling)
        elif ambiguous and _LETTER_RUN.fullmatch(spelling) and not _ARABIC.search(spelling) \
                and not _UNSPACED.search(spelling):
            words.add(spelling)  # the whole match is this letter run: reported as found only where it reads so
        else:
            ending(spelling)

    local, _, domain = person.email.strip().rpartition("@")
    base = local.split("+", 1)[0]
    if base and domain:
        ending(fold_word(base))  # followed by "+tag", "@" (after a line break) or a non-word character
    for name in (person.name, *person.nicknames):
        run_words = _words(name)[:MAX_RUN_WORDS]
        for last in range(1, len(run_words)):  # each run of two or more words ends with one of these
            for spelling in _spellings(run_words[last]):
                bounded(spelling, False)
        for login in _logins(run_words):
            ending(login)
        if len(run_words) > 1:  # "Last, First": the last word, followed by ",", a space
            for spelling in _spellings(run_words[-1]):
                ending(spelling)
        name_words = _words(name)
        parts = {*name_words, *(piece for word in name_words for piece in re.split(r"[-‐‑]", word))}
        given = {name for part in parts if (name := _given(part))}
        for part in parts | given:
            if sum(c.isalpha() for c in part) < 2:
                continue
            for spelling in _spellings(part):
                bounded(spelling, part in given or is_ambiguous(part))
            if _CYRILLIC.fullmatch(part) and len(part) >= 3:  # `_inflected`: the stem, then an ending
                for stem, _endings in _ru_cases(part.lower()):
                    if len(stem) >= 3:
                        pieces.add(fold_word(stem))
    first_name = _words(person.name)[:1]
    if first_name and MIN_PREFIX < sum(c.isalpha() for c in first_name[0]) <= MAX_PREFIXED:
        word = first_name[0]
        for length in range(MIN_PREFIX, len(word)):
            prefix = word[:length]
            if prefix[-1].isalpha():
                for spelling in _spellings(prefix):
                    bounded(spelling, is_ambiguous(prefix))
    return _Keys(frozenset(ends), frozenset(words - ends), frozenset(pieces), always)


@lru_cache(maxsize=256)
def _plain_matcher(people: tuple[Person, ...]) -> NameMatcher:
    return NameMatcher(people)


@lru_cache(maxsize=256)
def matcher_for(people: tuple[Person, ...]) -> NameMatcher | SievedMatcher:
    """One matcher per set of people: built once per conversation, reused for every message (for more than a
    few people, one that sieves first: SievedMatcher)."""
    return SievedMatcher(people) if len(people) >= SIEVE_FROM else _plain_matcher(people)


def replace(text: str, hits: Iterable[Hit], replacements: Sequence[tuple[str, str]]) -> str:
    """text with each certain hit replaced: replacements[person] is (address stand-in, name stand-in)."""
    pieces: list[str] = []
    position = 0
    for hit in hits:
        if not hit.certain or hit.start < position:
            continue
        pieces.append(text[position:hit.start])
        address, name = replacements[hit.person]
        pieces.append(address if hit.kind == "address" else name)
        position = hit.end
    pieces.append(text[position:])
    return "".join(pieces)
