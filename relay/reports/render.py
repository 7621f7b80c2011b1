"""Rendering a program's figures (relay.reports.figures) as text for a terminal, JSON or CSV. JSON and CSV
are written as they are made (`write_json`, `write_csv`): a year of a large program lists every open pair
of every week, more than is worth holding as one string."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

from relay.reports.figures import WeekPairs


def _value(value: Any) -> str:
    return "n/a" if value is None else str(value)


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def rows(figures: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """The figures as (section, figure, value) rows; weekly counts as one row per week and pair."""
    return list(iter_rows(figures))


def iter_rows(figures: dict[str, Any]) -> Iterator[tuple[str, str, Any]]:
    """`rows`, one at a time."""
    for row in _iter_rows(figures):
        yield from (row.rows() if isinstance(row, _ByPair) else row)


@dataclass(frozen=True)
class _ByPair:
    """A week's messages by pair, as rows ("messages", "<week>.pair_<id>", count)."""

    week: str
    counts: Mapping[str, int]

    def rows(self) -> list[tuple[str, str, Any]]:
        return [("messages", f"{self.week}.pair_{pair}", count) for pair, count in self.counts.items()]


def _iter_rows(figures: dict[str, Any]) -> Iterator[list[tuple[str, str, Any]] | _ByPair]:
    found: list[tuple[str, str, Any]] = []
    for section in ("pairs", "reply_time", "nudges", "moderation", "attempts"):
        for name, value in figures[section].items():
            if isinstance(value, dict):
                found.extend((section, f"{name}.{key}", inner) for key, inner in value.items())
            else:
                found.append((section, name, value))
    found.append(("messages", "total", figures["messages"]["total"]))
    for week in figures["messages"]["weeks"]:
        found.append(("messages", f"{week['week']}.pairs_open", week["pairs_open"]))
        found.append(("messages", f"{week['week']}.messages", week["messages"]))
        found.append(("messages", f"{week['week']}.per_pair", week["per_pair"]))
        yield found
        found = []
        yield _ByPair(week["week"], week["by_pair"])
    groups = figures["groups"]
    found.append(("groups", "total", groups["total"]))
    found.append(("groups", "messages", groups["messages"]))
    found.extend(("groups", f"reply_time.{key}", value) for key, value in groups["reply_time"].items())
    for group in groups["items"]:
        name = f"{group['kind']}_{group['id']}"
        found.append(("groups", f"{name}.name", group["name"]))
        found.append(("groups", f"{name}.messages", group["messages"]))
        found.extend(("groups", f"{name}.member_{member['handle']}", member["messages"])
                     for member in group["by_member"])
        found.extend(("groups", f"{name}.reply_time.{key}", value) for key, value in group["reply_time"].items())
    yield found


def as_csv(figures: dict[str, Any]) -> str:
    out = io.StringIO()
    write_csv(figures, out)
    return out.getvalue()


def write_csv(figures: dict[str, Any], out: TextIO) -> None:
    """`as_csv`, written to `out` a week at a time."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["program", "section", "figure", "value"])
    program = figures["program"]
    plain = program != "" and not any(special in program for special in ',"\r\n')  # csv would not quote it
    for chunk in _iter_rows(figures):
        if isinstance(chunk, _ByPair) and isinstance(chunk.counts, WeekPairs) and plain:
            # a week of a large program lists thousands of pairs: the lines csv.writer writes, made in one pass
            entries = chunk.counts.entries("{},")
            if entries:
                prefix = f"{program},messages,{chunk.week}.pair_"
                out.write(prefix + ("\n" + prefix).join(entries) + "\n")
            continue
        rows = chunk.rows() if isinstance(chunk, _ByPair) else chunk
        writer.writerows([program, section, name, "" if value is None else value] for section, name, value in rows)


def write_json(figures: Any, out: TextIO) -> None:
    """The text of `print(json.dumps(figures, indent=2))`, written to `out` as it is made; the figures'
    mappings may be any Mapping (WeekPairs lists a week's pairs only while it is written)."""
    _write(figures, out, 0)
    out.write("\n")


def _write(value: Any, out: TextIO, level: int) -> None:
    inner = "\n" + "  " * (level + 1)
    if isinstance(value, WeekPairs):
        if not len(value):
            out.write("{}")
            return
        out.write("{" + inner)
        separator = "," + inner
        # a week of a large program lists thousands of pairs: one string per week, made in one pass
        out.write(separator.join(value.json_entries()))
        out.write("\n" + "  " * level + "}")
    elif isinstance(value, Mapping):
        if not value:
            out.write("{}")
            return
        first = True
        for key, item in value.items():
            out.write(("{" if first else ",") + inner + json.dumps(str(key)) + ": ")
            _write(item, out, level + 1)
            first = False
        out.write("\n" + "  " * level + "}")
    elif isinstance(value, list | tuple):
        if not value:
            out.write("[]")
            return
        for index, item in enumerate(value):
            out.write(("[" if index == 0 else ",") + inner)
            _write(item, out, level + 1)
        out.write("\n" + "  " * level + "]")
    else:
        out.write(json.dumps(value))


def as_text(figures: dict[str, Any]) -> str:
    p, r, n, m, a = (figures[k] for k in ("pairs", "reply_time", "nudges", "moderation", "attempts"))
    lines = [
        f"program {figures['program']} (as of {figures['generated_at']})",
        f"pairs: {p['total']} ({p['active']} active, {p['silent']} silent, {p['paused']} paused, {p['ended']} ended, "
        f"{p['closed']} closed)",
        f"messages: {figures['messages']['total']}",
    ]
    lines.extend(f"  {w['week']}: {w['messages']} messages, {w['pairs_open']} pairs open, "
                 f"{_value(w['per_pair'])} per pair" for w in figures["messages"]["weeks"])
    lines += [
        f"mentor reply time: {r['answered']} of {r['mentee_messages']} mentee messages answered; "
        f"median {_value(r['median_hours'])} h, p90 {_value(r['p90_hours'])} h; "
        f"within 48 h: {_share(r['share_within_48h'])}",
        f"nudges: {n['sent']} reminders, {n['escalations']} escalations; followed by a reply within 48 h: "
        f"{_share(n['share_followed_within_48h'])}",
        f"moderation: {m['held']} held ({m['waiting']} waiting, {m['released']} released, "
        f"{m['rejected']} rejected by a moderator; {m['urgent']} urgent); "
        f"review median {_value(m['review_time']['median_hours'])} h, "
        f"p90 {_value(m['review_time']['p90_hours'])} h; {m['rejected_automatically']} rejected automatically",
        f"attempts: {a['stranger']} from strangers, {a['spoofing']} spoofing (failed sender checks), "
        f"{a['unverified']} unverified senders",
    ]
    groups = figures["groups"]
    lines.append(f"groups: {groups['total']}, {groups['messages']} messages; {_replies(groups['reply_time'])}")
    for group in groups["items"]:
        lines.append(f"  {group['kind']} {group['id']} {group['name']} ({group['status']}): "
                     f"{group['messages']} messages; {_replies(group['reply_time'])}")
        lines.append("    by member: " + ", ".join(f"{m['handle']} ({m['role']}) {m['messages']}"
                                                 for m in group["by_member"]))
    return "\n".join(lines)


def _replies(r: dict[str, Any]) -> str:
    return (f"mentor reply time: {r['answered']} of {r['mentee_messages']} mentee messages answered; "
            f"median {_value(r['median_hours'])} h, p90 {_value(r['p90_hours'])} h; "
            f"within 48 h: {_share(r['share_within_48h'])}")
