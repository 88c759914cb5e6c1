"""The bar layout (console.charts.stacked_bars) and its SVG (templates/charts.html): a value
too small for the scale beside a huge day still draws a bar a reader can see, the bars stay in
the plot, an all-zero chart still has an axis from 0, and whatever a chart says (labels that come
from class titles, SIS text, import modes) is escaped in the SVG's title, description and table."""

from __future__ import annotations

import re

from sislink.console.charts import EXPORT_SERIES, Point, stacked_bars
from sislink.console.pages.base import environment

# A bar this tall (viewBox units; the plot is 150 high, drawn about 330 px wide on a phone) is
# seen; a smaller one is a hairline, a 0.0 one nothing at all.
VISIBLE = 1.0


def test_a_small_value_beside_a_huge_day_is_still_a_visible_bar() -> None:
    points = [
        Point("Dec 1", "Dec 1", {"writes": 250_000, "skipped": 0, "failed": 1}),
        Point("Dec 2", "Dec 2", {"writes": 1, "skipped": 0, "failed": 0}),
        Point("Dec 3", "Dec 3", {"writes": 0, "skipped": 2, "failed": 0}),
        Point("Dec 4", "Dec 4", {"writes": 0, "skipped": 0, "failed": 0}),
    ]
    chart = stacked_bars("c", "t", "d", EXPORT_SERIES, points, point_heading="Day")
    drawn = {
        (column.point.label, segment.series.key): segment.height
        for column in chart.columns
        for segment in column.segments
    }
    assert set(drawn) == {
        ("Dec 1", "writes"),
        ("Dec 1", "failed"),
        ("Dec 2", "writes"),
        ("Dec 3", "skipped"),
    }
    # Every nonzero value is a bar someone can see (was 0.0 tall: 1 of 250,000).
    assert min(drawn.values()) >= VISIBLE
    # No bar leaves the plot (the top of the tallest stays under the chart's top margin).
    for column in chart.columns:
        for segment in column.segments:
            assert segment.y >= chart.top - 0.01
            assert segment.y + segment.height <= chart.bottom + 0.01


def test_an_all_zero_chart_has_an_axis_from_zero() -> None:
    points = [Point(f"Dec {n}", f"Dec {n}", {"writes": 0}) for n in range(1, 31)]
    chart = stacked_bars("c", "t", "d", EXPORT_SERIES, points, point_heading="Day")
    assert chart.y_ticks[0][1] == "0"
    assert len(chart.y_ticks) >= 2
    assert all(not column.segments for column in chart.columns)
    assert chart.y_ticks[0][0] == chart.bottom


def test_what_a_chart_says_is_escaped_in_the_svg() -> None:
    evil = '</title><script>alert(1)</script>"<x'
    points = [
        Point(evil, "Dec 1", {"writes": 3, "skipped": 1, "failed": 0}, link="/x?a=1&b=2", note=evil)
    ]
    chart = stacked_bars("c", evil, evil, EXPORT_SERIES, points, point_heading=evil)
    module = environment.from_string('{% from "charts.html" import bar_chart %}{{ bar_chart(c) }}')
    page = module.render(c=chart)
    assert "<script>" not in page
    assert "</title><script>" not in page
    assert "&lt;script&gt;" in page
    assert 'href="/x?a=1&amp;b=2"' in page
    # The SVG still has its one title and description, named by id.
    assert len(re.findall(r"<title id=", page)) == 1
    assert len(re.findall(r"<desc id=", page)) == 1


def test_small_values_on_the_tallest_bar_keep_it_in_the_plot() -> None:
    """The largest bar reaches the top of the scale: its two tiny parts, drawn at the least
    visible height, come off its big part rather than out of the plot."""
    points = [Point("Dec 1", "Dec 1", {"writes": 3_999_998, "skipped": 1, "failed": 1})]
    chart = stacked_bars("c", "t", "d", EXPORT_SERIES, points, point_heading="Day")
    segments = chart.columns[0].segments
    assert [s.series.key for s in segments] == ["writes", "skipped", "failed"]
    assert min(s.height for s in segments) >= VISIBLE
    assert min(s.y for s in segments) >= chart.top - 0.01
    assert abs(sum(s.height for s in segments) - (chart.bottom - chart.top)) < 0.05


def test_a_failed_export_is_marked_over_its_bar_or_over_the_axis_inside_the_chart() -> None:
    """An export that failed as a whole may have nothing to draw (the SIS was down): its mark
    sits on the axis; over the tallest bar it stays inside the viewBox; its tooltip says so,
    and the legend and table count the marks."""
    points = [
        Point(
            "Dec 1",
            "Dec 1",
            {"writes": 40, "skipped": 0, "failed": 0},
            failed_exports=2,
            failed_words="2 exports failed or were refused",
        ),
        Point(
            "Dec 2",
            "Dec 2",
            {"writes": 0, "skipped": 0, "failed": 0},
            failed_exports=3,
            failed_words="3 exports failed or were refused",
        ),
        Point("Dec 3", "Dec 3", {"writes": 5, "skipped": 0, "failed": 0}),
    ]
    chart = stacked_bars(
        "c",
        "t",
        "d",
        EXPORT_SERIES,
        points,
        point_heading="Day",
        failed_legend="Failed exports",
        failed_heading="Failed exports",
    )
    tallest, empty, quiet = chart.columns
    assert (
        quiet.mark == "" and quiet.words == "Dec 3: 5 writes, 0 skipped (needs attention), 0 failed"
    )
    assert empty.words.endswith("0 failed; 3 exports failed or were refused")

    def base_and_tip(mark: str) -> tuple[float, float]:
        start = re.match(r"M[\d.]+,([\d.]+) ", mark)
        height = re.search(r" l-[\d.]+,-([\d.]+) z", mark)
        assert start and height, mark
        y = float(start.group(1))
        return y, y - float(height.group(1))

    base, tip = base_and_tip(empty.mark)
    assert chart.bottom - 3 <= base <= chart.bottom and tip > chart.top  # on the axis
    base, tip = base_and_tip(tallest.mark)
    assert tip >= 0 and base <= tallest.segments[0].y + 0.01  # over the bar, in the viewBox
    assert chart.failed_exports == 5

    module = environment.from_string('{% from "charts.html" import bar_chart %}{{ bar_chart(c) }}')
    page = module.render(c=chart)
    assert page.count('class="chart-failed-mark"') == 2
    assert "Failed exports: 5</li>" in page
    assert re.search(r"<th scope=\"col\" class=\"num\">Failed exports</th></tr></thead>", page)
    assert re.search(r'<tfoot>.*<td class="num">5</td></tr></tfoot>', page, re.S)
