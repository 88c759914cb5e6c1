"""Bar charts drawn on the server as SVG (templates/charts.html draws them; no script).

A chart is stacked bars, one per point (a day, an export, an import), in a viewBox that scales
to the page's width. Series differ by pattern as well as colour (solid, hatched, dotted), the
SVG's title and description say the totals in words, and the same numbers go in a table.
Exports that failed as a whole (often with no item to draw, when the SIS was down) get a mark of
their own over their bar: a triangle with "!", in the legend, the tooltip, words and table too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo

from babel import Locale
from babel.dates import format_skeleton

from sislink.console import i18n
from sislink.console.i18n import N_, _, ngettext
from sislink.sync.activity_history import CHANGES, ActivityWindow, ClassExport, ImportChanges

# The viewBox: 340 x 190 units (about a phone's width, so that its 12-unit text stays readable
# there), the plot inside the margins (room for the y axis's numbers on the left and the x axis's
# dates below).
WIDTH = 340
HEIGHT = 190
LEFT, RIGHT, TOP, BOTTOM = 42, 18, 12, 28
# At most this many dates under the x axis (more would overlap at a phone's width).
X_TICKS = 5
Y_TICKS = 4
# The least a nonzero value is drawn (of the plot's 150): to scale, 1 beside a day of 250,000
# would be 0.0 tall, a bar nobody sees; its number is in the tooltip and the table.
MIN_BAR_HEIGHT = 1.0
# The failed-export mark: a triangle this wide and tall, its tip this far over its bar.
MARK_SIZE = 12.0
MARK_GAP = 1.5


@dataclass(frozen=True)
class Series:
    """One stacked part of every bar: what it counts, and how it is drawn."""

    key: str
    label: str  # in words, plural: "writes", "skipped", "failed" (English, marked with N_)
    colour: str
    pattern: str = "solid"  # solid | hatch | dots | cross

    @property
    def words(self) -> str:
        """The label in the reader's language (the series are made before any reader)."""
        return _(self.label)


@dataclass(frozen=True)
class Point:
    """One bar: its label in the table and the bar's tooltip, its date under the axis."""

    label: str
    tick: str
    values: dict[str, int]
    link: str | None = None
    note: str = ""  # e.g. an export's outcome, in the table
    # Exports at this point that failed or were refused as a whole, and the tooltip's words for
    # them ("3 exports failed or were refused"); they get a mark, not a part of the bar.
    failed_exports: int = 0
    failed_words: str = ""

    def total(self) -> int:
        return sum(self.values.values())


@dataclass(frozen=True)
class Segment:
    series: Series
    value: int
    y: float
    height: float


@dataclass(frozen=True)
class Column:
    point: Point
    x: float
    width: float
    segments: list[Segment]
    words: str  # the bar's tooltip: "Dec 5: 12 writes, 3 skipped, 0 failed"
    # The failed-export mark's triangle (an SVG path), over the bar; "" when none failed.
    mark: str = ""

    @property
    def centre(self) -> float:
        return self.x + self.width / 2


@dataclass
class BarChart:
    id: str
    title: str
    description: str
    series: list[Series]
    points: list[Point]
    point_heading: str  # the table's first column: "Day", "Export", "Import"
    note_heading: str = ""
    y_label: str = ""
    # Exports that failed as a whole: the legend's words for the mark ("" for a chart that has
    # none, e.g. imports) and the table's column for their count ("": no column).
    failed_legend: str = ""
    failed_heading: str = ""
    columns: list[Column] = field(default_factory=list)
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    x_ticks: list[tuple[float, str]] = field(default_factory=list)
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM

    def total(self, key: str) -> int:
        return sum(point.values.get(key, 0) for point in self.points)

    @property
    def failed_exports(self) -> int:
        return sum(point.failed_exports for point in self.points)

    def table_points(self) -> list[Point]:
        """The points the table lists: those with something to count (empty days left out)."""
        return [point for point in self.points if point.total() or point.note]


