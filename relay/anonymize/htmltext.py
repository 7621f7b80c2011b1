"""HTML as the partner sees it: read with a real parser, cleaned where the text and the links are.

The stdlib html.parser reads the source into tags, text, comments and declarations, each with the span
of source it came from. Text between two block boundaries (p, div, br, li, td, ...) is one *run*: the
text of its nodes joined, so a name split across tags (`<b>Théo</b>dora`, Word's `<span class=SpellE>`)
is seen whole. `rewrite` asks an editor for the edits of each run and applies them node by node (the
replacement goes where the match starts; the rest of the match is cut from the following nodes), cleans
every attribute value (links through `clean_url`, other values as text: alt, title, value, ...), and
comments (Outlook's conditional comments hold markup and text), CDATA sections (`<![CDATA[...]]>`, shown as
text inside SVG and MathML) and processing instructions (`<?...>`). Hidden text (display:none, tiny fonts,
comments, <title>, <style>) is cleaned like visible text: nothing in the source escapes the cleaning.
Untouched pieces keep their exact source; a changed tag is written out again with its attributes quoted.

`view` gives the inspection its reading of a part: the visible text (runs joined, blocks on their own
lines), the hidden text (comments, CDATA sections and processing instructions among it), and every attribute
value with each decoded reading of the links.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser

from relay.anonymize.links import decoded_forms

URL_ATTRIBUTES = frozenset({"href", "src", "cite", "action", "formaction", "background", "poster", "longdesc",
                            "data", "codebase", "usemap", "srcset", "xlink:href", "lowsrc", "dynsrc"})
_BLOCK = frozenset({
    "address", "article", "aside", "blockquote", "body", "br", "caption", "dd", "div", "dl", "dt", "fieldset",
    "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "head", "header", "hr", "html",
    "li", "main", "nav", "ol", "option", "p", "pre", "section", "table", "tbody", "td", "tfoot", "th", "thead",
    "title", "tr", "ul", "style", "script", "img", "select", "textarea", "iframe", "object", "center",
})  # fmt: skip
_INVISIBLE = frozenset({"head", "title", "style", "script", "template", "noscript"})
# Text outside the runs, cleaned as a whole and written back in its own brackets (what would close it early is
# broken up): comments, CDATA sections, processing instructions.
_ASIDES = {"comment": ("<!--", "-->", "- ->"), "cdata": ("<![CDATA[", "]]>", "] ]>"), "pi": ("<?", ">", "&gt;")}
Edits = list[tuple[int, int, str]]


@dataclass
class _Event:
    kind: str  # start | startend | end | data | comment | cdata | pi | other
    start: int
    end: int = -1
    tag: str = ""
    attrs: list[tuple[str, str | None]] = field(default_factory=list)
    text: str = ""


class _Reader(HTMLParser):
    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.events: list[_Event] = []
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", source)]

    def _at(self) -> int:
        line, column = self.getpos()
        return self._line_starts[line - 1] + column

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.events.append(_Event("start", self._at(), tag=tag, attrs=attrs))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.events.append(_Event("startend", self._at(), tag=tag, attrs=attrs))

    def handle_endtag(self, tag: str) -> None:
        self.events.append(_Event("end", self._at(), tag=tag))

    def handle_data(self, data: str) -> None:
        self.events.append(_Event("data", self._at(), text=data))

    def handle_comment(self, data: str) -> None:
        self.events.append(_Event("comment", self._at(), text=data))

    def handle_decl(self, decl: str) -> None:
        self.events.append(_Event("other", self._at()))

    def unknown_decl(self, data: str) -> None:
        if data.startswith("CDATA["):
            self.events.append(_Event("cdata", self._at(), text=data[len("CDATA["):]))
        else:
            self.events.append(_Event("other", self._at()))

    def handle_pi(self, data: str) -> None:
        self.events.append(_Event("pi", self._at(), text=data))


def _read(source: str) -> list[_Event]:
    reader = _Reader(source)
    reader.feed(source)
    reader.close()
    events = reader.events  # none at all for an empty part (ordinary mail: an empty HTML alternative)
    for index, event in enumerate(events):
        event.end = events[index + 1].start if index + 1 < len(events) else len(source)
    return [e for e in events if e.end > e.start or e.kind == "data"]


def _runs(events: list[_Event]) -> list[list[int]]:
    """Indexes of data events, grouped into runs of text between block boundaries."""
    runs: list[list[int]] = [[]]
    for index, event in enumerate(events):
        if event.kind == "data":
            runs[-1].append(index)
        elif ((event.kind in ("start", "startend", "end") and event.tag in _BLOCK) or event.kind in _ASIDES) \
                and runs[-1]:
            runs.append([])
    return [run for run in runs if run]


def _apply(texts: list[str], edits: Edits) -> list[str]:
    """Apply non-overlapping edits (spans of the joined texts) node by node: the replacement goes into the
    node where the edit starts, and the edited span is cut from every node it covers."""
    result = list(texts)
    bounds = []
    position = 0
    for text in texts:
        bounds.append((position, position + len(text)))
        position += len(text)
    for start, end, replacement in sorted(edits, reverse=True):
        for index, (low, high) in enumerate(bounds):
            if high <= start or low >= end:
                continue
            cut_from, cut_to = max(start, low) - low, min(end, high) - low
            insert = replacement if low <= start < high else ""
            result[index] = result[index][:cut_from] + insert + result[index][cut_to:]
    return result


def rewrite(source: str, edits: Callable[[str], Edits], text: Callable[[str], str],
            url: Callable[[str, str], str | None]) -> str:
    """The HTML with each run's edits applied, every attribute value cleaned (url(name, value) for link
    attributes, None removing the attribute; text(value) for the others) and comments cleaned."""
    events = _read(source)
    replaced: dict[int, str] = {}
    for run in _runs(events):
        texts = [events[i].text for i in run]
        found = edits("".join(texts))
        if found:
            for index, new in zip(run, _apply(texts, found), strict=True):
                if new != events[index].text:
                    replaced[index] = html.escape(new, quote=False)
    for index, event in enumerate(events):
        if event.kind in ("start", "startend") and any(value for _, value in event.attrs):
            attrs: list[tuple[str, str | None]] = []
            changed = False
            for name, value in event.attrs:
                cleaned: str | None = value
                if value:
                    cleaned = url(name, value) if name in URL_ATTRIBUTES else text(value)
                changed = changed or cleaned != value
                if cleaned is not None or value is None:
                    attrs.append((name, cleaned))
            if changed:
                replaced[index] = _tag(event, attrs, source)
        elif event.kind in _ASIDES:
            clean = text(event.text)
            if clean != event.text:
                opening, closing, broken = _ASIDES[event.kind]
                replaced[index] = opening + clean.replace(closing, broken) + closing
    if not replaced:
        return source
    return "".join(replaced.get(i, source[e.start:e.end]) for i, e in enumerate(events))


def _tag(event: _Event, attrs: list[tuple[str, str | None]], source: str) -> str:
    written = "".join(f" {name}" if value is None else f' {name}="{html.escape(value, quote=True)}"'
                      for name, value in attrs)
    raw = source[event.start:event.end]
    closing = "/>" if event.kind == "startend" or raw.rstrip().endswith("/>") else ">"
    # keep whatever followed the tag inside this event's span (nothing, normally)
    tail_at = raw.find(">")
    tail = raw[tail_at + 1:] if tail_at >= 0 else ""
    return f"<{event.tag}{written}{closing}{tail}"


@dataclass(frozen=True)
class View:
    visible: str  # what a person reads, blocks on their own lines
    hidden: str  # text of the head, style, script, template and comments
    attributes: list[str]  # every attribute value, links with each decoded reading


def view(source: str) -> View:
    events = _read(source)
    visible: list[str] = []
    hidden: list[str] = []
    attributes: list[str] = []
    depth = 0
    for event in events:
        if event.kind in ("start", "startend", "end") and event.tag in _INVISIBLE:
            if event.kind == "start":
                depth += 1
            elif event.kind == "end":
                depth = max(0, depth - 1)
        if event.kind == "data":
            (hidden if depth else visible).append(event.text)
        elif event.kind in _ASIDES:
            hidden.append(event.text)
        elif event.kind in ("start", "startend", "end") and event.tag in _BLOCK:
            visible.append("\n")
        if event.kind in ("start", "startend"):
            for name, value in event.attrs:
                if value:
                    attributes.extend(decoded_forms(value) if name in URL_ATTRIBUTES else [value])
    text = re.sub(r"[ \t\r\f\v]*\n\s*", "\n", "".join(visible))
    return View(text.strip(), "\n".join(hidden), attributes)
