"""Rendering a notice in a language: its subject, its text and (where it has one) its HTML.

A notice `name` is the template `name.txt.j2` (and `name.html.j2` when the notice has an HTML part).
Its subject is the block `{% set notice_subject %}...{% endset %}` at the top of the text template, so the
subject is translated and overridden together with the body. Strings are marked with Jinja2's i18n
extension (`{% trans %}`, `_()`) and looked up in the language's catalog (relay/notices/languages.py);
a missing string stays English. A program's `templates:` folder comes first: a template there replaces
ours, and when it has no subject block ours is used.

HTML templates are autoescaped and receive `lang` and `dir` for their <html> element.

An audience (program key `audience: youth`, for the mentees of a youth program: relay/notices/programs.py)
selects `name.youth.txt.j2` (and `.html.j2`) where one exists: simpler wording of the notices mentees get
most. A program's own `name.txt.j2` still wins over our youth wording unless it also has `name.youth.txt.j2`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, TemplateNotFound

from relay.languages import SHIPPED, direction, html_lang, normalise, resolve, translations
from relay.notices.when import format_day, format_duration

TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str | None = None
    language: str = "en"  # the catalog it was written from (its Content-Language)


def _autoescape(name: str | None) -> bool:
    return name is not None and name.endswith(".html.j2")


@lru_cache(maxsize=128)
def environment(language: str, folder: str | None = None) -> Environment:
    """The Jinja2 environment of one language and one program folder (None: ours only)."""
    loaders = [FileSystemLoader(folder)] if folder else []
    env = Environment(
        loader=ChoiceLoader([*loaders, FileSystemLoader(TEMPLATES)]), undefined=StrictUndefined,
        autoescape=_autoescape, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_translations(  # type: ignore[attr-defined]
        translations(language, Path(folder) if folder else None), newstyle=True)
    env.policies["ext.i18n.trimmed"] = True
    env.filters["day"] = lambda value: format_day(value, language)
    env.filters["duration"] = lambda value: format_duration(value, language)
    env.globals.update(lang=html_lang(language), dir=direction(language), language=language)
    return env


def _subject_of(module: Any) -> str | None:
    subject = getattr(module, "notice_subject", None)
    return " ".join(str(subject).split()) if subject is not None else None


def _language(language: str, folder: Path | None) -> str:
    """The catalog to write in: a shipped one as is, else the closest one (es-MX -> es; unknown -> en)."""
    name = normalise(language)
    return name if name in SHIPPED and folder is None else resolve(language, folder)


def render(template: str, language: str = "en", *, folder: Path | None = None, **values: Any) -> str:
    """One template (e.g. "help_answer_footer.txt.j2") in `language`; the program's folder first."""
    env = environment(_language(language, folder), str(folder) if folder else None)
    return env.get_template(template).render(**values)


def _variant(name: str, kind: str, folder: Path | None, audience: str | None) -> str:
    """The template file of a notice for an audience: "welcome.youth.txt.j2" where there is one (the program's,
    or ours unless the program replaces the plain notice), else "welcome.txt.j2"."""
    plain = f"{name}.{kind}.j2"
    if not audience:
        return plain
    special = f"{name}.{audience}.{kind}.j2"
    if folder is not None and (folder / special).is_file():
        return special
    if (folder is None or not (folder / plain).is_file()) and (TEMPLATES / special).is_file():
        return special
    return plain


def notice(name: str, language: str = "en", *, folder: Path | None = None, audience: str | None = None,
           **values: Any) -> Rendered:
    """The notice `name` ("welcome", "held"...) in `language`: subject, text, and HTML if it has one;
    `audience` ("youth"): its simpler wording where it has one."""
    language = _language(language, folder)
    env = environment(language, str(folder) if folder else None)
    text_name = _variant(name, "txt", folder, audience)
    module = env.get_template(text_name).make_module(values)
    subject = _subject_of(module)
    if subject is None:  # the program's template has no subject block: ours says it
        subject = _subject_of(environment(language).get_template(text_name).make_module(values)) or ""
    html_name = _variant(name, "html", folder, audience)
    html = None
    # most notices have no HTML part: look for its file first (a stat per folder), since Jinja's miss costs an
    # exception per folder and keeps nothing of it (three times the stats); a file added later is still found
    if any(os.path.isfile(os.path.join(where, html_name)) for where in ([folder] if folder else []) + [TEMPLATES]):
        try:
            html = env.get_template(html_name).render(**values)
        except TemplateNotFound:  # removed meanwhile
            html = None
    return Rendered(subject=subject, text=str(module), html=html, language=language)


def subject(name: str, language: str = "en", *, folder: Path | None = None, **values: Any) -> str:
    """Only the subject of the notice `name` (for listings such as `nudges run --dry-run`)."""
    return notice(name, language, folder=folder, **values).subject