def nice_step(largest: int, ticks: int = Y_TICKS) -> int:
    """A round step (1, 2 or 5 times a power of ten) so that `ticks` steps reach `largest`."""
    if largest <= ticks:
        return 1
    raw = largest / ticks
    power = 10 ** math.floor(math.log10(raw))
    for multiple in (1, 2, 5, 10):
        if multiple * power >= raw:
            return int(multiple * power)
    return int(10 * power)  # not reached: 10 * power >= raw always


def short_number(value: int) -> str:
    """An axis number that fits the margin: 950, 9,500, 95k, 1.2M."""
    if value < 10_000:
        return f"{value:,}"
    if value < 1_000_000:
        return f"{value / 1000:g}k"
    return f"{value / 1_000_000:g}M"


def in_words(values: dict[str, int], series: Sequence[Series]) -> str:
    return ", ".join(f"{values.get(s.key, 0):,} {s.words}" for s in series)


def failed_mark(centre: float, bar_top: float) -> str:
    """A triangle (pointing up, as a warning sign) whose base sits just over the bar's top, with
    a "!" cut out of it (drawn with fill-rule evenodd)."""
    base = max(bar_top - MARK_GAP, MARK_SIZE)
    half = MARK_SIZE / 2
    stroke = round(MARK_SIZE * 0.14, 2)
    left = round(centre - stroke / 2, 2)
    line, dot = round(MARK_SIZE * 0.36, 2), stroke
    return (
        f"M{round(centre - half, 2)},{round(base, 2)} h{MARK_SIZE:g} l{-half:g},{-MARK_SIZE:g} z "
        f"M{left},{round(base - MARK_SIZE * 0.66, 2)} h{stroke:g} v{line:g} h{-stroke:g} z "
        f"M{left},{round(base - MARK_SIZE * 0.24, 2)} h{stroke:g} v{dot:g} h{-stroke:g} z"
    )


def stacked_bars(
    chart_id: str,
    title: str,
    description: str,
    series: Sequence[Series],
    points: Sequence[Point],
    *,
    point_heading: str,
    note_heading: str = "",
    y_label: str = "",
    failed_legend: str = "",
    failed_heading: str = "",
) -> BarChart:
    """Lay the bars out in the viewBox: heights to a round scale, ticks on both axes."""
    chart = BarChart(
        id=chart_id,
        title=title,
        description=description,
        series=list(series),
        points=list(points),
        point_heading=point_heading,
        note_heading=note_heading,
        y_label=y_label,
        failed_legend=failed_legend,
        failed_heading=failed_heading,
    )
    largest = max((point.total() for point in points), default=0)
    step = nice_step(largest)
    top_value = max(step, math.ceil(largest / step) * step)
    plot_height = chart.bottom - chart.top
    scale = plot_height / top_value
    chart.y_ticks = [
        (chart.bottom - value * scale, short_number(value))
        for value in range(0, top_value + 1, step)
    ]
    slot = (chart.right - chart.left) / max(len(points), 1)
    bar_width = min(slot * 0.72, 36.0)
    stride = max(1, math.ceil(len(points) / X_TICKS))
    for index, point in enumerate(points):
        x = chart.left + slot * index + (slot - bar_width) / 2
        y = float(chart.bottom)
        segments = []
        drawn = [(one, point.values.get(one.key, 0)) for one in series]
        heights = [max(value * scale, MIN_BAR_HEIGHT) if value else 0.0 for one, value in drawn]
        # What the small values gained comes off the bar's largest part, so it stays in the plot.
        over = sum(heights) - plot_height
        if over > 0:
            largest_part = heights.index(max(heights))
            heights[largest_part] -= over
        for (one, value), height in zip(drawn, heights, strict=True):
            y -= height
            if value:
                segments.append(Segment(one, value, round(y, 2), round(height, 2)))
        words = f"{point.label}: {in_words(point.values, series)}"
        mark = ""
        if point.failed_exports:
            words += f"; {point.failed_words}"
            mark = failed_mark(x + bar_width / 2, y)
        chart.columns.append(Column(point, round(x, 2), round(bar_width, 2), segments, words, mark))
        # The latest point always has its date; the others every `stride`.
        if (len(points) - 1 - index) % stride == 0 and point.tick:
            chart.x_ticks.append((round(x + bar_width / 2, 2), point.tick))
    return chart


