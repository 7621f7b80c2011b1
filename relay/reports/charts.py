"""Small server-side SVG charts of a program's figures, for the console: plain SVG, no JavaScript.

`bar_chart_svg` draws one series of labelled bars; `program_charts` turns the figures of
relay.reports.figures into the console's charts by name. Text is escaped by ElementTree, so labels
from the store cannot inject markup.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any

SVG_NS = "http://www.w3.org/2000/svg"
WIDTH, HEIGHT = 480, 200
MARGIN_TOP, MARGIN_BOTTOM, MARGIN_LEFT = 28, 34, 8
BAR_COLOUR = "#3b6ea5"


def _number(value: float) -> str:
    return f"{value:g}" if value == int(value) else f"{value:.2f}".rstrip("0").rstrip(".")


def bar_chart_svg(title: str, labels: Sequence[str], values: Sequence[float], *, unit: str = "") -> str:
    """A bar chart as an SVG document string; each bar is labelled below and its value above."""
    if len(labels) != len(values):
        raise ValueError("a bar chart needs one label per value")
    svg = ET.Element("svg", {"xmlns": SVG_NS, "width": str(WIDTH), "height": str(HEIGHT),
                             "viewBox": f"0 0 {WIDTH} {HEIGHT}", "role": "img", "font-family": "sans-serif",
                             "font-size": "11"})
    ET.SubElement(svg, "title").text = title
    heading = ET.SubElement(svg, "text", {"x": str(MARGIN_LEFT), "y": "16", "font-size": "13",
                                          "font-weight": "bold"})
    heading.text = title
    plot = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    baseline = HEIGHT - MARGIN_BOTTOM
    ET.SubElement(svg, "line", {"x1": str(MARGIN_LEFT), "x2": str(WIDTH - MARGIN_LEFT), "y1": str(baseline),
                                "y2": str(baseline), "stroke": "#888"})
    if not values:
        empty = ET.SubElement(svg, "text", {"x": str(WIDTH // 2), "y": str(HEIGHT // 2), "text-anchor": "middle"})
        empty.text = "no data yet"
        return ET.tostring(svg, encoding="unicode")
    top = max(max(values), 0) or 1
    slot = (WIDTH - 2 * MARGIN_LEFT) / len(values)
    for index, (label, value) in enumerate(zip(labels, values, strict=True)):
        height = max(value, 0) / top * (plot - 14)
        x = MARGIN_LEFT + index * slot + slot * 0.15
        bar = ET.SubElement(svg, "rect", {"x": f"{x:.1f}", "y": f"{baseline - height:.1f}",
                                          "width": f"{slot * 0.7:.1f}", "height": f"{height:.1f}",
                                          "fill": BAR_COLOUR})
        ET.SubElement(bar, "title").text = f"{label}: {_number(value)}{unit}"
        centre = f"{x + slot * 0.35:.1f}"
        shown = ET.SubElement(svg, "text", {"x": centre, "y": f"{baseline - height - 3:.1f}", "text-anchor": "middle"})
        shown.text = f"{_number(value)}{unit}"
        below = ET.SubElement(svg, "text", {"x": centre, "y": str(baseline + 14), "text-anchor": "middle"})
        below.text = label
    return ET.tostring(svg, encoding="unicode")


PAIR_STATES = ("active", "silent", "paused", "ended", "closed")


def program_charts(figures: dict[str, Any]) -> dict[str, str]:
    """The console's charts of one program: messages per week, pairs by state, held mail by outcome."""
    weeks = figures["messages"]["weeks"]
    pairs = figures["pairs"]
    moderation = figures["moderation"]
    return {
        "messages_per_week": bar_chart_svg("Messages per week", [w["week"][-3:] for w in weeks],
                                           [w["messages"] for w in weeks]),
        "pairs": bar_chart_svg("Pairs", list(PAIR_STATES), [pairs.get(state, 0) for state in PAIR_STATES]),
        "moderation": bar_chart_svg("Held messages", ["waiting", "released", "rejected"],
                                    [moderation["waiting"], moderation["released"], moderation["rejected"]]),
    }
