"""YAML files with line numbers: load a document and remember the line of every key and item.

PyYAML's composed node tree knows where every node starts; this module turns that tree into plain
Python data plus a map from a data path (tuple of keys and indexes) to its line, so that validation
errors can be reported as `file:line: message`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

Path_ = tuple[str | int, ...]


class ConfigError(Exception):
    """A configuration problem, already formatted as `file:line: message` lines."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("\n".join(messages))
        self.messages = messages


@dataclass
class Located:
    """Data loaded from one YAML file with the line of each path in it."""

    file: Path
    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)

    def line_of(self, path: Path_) -> int:
        """The line of the deepest known node on `path` (1 if nothing is known)."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return 1

    def error(self, path: Path_, message: str) -> str:
        return f"{self.file}:{self.line_of(path)}: {message}"


def load(file: Path) -> Located:
    """Read and compose `file`; YAML syntax errors become a ConfigError with the offending line."""
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{file}:1: file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{file}:1: cannot read file: {exc}"]) from None
    try:
        _refuse_aliases(text, file)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise ConfigError([f"{file}:{line}: invalid YAML: {exc.problem or exc.context}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{file}:1: invalid YAML: {exc}"]) from None
    located = Located(file=file, data=None)
    if node is None:
        located.data = {}
        return located
    located.data = _convert(node, (), located.lines, file)
    return located


def _refuse_aliases(text: str, file: Path) -> None:
    """ConfigError at the first alias (`*name`): our files do not need them, and a few nested ones make a
    small file expand to millions of values (an "alias bomb" that took the CPU for most of a minute)."""
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent):
            line = event.start_mark.line + 1 if event.start_mark is not None else 1
            raise ConfigError([f"{file}:{line}: aliases (*{event.anchor}) are not supported; write the value out"])


def _construct(node: yaml.Node, file: Path) -> Any:
    """One scalar (or key) as Python data; a value Python cannot hold (an integer of thousands of digits,
    a timestamp out of range) is a ConfigError at its line."""
    try:
        return yaml.SafeLoader(file.name).construct_object(node, deep=True)
    except yaml.YAMLError as exc:
        raise ConfigError([f"{file}:{node.start_mark.line + 1}: invalid value: {exc}"]) from None
    except (ValueError, OverflowError) as exc:
        text = "a number with thousands of digits is not a setting" if "digits" in str(exc) else str(exc)
        raise ConfigError([f"{file}:{node.start_mark.line + 1}: invalid value: {text}"]) from None


def _convert(node: yaml.Node, path: Path_, lines: dict[Path_, int], file: Path) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise ConfigError([f"{file}:{key_node.start_mark.line + 1}: merge keys (<<) are not supported; "
                                   "write the keys out"])
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConfigError([f"{file}:{key_node.start_mark.line + 1}: keys must be plain scalars"])
            key = _construct(key_node, file)
            if not isinstance(key, str | int | float | bool):
                raise ConfigError([f"{file}:{key_node.start_mark.line + 1}: keys must be plain scalars"])
            if key in result:
                raise ConfigError([f"{file}:{key_node.start_mark.line + 1}: duplicate key {key!r}"])
            result[key] = _convert(value_node, (*path, str(key)), lines, file)
            lines[(*path, str(key))] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, (*path, i), lines, file) for i, item in enumerate(node.value)]
    return _construct(node, file)
