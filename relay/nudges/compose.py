"""Rendering the relay's scheduled mail: the program's own templates first (its `templates` folder,
relative to relay.yaml), then the defaults in relay/notices/templates/. Templates see handles,
subjects, dates and the program's texts only, never a real address or name."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined

from relay import notices
from relay.config import ProgramConfig, Settings


@lru_cache(maxsize=64)
def _environment(folder: str | None) -> Environment:
    loaders = [FileSystemLoader(folder)] if folder else []
    return Environment(
        loader=ChoiceLoader([*loaders, FileSystemLoader(notices.TEMPLATES)]), undefined=StrictUndefined,
        autoescape=False, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
    )


def environment(settings: Settings, program: ProgramConfig) -> Environment:
    folder = str(settings.resolve(program.templates)) if program.templates else None
    return _environment(folder)


def render(settings: Settings, program: ProgramConfig, template: str, values: dict[str, Any]) -> str:
    return environment(settings, program).get_template(template).render(**values)

