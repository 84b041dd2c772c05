"""The SVG charts: well-formed, escaped, and drawing what they are given."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from serving.render.svg_charts import Interval, Step, calibration, intervals, waterfall

NS = {"s": "http://www.w3.org/2000/svg"}


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # raises on anything not well-formed


def _label(t: ET.Element) -> str:
    """A text element's visible words (a tooltip <title> child holds the full label)."""
    tip = t.find("s:title", NS)
    return (tip.tail if tip is not None else t.text) or ""


def test_waterfall_walks_from_the_base_to_the_score_and_escapes_labels():
    steps = [Step("<script>alert(1)</script>", 12.0), Step("meetings", -4.0),
             Step("age", 0.0), *[Step(f"f{i}", 0.1) for i in range(20)]]
    svg = waterfall(0.10, 0.10 + (12.0 - 4.0 + 2.0) / 100, steps, top=5)
    root = _parse(svg)
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    texts = [_label(t) for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "10.0%" in texts and "20.0%" in texts  # base and final score
    assert "+12.0 pts" in texts and "-4.0 pts" in texts
    assert "+1.7 pts" in texts and "18 other reasons" in texts  # the rest, summed
    # average + the 5 largest steps + the rest + this lead
    assert len(root.findall("s:rect", NS)) == 1 + 5 + 1 + 1
    # a step of zero is never a bar of its own
    few = _parse(waterfall(0.1, 0.18, [Step("a", 8.0), Step("b", 0.0)], top=5))
    assert len(few.findall("s:rect", NS)) == 1 + 1 + 1


def test_intervals_colour_flagged_and_thin_rows_and_draw_the_reference():
    svg = intervals([Interval("R1", 0.4, 0.2, 0.7, 0.6, "flagged"),
                     Interval("R2", 1.1, 0.8, 1.5, 1.05, "ok"),
                     Interval("R3", None, None, None, None, "insufficient_data")])
    root = _parse(svg)
    circles = root.findall("s:circle", NS)
    assert [c.get("fill") for c in circles] == ["#c0392b", "#2c6fbb"]  # R3 has no dot
    labels = {_label(t): t.get("fill") for t in root.findall("s:text", NS)}
    assert labels["R1"] == "#c0392b" and labels["R3"] == "#aaaaaa"
    assert any(line.get("stroke-dasharray") for line in root.findall("s:line", NS))


def test_calibration_has_a_dot_per_bin_on_the_diagonal_scale():
    svg = calibration([(0.05, 0.04, 900), (0.5, 0.52, 50), (0.9, 0.8, 5)])
    circles = _parse(svg).findall("s:circle", NS)
    assert len(circles) == 3
    # bigger bins draw bigger dots
    radii = [float(c.get("r")) for c in circles]
    assert radii[0] > radii[1] > radii[2]
