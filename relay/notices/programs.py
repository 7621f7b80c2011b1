"""A program's notices: its `templates:` folder and the language each recipient reads.

The one place that decides a recipient's language and audience (youth wording for the mentees of a
`audience: youth` program), and which of the program's help texts they read: participants read the
program's `language`, staff (coordinator, moderators) its `staff_language`. A member's own language
(issue 16's `language` column) plugs into `participant_language` and nowhere else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from relay.config import ProgramConfig, Settings
from relay.languages import SOURCE, resolve
from relay.localtext import help_text_for
from relay.notices.rendering import Rendered, notice
from relay.store.pairs import Member


def folder(settings: Settings, program: ProgramConfig | None) -> Path | None:
    """The program's own templates (and .po files), relative to relay.yaml; None: ours only."""
    return settings.resolve(program.templates) if program is not None and program.templates else None


def participant_language(program: ProgramConfig | None, member: Member | None = None) -> str:
    """The language of the mail a participant gets: their own (enrolment's --language), else the program's."""
    own = getattr(member, "language", None)
    if own:
        return str(own)
    return program.language if program is not None else SOURCE


def audience(program: ProgramConfig | None, member: Member | None) -> str | None:
    """"youth" for a mentee of a program with `audience: youth` (simpler notices: rendering.notice), else None.
    Mentors are adults: they get the usual wording in every program."""
    if program is None or program.audience != "youth" or getattr(member, "role", None) != "mentee":
        return None
    return "youth"


def safeguarding_help(settings: Settings, program: ProgramConfig | None, language: str) -> str | None:
    """The program's `safeguarding.help_text` for a reader of `language`: their language's entry, else that of
    the language their notice is written in, else its default (relay/localtext.py); None when the program
    gives none (the notice then says the relay's own text, translated)."""
    texts = program.safeguarding.help_text if program is not None and program.safeguarding is not None else None
    return help_text_for(texts, language, resolve(language, folder(settings, program)))


def staff_language(program: ProgramConfig | None) -> str:
    """The language of the mail the program's coordinator and moderators get."""
    return program.staff_language if program is not None else SOURCE


def for_participant(settings: Settings, program: ProgramConfig | None, member: Member | None, name: str,
                    **values: Any) -> Rendered:
    """The notice `name` for one participant, in their language, from the program's templates first."""
    return notice(name, participant_language(program, member), folder=folder(settings, program),
                  audience=audience(program, member), **values)


def for_staff(settings: Settings, program: ProgramConfig | None, name: str, **values: Any) -> Rendered:
    """The notice `name` for the program's staff, in its staff language."""
    return notice(name, staff_language(program), folder=folder(settings, program), **values)