def day_tick(day: date | datetime) -> str:
    """A date under an axis, in the reader's language: "Dec 5", "5 dic"."""
    return format_skeleton("MMMd", day, locale=Locale.parse(i18n.current_language()))


def day_words(day: date | datetime) -> str:
    """A date in a sentence, in the reader's language: "Dec 5, 2026"."""
    return i18n.day(day)


# ---- the console's charts ------------------------------------------------------------------

EXPORT_SERIES = (
    Series("writes", N_("writes"), "#1f6feb"),
    # Skipped for a reason someone must act on ("needs attention"); not drafts left out by choice.
    Series("skipped", N_("skipped (needs attention)"), "#9a6700", "hatch"),
    Series("failed", N_("failed"), "#c62828", "cross"),
)
IMPORT_SERIES = (
    Series("created", N_("created"), "#1a7f37"),
    Series("updated", N_("updated"), "#1f6feb", "hatch"),
    Series("deactivated", N_("deactivated"), "#7b4d9e", "dots"),
)


def _moment(at: datetime, zone: tzinfo) -> str:
    """A timestamp in the zone, to the minute, as the console's `when` filter says it."""
    with i18n.in_time_zone(zone):
        return i18n.when(at)


def zone_words(zone: tzinfo) -> str:
    """The zone by its name, as the page says which days these are: "UTC", "America/Chicago"."""
    return str(getattr(zone, "key", None) or zone.tzname(None) or "UTC")


def _busiest(points: Sequence[Point], series: Sequence[Series]) -> str:
    busiest = max(points, key=lambda point: point.total(), default=None)
    if busiest is None or not busiest.total():
        return ""
    return " " + _("The most on {day}: {counts}.").format(
        day=busiest.label, counts=in_words(busiest.values, series)
    )


def _most_failed(points: Sequence[Point]) -> str:
    """Exports that failed as a whole, in words (the SIS down: a day of them has no bar)."""
    worst = max(points, key=lambda point: point.failed_exports, default=None)
    if worst is None or not worst.failed_exports:
        return ""
    return " " + _("Exports that failed or were refused: {n}; the most on {day} ({count}).").format(
        n=f"{sum(point.failed_exports for point in points):,}",
        day=worst.label,
        count=f"{worst.failed_exports:,}",
    )


def _nothing_sent(export: ClassExport) -> str:
    """An export that failed as a whole, in the tooltip: did it send anything first?"""
    if not export.failed_outright:
        return ""
    outcome = i18n.status_words(export.outcome)
    if export.writes:
        return _("{outcome}: not everything was sent").format(outcome=outcome)
    return _("{outcome}: nothing was sent").format(outcome=outcome)


def activity_charts(window: ActivityWindow, zone: tzinfo = UTC) -> dict[str, BarChart | None]:
    """The Activity page's two charts over the window's days (None: nothing to draw)."""
    span = _("from {first} to {last} ({zone} days)").format(
        first=day_words(window.first), last=day_words(window.last), zone=zone_words(zone)
    )
    exports = [
        Point(
            day_words(day.day),
            day_tick(day.day),
            {"writes": day.writes, "skipped": day.skipped, "failed": day.failed},
            note=ngettext("{n} export", "{n} exports", day.exports).format(n=day.exports)
            if day.exports
            else "",
            failed_exports=day.failed_exports,
            failed_words=ngettext(
                "{n} export failed or was refused",
                "{n} exports failed or were refused",
                day.failed_exports,
            ).format(n=f"{day.failed_exports:,}"),
        )
        for day in window.days
    ]
    imports = [
        Point(
            day_words(day.day),
            day_tick(day.day),
            {"created": day.created, "updated": day.updated, "deactivated": day.deactivated},
            note=ngettext("{n} import", "{n} imports", day.imports).format(n=day.imports)
            if day.imports
            else "",
        )
        for day in window.days
    ]
    export_chart = import_chart = None
    if window.exports:
        totals = {s.key: window.total(s.key) for s in EXPORT_SERIES}
        export_chart = stacked_bars(
            "chart-exports-by-day",
            _("Mark exports per day"),
            _("Mark exports per day {span}: {exports} exports; {counts} in all.").format(
                span=span, exports=f"{window.exports:,}", counts=in_words(totals, EXPORT_SERIES)
            )
            + _busiest(exports, EXPORT_SERIES)
            + _most_failed(exports),
            EXPORT_SERIES,
            exports,
            point_heading=_("Day"),
            note_heading=_("Exports"),
            y_label=_("writes and items"),
            failed_legend=_("Failed exports"),
            failed_heading=_("Failed exports"),
        )
    if window.imports:
        totals = {s.key: window.total(s.key) for s in IMPORT_SERIES}
        import_chart = stacked_bars(
            "chart-imports-by-day",
            _("Roster import changes per day"),
            _("Roster import changes per day {span}: {imports} imports; {counts} in all.").format(
                span=span, imports=f"{window.imports:,}", counts=in_words(totals, IMPORT_SERIES)
            )
            + _busiest(imports, IMPORT_SERIES),
            IMPORT_SERIES,
            imports,
            point_heading=_("Day"),
            note_heading=_("Imports"),
            y_label=_("records"),
        )
    return {"exports": export_chart, "imports": import_chart}


