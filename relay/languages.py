"""Which languages the relay writes in, and the gettext catalogs of its notices (relay/notices/).

English is the source language: the msgids in the templates are the English text, so English needs no
catalog. The other shipped languages have a catalog in relay/notices/locale/<language>/LC_MESSAGES/
notices.po, compiled to notices.mo by `make translations` (the .mo files are committed; a test checks
that they match the .po files). A program adds or adjusts a language with a `<language>.po` file in its
`templates:` folder: its entries win over ours, and it is compiled in memory when first used.
"""

from __future__ import annotations

import gettext
import re
from functools import lru_cache
from io import BytesIO
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALES = Path(__file__).parent / "notices" / "locale"
DOMAIN = "notices"
SOURCE = "en"
SHIPPED = ("en", "es", "fr", "ar", "ru")
# Babel locale for dates and numbers where the bare language would pick a region we do not mean:
# "en" alone is US English (June 1, 2026, 4:00 PM); the programs this relay grew from write 1 June 2026.
_DATE_LOCALE = {"en": "en_GB"}


class LanguageError(ValueError):
    """A language the relay cannot write in (no shipped catalog and no .po file of the program)."""


def normalise(language: str) -> str:
    """BCP 47 as people write it ("es", "pt-BR", "zh_Hant") to the gettext/Babel form ("pt_BR")."""
    return language.strip().replace("-", "_")


@lru_cache(maxsize=256)
def locale(language: str) -> Locale:
    """The Babel locale of a language, for dates, numbers and the writing direction (parsed once per
    language: a sweep formats dates for thousands of notices in the same few)."""
    name = normalise(language)
    try:
        return Locale.parse(_DATE_LOCALE.get(name, name))
    except (UnknownLocaleError, ValueError):
        return Locale.parse("en_GB")


def direction(language: str) -> str:
    """"rtl" for Arabic, Hebrew, Persian, Urdu...; else "ltr" (CLDR's character order)."""
    return "rtl" if locale(language).character_order == "right-to-left" else "ltr"


def html_lang(language: str) -> str:
    """The value of an HTML lang attribute (BCP 47: "pt-BR")."""
    return normalise(language).replace("_", "-")


def program_po(folder: Path | None, language: str) -> Path | None:
    """The program's own catalog for `language` in its templates folder, if it has one."""
    if folder is None:
        return None
    candidate = folder / f"{normalise(language)}.po"
    return candidate if candidate.is_file() else None


def available(folder: Path | None = None) -> list[str]:
    """The languages a program can choose: ours, and those of .po files in its templates folder."""
    found = set(SHIPPED)
    if folder is not None and folder.is_dir():
        found.update(path.stem for path in folder.glob("*.po"))
    return sorted(found)


# BCP 47 (RFC 5646) well-formed tags, as people write them: a language of 2-3 letters (the longer forms
# are reserved, so "Spanish" is a name, not a tag), an optional script (Latn), region (MX, 419), variants
# and extensions; "_" is accepted for "-".
_TAG = re.compile(
    r"(?P<language>[a-z]{2,3})"
    r"(?:[-_](?P<script>[a-z]{4}))?"
    r"(?:[-_](?P<region>[a-z]{2}|[0-9]{3}))?"
    r"(?:[-_](?:[a-z0-9]{5,8}|[0-9][a-z0-9]{3}))*"
    r"(?:[-_][0-9a-wyz](?:[-_][a-z0-9]{2,8})+)*"
    r"(?:[-_]x(?:[-_][a-z0-9]{1,8})+)?", re.IGNORECASE)


def _key(name: str) -> str:
    return normalise(name).casefold()


def candidates(language: str) -> list[str]:
    """The catalog names to try for a tag, most specific first: es-Latn-MX -> es_Latn_MX, es_Latn, es_MX,
    es. LanguageError when the tag is not well-formed BCP 47."""
    text = language.strip()
    match = _TAG.fullmatch(text)
    if match is None:
        raise LanguageError(f"{language!r} is not a language tag (BCP 47, such as es, fr, ar, ru or es-MX)")
    lang = match["language"].lower()
    script = match["script"].title() if match["script"] else None
    region = match["region"].upper() if match["region"] else None
    tried = [lang]
    if region:
        tried.insert(0, f"{lang}_{region}")
    if script:
        tried.insert(0, f"{lang}_{script}")
        if region:
            tried.insert(0, f"{lang}_{script}_{region}")
    return tried


def check(language: str, folder: Path | None = None) -> str:
    """The catalog a tag is written in (es-MX falls back to es unless the program has an es_MX.po), or
    LanguageError naming the languages available."""
    choices = available(folder)
    offer = f"available: {', '.join(choices)}"
    by_key = {_key(name): normalise(name) for name in choices}
    tried = candidates(language)
    for name in tried:
        if name.casefold() in by_key:
            return by_key[name.casefold()]
    try:
        known = Locale.parse(tried[-1]).english_name
    except (UnknownLocaleError, ValueError):
        raise LanguageError(f"unknown language {language!r} ({offer})") from None
    files = " or ".join(f"{name}.po" for name in dict.fromkeys((tried[0], tried[-1])))
    raise LanguageError(f"no notices in language {language!r} ({known}; {offer}; a program adds one with a "
                        f"{files} file in its templates folder)")


def resolve(language: str, folder: Path | None = None) -> str:
    """Like `check`, but never fails: English for a language we cannot write (a notice must still go out)."""
    try:
        return check(language, folder)
    except LanguageError:
        return SOURCE


@lru_cache(maxsize=64)
def _shipped(language: str) -> gettext.NullTranslations:
    if language == SOURCE or not (LOCALES / language / "LC_MESSAGES" / f"{DOMAIN}.mo").is_file():
        return NullTranslations()
    return Translations.load(dirname=str(LOCALES), locales=[language], domain=DOMAIN)


@lru_cache(maxsize=64)
def _with_program_po(language: str, path: str, mtime: float) -> gettext.NullTranslations:
    """The program's catalog compiled in memory, in front of ours (`mtime`: a changed file is read again)."""
    with open(path, "rb") as source:
        catalog = read_po(source, ignore_obsolete=True)
    compiled = BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    theirs = Translations(fp=compiled, domain=DOMAIN)
    theirs.add_fallback(_shipped(language))
    return theirs


def translations(language: str, folder: Path | None = None) -> gettext.NullTranslations:
    """The program's .po for `language` (if any), falling back to our catalog, falling back to English."""
    name = normalise(language)
    po = program_po(folder, name)
    if po is None:
        return _shipped(name)
    return _with_program_po(name, str(po), po.stat().st_mtime)
