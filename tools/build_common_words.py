"""Build relay/anonymize/data/common-words-<lang>.txt: name parts that are also ordinary words.

A name part is "common" when its lower-case form is an ordinary word that people write often: it is an
entry written in lower case in the language's Hunspell dictionary (names are written with a capital
there, so "jane" is not in it but "will", "rose" and "hope" are) AND its frequency in wordfreq is at
least ZIPF (about once in 30,000 words), so rare dictionary words do not count.

Run once by a maintainer (needs `pip install wordfreq` and Debian's hunspell-en-us, hunspell-es,
hunspell-fr, hunspell-ru and hunspell-ar); the relay only reads the files it writes:

    .venv/bin/python tools/build_common_words.py

Sources and licences are written at the top of each file (see also relay/anonymize/data/SOURCES.md).
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

import wordfreq

ZIPF = 3.5
DICTIONARIES = {
    "en": "/usr/share/hunspell/en_US.dic",
    "es": "/usr/share/hunspell/es_ES.dic",
    "fr": "/usr/share/hunspell/fr.dic",
    "ru": "/usr/share/hunspell/ru_RU.dic",
    "ar": "/usr/share/hunspell/ar.dic",
}
OUT = Path(__file__).resolve().parent.parent / "relay" / "anonymize" / "data"


def lower_case_entries(path: str) -> set[str]:
    words: set[str] = set()
    with open(path, encoding="utf-8", errors="replace") as file:
        next(file)  # the entry count
        for line in file:
            word = line.split("/", 1)[0].split("\t", 1)[0].strip()
            if len(word) >= 2 and word == word.lower() and any(c.isalpha() for c in word):
                words.add(unicodedata.normalize("NFC", word))
    return words


def main() -> None:
    for lang, path in DICTIONARIES.items():
        entries = lower_case_entries(path)
        common = sorted(w for w in entries if wordfreq.zipf_frequency(w, lang) >= ZIPF)
        header = (
            f"# Ordinary {lang} words that are also given names or surnames somewhere (one a line, lower case, NFC).\n"
            f"# Built by tools/build_common_words.py: lower-case entries of the Hunspell dictionary {Path(path).name}\n"
            f"# (Debian hunspell-{lang}) whose wordfreq {wordfreq.__version__ if hasattr(wordfreq, '__version__') else '3.1'}"
            f" Zipf frequency in {lang} is at least {ZIPF}.\n"
            "# Word frequencies: wordfreq (Robyn Speer), data CC BY-SA 4.0. Dictionaries: see SOURCES.md.\n"
        )
        (OUT / f"common-words-{lang}.txt").write_text(header + "\n".join(common) + "\n", encoding="utf-8")
        print(lang, len(entries), len(common))


if __name__ == "__main__":
    main()
