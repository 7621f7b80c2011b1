"""Server-side SVG charts: well-formed SVG without scripts, bars proportional to the values, text escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from relay.reports.charts import SVG_NS, bar_chart_svg, program_charts

NS = {"svg": SVG_NS}


def bars(svg: str) -> list[float]:
    return [float(rect.get("height", "0")) for rect in ET.fromstring(svg).findall("svg:rect", NS)]


def test_bars_are_proportional_and_labelled() -> None:
    svg = bar_chart_svg("Messages per week", ["W10", "W11", "W12"], [9, 0, 4.5])
    root = ET.fromstring(svg)
    assert root.tag == f"{{{SVG_NS}}}svg" and "script" not in svg
    heights = bars(svg)
    assert heights[1] == 0 and heights[0] > 0 and heights[2] == pytest.approx(heights[0] / 2, abs=0.1)
    texts = [t.text for t in root.findall("svg:text", NS)]
    assert texts[0] == "Messages per week" and {"W10", "W11", "W12", "9", "0", "4.5"} <= set(texts)


def test_labels_are_escaped_and_empty_data_says_so() -> None:
    svg = bar_chart_svg("<script>alert(1)</script>", ['a"&<b>'], [1])
    root = ET.fromstring(svg)  # still well-formed
    assert "<script>" not in svg and root.find("svg:title", NS).text == "<script>alert(1)</script>"  # type: ignore[union-attr]
    empty = bar_chart_svg("Nothing", [], [])
    assert bars(empty) == [] and "no data yet" in empty
    with pytest.raises(ValueError, match="one label per value"):
        bar_chart_svg("x", ["a"], [])


def test_program_charts_draw_the_report_figures() -> None:
    figures = {
        "messages": {"weeks": [{"week": "2026-W10", "messages": 9}, {"week": "2026-W11", "messages": 3}]},
        "pairs": {"active": 1, "silent": 1, "paused": 1, "ended": 3, "closed": 2},
        "moderation": {"waiting": 0, "released": 4, "rejected": 1},
    }
    charts = program_charts(figures)
    assert set(charts) == {"messages_per_week", "pairs", "moderation"}
    nine, three = bars(charts["messages_per_week"])
    assert nine > 0 and three == pytest.approx(nine / 3, abs=0.1)
    active, _, _, ended, closed = bars(charts["pairs"])
    assert closed == pytest.approx(2 * active, abs=0.2) and ended == pytest.approx(3 * active, abs=0.2)
    assert bars(charts["moderation"])[0] == 0
