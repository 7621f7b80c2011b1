"""Texts an admin writes in YAML for participants, given per language: a policy's notice texts (`notices.held`,
`notices.rejected`, relay/moderation/policy.py) and a program's `safeguarding.help_text` (relay/config.py).

Each is one string or a mapping from language tags (BCP 47: en, es, fr, ar, ru, es-MX) to the text in that
language. A reader gets the text of their own language (es-MX: es-MX, else es), else the one of the language
their notice is written in (a language the relay cannot write falls back to English); what happens when
neither is given is the caller's: a policy's notice falls back to the relay's own text, translated; a help
text to its `default` entry (a helpline's number is better than none).

Pure: validation types for pydantic and the choice of a text; nothing here reads a file or the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator

from relay.languages import LanguageError, candidates

DEFAULT = "default"  # the key of a help text's entry for every language the mapping does not list
SOURCE_LANGUAGE = "en"  # the language of a policy's notice text given as one plain string


def _canonical(tag: str) -> str:
    """The tag as a catalog name (es-mx -> es_MX); ValueError for a tag that is not BCP 47."""
    try:
        return candidates(tag)[0]
    except LanguageError as exc:
        raise ValueError(str(exc)) from None


def _language_key(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a language tag (BCP 47, such as es, fr, ar, ru or es-MX)")
    return _canonical(value)


def _language_or_default(value: object) -> str:
    if value == DEFAULT:
        return DEFAULT
    return _language_key(value)


def _text(value: str) -> str:
    if not value.strip():
        raise ValueError("the text cannot be blank (leave the entry out instead)")
    return value


def _mapping(value: object, plain_key: str, allowed: str) -> object:
    """A plain string is the text of `plain_key`; a mapping is checked for tags written twice (es and ES)."""
    if isinstance(value, str):
        return {plain_key: value}
    if not isinstance(value, Mapping):
        raise ValueError(f"expected a text, or a mapping of {allowed} to texts (es: ..., fr: ...)")
    seen: dict[str, str] = {}
    for key in value:
        if not isinstance(key, str):
            continue  # reported at its own line by the key's validator
        try:
            name = DEFAULT if key == DEFAULT else _canonical(key)
        except ValueError:
            continue
        if name.casefold() in seen:
            raise ValueError(f"{seen[name.casefold()]!r} and {key!r} name the same language")
        seen[name.casefold()] = key
    return value


def _english(value: object) -> object:
    return _mapping(value, SOURCE_LANGUAGE, "languages")


def _with_default(value: object) -> object:
    return _mapping(value, DEFAULT, "languages (and default)")


def _needs_default(value: dict[str, str]) -> dict[str, str]:
    if DEFAULT not in value:
        raise ValueError("a mapping of languages needs a `default:` text, sent in every language it does not "
                         "list (the helpline must reach every child)")
    return value


LanguageKey = Annotated[str, BeforeValidator(_language_key)]
LanguageOrDefault = Annotated[str, BeforeValidator(_language_or_default)]
Text = Annotated[str, AfterValidator(_text)]

# A policy's notice text: language -> text; one plain string is the English text; {} is "the relay's own".
PolicyText = Annotated[dict[LanguageKey, Text], BeforeValidator(_english)]
# A help text: language -> text with a `default` entry; one plain string is the default for every language.
HelpText = Annotated[dict[LanguageOrDefault, Text], BeforeValidator(_with_default), AfterValidator(_needs_default)]


def pick(texts: Mapping[str, str], *languages: str) -> str | None:
    """The text of the first of `languages` that `texts` has, each tried most specific first (es-MX, then es);
    None when it has none of them (the `default` entry is the caller's choice)."""
    by_name = {name.casefold(): text for name, text in texts.items() if name != DEFAULT}
    for language in languages:
        try:
            tried = candidates(language)
        except LanguageError:
            continue
        for name in tried:
            found = by_name.get(name.casefold())
            if found is not None:
                return found
    return None


def help_text_for(texts: Mapping[str, str] | None, reader: str, written: str) -> str | None:
    """A program's help text for a reader of `reader`'s language whose notice is written in `written`: their
    language's, else the notice's, else the default; None when the program gives none (the relay's own)."""
    if not texts:
        return None
    chosen = pick(texts, reader, written) or texts.get(DEFAULT)
    return chosen.strip() if chosen else None
