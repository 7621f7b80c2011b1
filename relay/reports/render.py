"""Rendering a program's figures (relay.reports.figures) as text for a terminal, or CSV."""

from __future__ import annotations

import csv
import io
from typing import Any


def _value(value: Any) -> str:
    return "n/a" if value is None else str(value)


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def rows(figures: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """The figures as (section, figure, value) rows; weekly counts as one row per week and pair."""
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
        found.extend(("messages", f"{week['week']}.pair_{pair}", count) for pair, count in week["by_pair"].items())
    return found


def as_csv(figures: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["program", "section", "figure", "value"])
    for section, name, value in rows(figures):
        writer.writerow([figures["program"], section, name, "" if value is None else value])
    return out.getvalue()


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
    return "\n".join(lines)
