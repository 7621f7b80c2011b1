"""The contact rule's cues in other languages than English, read from data/contact_cues.yaml (pure data:
which words make digits a phone number or a reference, name a platform or a username, ask to be added,
say "my", "is", link a cue to its handle, and the digits written as words). relay/moderation/rules/
contact_info.py merges them with its English cues when it compiles its expressions, once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

LISTS = ("phone", "reference", "reference_suffixes", "platforms", "handle_cues", "requests", "owners", "connectors",
         "is")


@dataclass(frozen=True)
class Cues:
    """Every language's cues of one kind merged; `digits`: word -> digit."""

    lists: dict[str, tuple[str, ...]] = field(default_factory=dict)
    digits: dict[str, int] = field(default_factory=dict)

    def words(self, kind: str) -> tuple[str, ...]:
        return self.lists.get(kind, ())


def parse(data: Any, source: str = "contact_cues.yaml") -> Cues:
    """The cues of a mapping language -> {kind: [phrases], digits: {word: 0-9}}; ValueError naming the
    language and kind when the data is malformed (a test loads the shipped file)."""
    if not isinstance(data, dict):
        raise ValueError(f"{source}: expected a mapping of languages")
    lists: dict[str, list[str]] = {kind: [] for kind in LISTS}
    digits: dict[str, int] = {}
    for language, kinds in data.items():
        if not isinstance(kinds, dict):
            raise ValueError(f"{source}: {language}: expected a mapping of cue kinds")
        for kind, values in kinds.items():
            if kind == "digits":
                if not isinstance(values, dict) or not all(
                        isinstance(w, str) and isinstance(d, int) and 0 <= d <= 9 for w, d in values.items()):
                    raise ValueError(f"{source}: {language}.digits: expected word: digit (0-9) pairs")
                digits.update({word.lower(): digit for word, digit in values.items()})
            elif kind in lists:
                if not isinstance(values, list) or not all(isinstance(v, str) and v.strip() for v in values):
                    raise ValueError(f"{source}: {language}.{kind}: expected a list of words")
                lists[kind].extend(" ".join(v.lower().split()) for v in values)
            else:
                raise ValueError(f"{source}: {language}: unknown cue kind {kind!r} (known: {', '.join(LISTS)}, digits)")
    return Cues({kind: tuple(dict.fromkeys(words)) for kind, words in lists.items()}, digits)


def shipped() -> Cues:
    text = resources.files("relay.moderation.rules").joinpath("data/contact_cues.yaml").read_text("utf-8")
    return parse(yaml.safe_load(text))