def class_history_chart(
    class_id: int, exports: Sequence[ClassExport], zone: tzinfo = UTC
) -> BarChart | None:
    """A class's latest exports, oldest first, one bar each."""
    if not exports:
        return None
    points = [
        Point(
            _moment(export.at, zone),
            day_tick(export.at.astimezone(zone).date()),
            {"writes": export.writes, "skipped": export.skipped, "failed": export.failed},
            link=f"/classes/{class_id}/reports/{export.report_id}",
            note=i18n.status_words(export.outcome),
            failed_exports=int(export.failed_outright),
            failed_words=_nothing_sent(export),
        )
        for export in exports
    ]
    failed = sum(point.failed_exports for point in points)
    totals = {s.key: sum(p.values[s.key] for p in points) for s in EXPORT_SERIES}
    last = points[-1]
    return stacked_bars(
        "chart-class-exports",
        _("This class's exports"),
        ngettext(
            "The class's last {n} export, from {first} to {last}: {counts} in all. "
            "The latest ({outcome}): {latest}.",
            "The class's last {n} exports, from {first} to {last}: {counts} in all. "
            "The latest ({outcome}): {latest}.",
            len(points),
        ).format(
            n=len(points),
            first=points[0].label,
            last=last.label,
            counts=in_words(totals, EXPORT_SERIES),
            outcome=last.note,
            latest=in_words(last.values, EXPORT_SERIES),
        )
        + (
            " "
            + ngettext(
                "{n} of them failed or was refused.", "{n} of them failed or were refused.", failed
            ).format(n=failed)
            if failed
            else ""
        ),
        EXPORT_SERIES,
        points,
        point_heading=_("Export"),
        note_heading=_("Outcome"),
        y_label=_("writes and items"),
        # The table's Outcome column says which failed: no column of 1s and 0s.
        failed_legend=_("Failed exports"),
    )


def import_history_chart(imports: Sequence[ImportChanges], zone: tzinfo = UTC) -> BarChart | None:
    """What each applied roster import changed, oldest first, one bar each."""
    if not imports:
        return None
    points = [
        Point(
            _("Import {job}, {when}").format(job=found.job_id, when=_moment(found.at, zone)),
            day_tick(found.at.astimezone(zone).date()),
            {change: found.total(change) for change in CHANGES},
            link=f"/admin/roster/jobs/{found.job_id}",
            note=found.mode,
        )
        for found in imports
    ]
    totals = {s.key: sum(p.values[s.key] for p in points) for s in IMPORT_SERIES}
    last = points[-1]
    return stacked_bars(
        "chart-import-changes",
        _("What each roster import changed"),
        ngettext(
            "The last {n} applied roster import: {counts} in all. The latest, {last}: {latest}.",
            "The last {n} applied roster imports: {counts} in all. The latest, {last}: {latest}.",
            len(points),
        ).format(
            n=len(points),
            counts=in_words(totals, IMPORT_SERIES),
            last=last.label,
            latest=in_words(last.values, IMPORT_SERIES),
        ),
        IMPORT_SERIES,
        points,
        point_heading=_("Import"),
        note_heading=_("Mode"),
        y_label=_("records"),
    )
