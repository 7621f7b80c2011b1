"""Which name parts are also ordinary words ("Will", "Rose", "May", "Hope", "Luz", "Вера", "أمل").

The lists in relay/anonymize/data/common-words-<lang>.txt (en, es, fr, ru, ar) hold, per language, the
lower-case entries of that language's Hunspell dictionary that people write often (wordfreq Zipf
frequency 3.5 or more), and a few everyday words added by hand (the tool's ALSO_WORDS: "linda", "belle");
tools/build_common_words.py made them, data/SOURCES.md names sources and licences. A name part is common
when its folded form (fold.py) is in any list. Such a part is replaced only where it reads as a name
(names.py): replacing it everywhere would damage ordinary sentences.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from relay.anonymize.fold import fold_word

LANGUAGES = ("en", "es", "fr", "ru", "ar")


@cache
def common_words() -> frozenset[str]:
    words: set[str] = set()
    data = resources.files("relay.anonymize").joinpath("data")
    for language in LANGUAGES:
        for line in data.joinpath(f"common-words-{language}.txt").read_text("utf-8").splitlines():
            if line and not line.startswith("#"):
                words.add(fold_word(line))
    return frozenset(words)


@cache
def places() -> frozenset[str]:
    """City names of the time zone database (tzdata, public domain): Lima, Santiago, Paris, Sydney, ..."""
    import zoneinfo

    names = {zone.rsplit("/", 1)[-1].replace("_", " ") for zone in zoneinfo.available_timezones() if "/" in zone}
    return frozenset(fold_word(name) for name in names if " " not in name and name.isalpha())


def is_place(word: str) -> bool:
    return fold_word(word) in places()


def is_common_word(word: str) -> bool:
    return fold_word(word) in common_words()
