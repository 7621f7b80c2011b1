"""HTML as the partner sees it: read with a real parser, cleaned where the text and the links are.

The stdlib html.parser reads the source into tags, text, comments and declarations, each with the span
of source it came from. Text between two block boundaries (p, div, br, li, td, ...) is one *run*: the
text of its nodes joined, so a name split across tags (`<b>Théo</b>dora`, Word's `<span class=SpellE>`)
is seen whole. `rewrite` asks an editor for the edits of each run and applies them node by node (the
replacement goes where the match starts; the rest of the match is cut from the following nodes), cleans
every attribute value (links through `clean_url`, other values as text: alt, title, value, ...), and
comments (Outlook's conditional comments hold markup and text), CDATA sections (`<![CDATA[...]]>`, shown as
text inside SVG and MathML), processing instructions (`<?...>`) and declarations (`<!DOCTYPE ...>`, Outlook's
`<![if !mso]>`). Hidden text (display:none, tiny fonts, comments, <title>, <style>) is cleaned like visible
text: nothing in the source escapes the cleaning.
Untouched pieces keep their exact source; a changed tag is written out again with its attributes quoted.

Tag and attribute names carry text too when a client did not escape what was typed: "Hi Jane Doe
<jane.doe@mail.example>" pasted as HTML is, to a parser, an element named `jane.doe@mail.example`, which a
browser does not show but the source holds. So (htmlnames.py): a tag whose name has no element's shape
(`<jane.doe@...>`), or an unknown element with an attribute of no attribute's shape (`<Bob Smith
<bob@mail.example>>`, to a parser `<bob>` with an attribute `<bob@mail.example`), is read as the text it was,
in its run, and written back escaped (`&lt;...&gt;`), so the scrub and the rules see it as they see typed
text; a tag with an element's shape that HTML, SVG and MathML do not define (`<janedoe>`) becomes text the
same way when the cleaning (text()) would change its name; an attribute that no standard defines and whose
name the cleaning would change (`data-jane-doe`, `jane.doe@mail.example=""`) is dropped; an end tag with
something after its name that the cleaning would change (`</p jane.doe@...>`; browsers ignore it) is written
`</p>`. What the cleaning leaves (a stranger's address, for the scrub) stays for the rules to read (`view`),
and a redaction then takes it away the same way.

`view` gives the inspection its reading of a part: the visible text (runs joined, blocks on their own
lines; a tag read as text among it), the hidden text (comments, CDATA sections, processing instructions and
declarations among it, a DOCTYPE without the W3C's own identifiers), and every attribute value with each
decoded reading of the links, and the names no standard defines of elements and attributes, and what follows
the name in an end tag.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser

from relay.anonymize.htmlnames import known_attribute, known_element, markup
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
# A declaration is cleaned in place too (its own brackets kept as written) but, unlike the asides, does not end
# a run of text: Outlook puts `<![if !supportLists]>` inside a paragraph.
_DECLARATION = "decl"
_TAGS = ("start", "startend", "end")
_END_TAG = re.compile(r"</[^\s/>]+\s*>")
_W3C_IDENTIFIER = re.compile(r"""(["'])(?:-//W3C//|https?://www\.w3\.org/)[^"']*\1""", re.IGNORECASE)
Edits = list[tuple[int, int, str]]


@dataclass
class _Event:
    kind: str  # start | startend | end | data | comment | cdata | pi | decl | other
    start: int
    end: int = -1
    tag: str = ""
    attrs: list[tuple[str, str | None]] = field(default_factory=list)
    text: str = ""
    literal: bool = False  # data that was a tag in the source: always written back escaped

    def as_text(self, source: str) -> None:
        """Read this tag as the text a client failed to escape (`<jane.doe@mail.example>`)."""
        self.kind, self.text, self.literal = "data", html.unescape(source[self.start:self.end]), True


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
        self.events.append(_Event(_DECLARATION, self._at(), text=decl))

    def unknown_decl(self, data: str) -> None:
        if data.startswith("CDATA["):
            self.events.append(_Event("cdata", self._at(), text=data[len("CDATA["):]))
        else:
            self.events.append(_Event(_DECLARATION, self._at(), text=data))

    def handle_pi(self, data: str) -> None:
        self.events.append(_Event("pi", self._at(), text=data))


def _read(source: str) -> list[_Event]:
    reader = _Reader(source)
    reader.feed(source)
    reader.close()
    events = reader.events  # none at all for an empty part (ordinary mail: an empty HTML alternative)
    for index, event in enumerate(events):
        event.end = events[index + 1].start if index + 1 < len(events) else len(source)
        if event.kind in _TAGS and not markup(event.tag, [name for name, _ in event.attrs]):
            event.as_text(source)
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
    node where the edit starts, and the edited span is cut from every node it covers.

    Each node is written once from its pieces, walking the edits in order alongside the nodes: rewriting a node
    for every edit (and looking at every node for each) was quadratic in a long run's edits (a name on every
    line of an HTML part without paragraphs)."""
    ordered = sorted(edits)
    result: list[str] = []
    first = 0  # the first edit that may reach this node or a later one
    low = 0
    for text in texts:
        high = low + len(text)
        while first < len(ordered) and ordered[first][1] <= low:
            first += 1
        pieces: list[str] = []
        cursor = low
        index = first
        while index < len(ordered) and ordered[index][0] < high:
            start, end, replacement = ordered[index]
            index += 1
            if end <= low:
                continue
            pieces.append(text[cursor - low : max(start, low) - low])
            if low <= start:
                pieces.append(replacement)
            cursor = min(end, high)
        pieces.append(text[cursor - low :])
        result.append("".join(pieces) if len(pieces) > 1 else text)
        low = high
    return result


def rewrite(source: str, edits: Callable[[str], Edits], text: Callable[[str], str],
            url: Callable[[str, str], str | None]) -> str:
    """The HTML with each run's edits applied, every attribute value cleaned (url(name, value) for link
    attributes, None removing the attribute; text(value) for the others), comments and declarations cleaned,
    and no tag or attribute name left that text() would change (see the module's docstring)."""
    events = _read(source)
    changes = _Changes(text)
    for event in events:
        if event.kind in _TAGS and not known_element(event.tag) and changes(event.tag):
            event.as_text(source)
    replaced: dict[int, str] = {}
    for run in _runs(events):
        texts = [events[i].text for i in run]
        found = edits("".join(texts))
        if found:
            for index, new in zip(run, _apply(texts, found), strict=True):
                if new != events[index].text:
                    replaced[index] = html.escape(new, quote=False)
    for index, event in enumerate(events):
        if event.kind in ("start", "startend") and event.attrs:
            attrs: list[tuple[str, str | None]] = []
            changed = False
            for name, value in event.attrs:
                if not known_attribute(name) and changes(name):
                    changed = True
                    continue
                cleaned: str | None = value
                if value:
                    cleaned = url(name, value) if name in URL_ATTRIBUTES else text(value)
                changed = changed or cleaned != value
                if cleaned is not None or value is None:
                    attrs.append((name, cleaned))
            if changed:
                replaced[index] = _tag(event, attrs, source)
        elif event.kind == "end" and not _END_TAG.fullmatch(source, event.start, event.end) \
                and changes(source[event.start:event.end]):
            replaced[index] = f"</{event.tag}>"  # what followed the name (browsers ignore it) goes
        elif event.kind in _ASIDES:
            clean = text(event.text)
            if clean != event.text:
                opening, closing, broken = _ASIDES[event.kind]
                replaced[index] = opening + clean.replace(closing, broken) + closing
        elif event.kind == _DECLARATION:
            clean = text(event.text)
            raw = source[event.start:event.end]
            at = raw.find(event.text)
            if clean != event.text and at >= 0:
                replaced[index] = raw[:at] + clean.replace(">", "&gt;") + raw[at + len(event.text):]
        elif event.literal and index not in replaced:
            replaced[index] = html.escape(event.text, quote=False)
    if not replaced:
        return source
    return "".join(replaced.get(i, source[e.start:e.end]) for i, e in enumerate(events))


class _Changes:
    """Whether text() would change a name (as written, or with its character references decoded); asked once
    per name."""

    def __init__(self, text: Callable[[str], str]) -> None:
        self._text = text
        self._seen: dict[str, bool] = {}

    def __call__(self, name: str) -> bool:
        if name not in self._seen:
            decoded = html.unescape(name)
            self._seen[name] = self._text(name) != name or (decoded != name and self._text(decoded) != decoded)
        return self._seen[name]


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
    attributes: list[str]  # every attribute value, links with each decoded reading; then names no standard defines


def view(source: str) -> View:
    events = _read(source)
    visible: list[str] = []
    hidden: list[str] = []
    attributes: list[str] = []
    names: dict[str, None] = {}  # names no standard defines, each once (Word writes `o:p` a thousand times)
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
        elif event.kind == _DECLARATION:
            hidden.append(_W3C_IDENTIFIER.sub(" ", event.text))
        elif event.kind in _TAGS and event.tag in _BLOCK:
            visible.append("\n")
        if event.kind in _TAGS and not known_element(event.tag):
            names[event.tag] = None
        if event.kind == "end" and not _END_TAG.fullmatch(source, event.start, event.end):
            names[source[event.start:event.end].strip("</>")] = None
        if event.kind in ("start", "startend"):
            for name, value in event.attrs:
                if not known_attribute(name):
                    names[html.unescape(name)] = None
                if value:
                    attributes.extend(decoded_forms(value) if name in URL_ATTRIBUTES else [value])
    text = re.sub(r"[ \t\r\f\v]*\n\s*", "\n", "".join(visible))
    return View(text.strip(), "\n".join(hidden), attributes + list(names))
