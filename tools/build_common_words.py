"""Build relay/anonymize/data/common-words-<lang>.txt: name parts that are also ordinary words.

A name part is "common" when its lower-case form is an ordinary word that people write often: it is an
entry written in lower case in the language's Hunspell dictionary (names are written with a capital
there, so "jane" is not in it but "will", "rose" and "hope" are) AND its frequency in wordfreq is at
least ZIPF (about once in 30,000 words), so rare dictionary words do not count.

Given names are then taken out (privacy first: "jane" and "john" are lower-case Hunspell entries, slang,
and frequent in wordfreq only because wordfreq folds case, so "Jane told me" would have been read as a
word). A word that is a given name in any country of gender-guesser's name dictionary (nam_dict.txt by
Jörg Michael, GFDL, read at build time only) stays only if it is far more an ordinary word than a name:
  - it is language-specific: its Zipf frequency in this language is at least SPECIFIC (0.6, about four
    times) above the median of the other Latin-script languages en/es/fr/de/it/pt (a name is written
    about as often in every language, an ordinary word mostly in its own: "will", "hope", "luz"), or
  - it is an ordinary lower-case dictionary word in two of the languages here with Zipf at least
    SHARED_ZIPF (4.5) in each ("rose": en and fr; "peter": en "peter out" and fr "péter").
Names kept by that test ("Will", "Rose", "Hope") are replaced where they read as a name, and the identity
rule reports every other occurrence (common_word_parts: every_form, the default), so the policy decides.

ALSO_WORDS adds a few words by hand, each reviewed (see its comment): everyday adjectives that the
dictionaries give only through an affix rule of their masculine entry (es "lindo" -> "linda", fr "clair" ->
"claire"), so they are no entries, and words that are as ordinary in Portuguese or Italian as in Spanish,
which the given-name test above (comparing with pt and it) takes for names. A name replaced in an
ordinary sentence ("la ciudad es muy linda" -> "muy Maple") damaged every such message of a Linda's pair.

Run once by a maintainer (needs `pip install wordfreq gender-guesser` and Debian's hunspell-en-us, hunspell-es,
hunspell-fr, hunspell-ru and hunspell-ar); the relay only reads the files it writes:

    .venv/bin/python tools/build_common_words.py

Sources and licences are written at the top of each file (see also relay/anonymize/data/SOURCES.md).
"""

from __future__ import annotations

import statistics
import unicodedata
from importlib import resources
from pathlib import Path

import wordfreq

ZIPF = 3.5
SPECIFIC = 0.6
SHARED_ZIPF = 4.5
LATIN = ("en", "es", "fr", "de", "it", "pt")
DICTIONARIES = {
    "en": "/usr/share/hunspell/en_US.dic",
    "es": "/usr/share/hunspell/es_ES.dic",
    "fr": "/usr/share/hunspell/fr.dic",
    "ru": "/usr/share/hunspell/ru_RU.dic",
    "ar": "/usr/share/hunspell/ar.dic",
}
OUT = Path(__file__).resolve().parent.parent / "relay" / "anonymize" / "data"
ALSO_WORDS = {
    # feminine forms of entries, everyday words (wordfreq Zipf in es: linda 4.58, bella 4.49, rosa 4.71);
    # "linda" and "rosa" are ordinary words in pt and it too, so the given-name test (0.57, 0.34) misjudged
    # them; "bella" passes it (0.73) but is no entry of its own
    "es": ("bella", "linda", "rosa"),
    # feminine forms of the entries "beau", "clair" (Zipf belle 5.31, claire 4.62; given-name test 1.72, 0.83)
    "fr": ("belle", "claire"),
}


def lower_case_entries(path: str) -> set[str]:
    words: set[str] = set()
    with open(path, encoding="utf-8", errors="replace") as file:
        next(file)  # the entry count
        for line in file:
            word = line.split("/", 1)[0].split("\t", 1)[0].strip()
            if len(word) >= 2 and word == word.lower() and any(c.isalpha() for c in word):
                words.add(unicodedata.normalize("NFC", word))
    return words


def given_names() -> set[str]:
    """Every given name of gender-guesser's nam_dict.txt, lower case, without accents."""
    text = resources.files("gender_guesser").joinpath("data", "nam_dict.txt").read_text("iso-8859-1")
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith(("#", "=")) or len(line) < 30:
            continue
        name = line[3:29].strip()
        if name and " " not in name and "+" not in name and "<" not in name:
            names.add(_plain(name))
    return names


def _plain(word: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", word.casefold()) if not unicodedata.combining(c))


def specific(word: str, lang: str) -> float:
    """How much more often the word is written in lang than in the other Latin-script languages (Zipf)."""
    plain = _plain(word)  # "maría" is written "Maria" in most languages: compare the name, not the spelling
    others = [wordfreq.zipf_frequency(plain, other) for other in LATIN if other != lang]
    return wordfreq.zipf_frequency(plain, lang) - statistics.median(others)


def keep_given_name(word: str, lang: str, lists: dict[str, set[str]]) -> bool:
    if lang in LATIN and specific(word, lang) >= SPECIFIC:
        return True
    plain = _plain(word)
    shared = [other for other, words in lists.items() if plain in {_plain(w) for w in words}]
    return len(shared) >= 2 and all(wordfreq.zipf_frequency(plain, other) >= SHARED_ZIPF for other in shared)


def main() -> None:
    lists = {lang: {w for w in lower_case_entries(path) if wordfreq.zipf_frequency(w, lang) >= ZIPF}
             for lang, path in DICTIONARIES.items()}
    names = given_names()
    for lang, path in DICTIONARIES.items():
        dropped = {w for w in lists[lang] if _plain(w) in names and not keep_given_name(w, lang, lists)}
        common = sorted((lists[lang] - dropped) | set(ALSO_WORDS.get(lang, ())))
        header = (
            f"# Ordinary {lang} words that are also given names or surnames somewhere (one a line, lower case, NFC).\n"
            f"# Built by tools/build_common_words.py: lower-case entries of the Hunspell dictionary {Path(path).name}\n"
            f"# (Debian hunspell-{lang}) whose wordfreq {wordfreq.__version__ if hasattr(wordfreq, '__version__') else '3.1'}"
            f" Zipf frequency in {lang} is at least {ZIPF}.\n"
            f"# Given names (gender-guesser nam_dict.txt) taken out unless far more an ordinary word: {len(dropped)}.\n"
            "# Word frequencies: wordfreq (Robyn Speer), data CC BY-SA 4.0. Dictionaries: see SOURCES.md.\n"
        )
        (OUT / f"common-words-{lang}.txt").write_text(header + "\n".join(common) + "\n", encoding="utf-8")
        print(lang, len(common), "given names dropped:", len(dropped))


if __name__ == "__main__":
    main()
