"""The trend chart of one measure (ADR 0005: pygal SVG, no scripts, always beside a table).

What the chart must make visible at a glance, and how:
- the values as a line (blood pressure: two lines, systolic and diastolic);
- the patient's alert limits as dashed horizontal lines across the whole period;
- unusual values (stored, flagged for a second look) as large amber dots on top of the line;
- erroneous values as hollow grey rings *off* the line: kept and visible, but the line does not
  run through a value a clinician has said is wrong;
- the readings behind an alert (``highlight``, on the patient page) as large black rings around
  their dots, named "Behind the alert" in the legend.
Each of these is its own series with a legend entry in words, so nothing relies on colour alone.
"""

import math
import re
from collections.abc import Collection, Sequence
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pygal
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.html import escape
from django.utils.translation import gettext as _
from pygal.style import Style

from monitoring.measures import Measure, component_labels
from monitoring.models import Reading
from monitoring.selectors import Threshold
from questionnaires.charts import STYLE

BLUE, GREEN, RED, AMBER, GREY = "#0b5394", "#1e6b2e", "#b00020", "#8a6100", "#595959"
HOLLOW = f"fill: white; stroke: {GREY}; stroke-width: 6"
BLACK = "#1a1a1a"
RING = f"fill: none; stroke: {BLACK}; stroke-width: 4"


def _num(value: Decimal) -> float:
    return float(value)


def y_axis(values: Sequence[float]) -> tuple[tuple[float, float], list[float]]:
    """A y range with some air around ``values`` (readings and limits) and 4-6 round ticks, so
    a change of 1 % SpO2 does not fill the whole height and look dramatic."""
    lo, hi = min(values), max(values)
    span = max(hi - lo, abs(hi) * 0.05, 1.0)
    raw_step = span / 4
    magnitude = 10 ** math.floor(math.log10(raw_step))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw_step)
    start = math.floor((lo - step / 2) / step) * step
    stop = math.ceil((hi + step / 2) / step) * step
    ticks = [round(start + i * step, 6) for i in range(int(round((stop - start) / step)) + 1)]
    return (ticks[0], ticks[-1]), ticks


def _when(moment: datetime) -> str:
    """A point's time for its tooltip, in Danish time (pygal hands the formatter a naive UTC
    datetime): the day, and the time of day unless it is midnight."""
    local = timezone.localtime(moment.replace(tzinfo=UTC))
    return local.strftime("%d.%m") if local.time() == time(0) else local.strftime("%d.%m %H:%M")


def x_axis(start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Labels for 3-5 Danish midnights between ``start`` and ``end``, evenly spaced whole days
    apart: a label stands where its day begins here, not in UTC. Over a year, with the year."""
    zone = timezone.get_current_timezone()
    days = max(1, (end - start).days)
    step = max(1, round(days / 4))
    written = "%d.%m.%y" if days > 120 else "%d.%m"
    day = timezone.localtime(start).date() + timedelta(days=1)
    labels = []
    while (midnight := datetime.combine(day, time(0), tzinfo=zone)) <= end:
        labels.append({"value": midnight, "label": day.strftime(written)})
        day += timedelta(days=step)
    return labels


def _ys(points: Sequence[Any]) -> list[float]:
    return [(p["value"] if isinstance(p, dict) else p)[1] for p in points]


def reading_chart_svg(*, measure: Measure, readings: Sequence[Reading], thresholds: Sequence[Threshold],
                      start: datetime, end: datetime, label: str, highlight: Collection[int] = ()) -> str:
    """An inline SVG of ``readings`` (any order) from ``start`` to ``end``; ``label`` is its
    accessible name; readings whose id is in ``highlight`` get a ring."""
    ordered = sorted(readings, key=lambda r: (r.effective_at, r.pk))
    parts = component_labels(measure)
    good = [r for r in ordered if r.erroneous_at is None]
    series: list[tuple[str, list[Any], dict[str, Any], str]] = []  # name, points, options, colour

    line = {"show_dots": True}
    if parts:
        series.append((parts[0], [(r.effective_at, _num(r.value)) for r in good], line, BLUE))
        series.append((parts[1], [(r.effective_at, _num(r.value2)) for r in good if r.value2 is not None],
                       line, GREEN))
    else:
        series.append((str(measure.label), [(r.effective_at, _num(r.value)) for r in good], line, BLUE))

    def both(r: Reading) -> list[tuple[datetime, float]]:
        points = [(r.effective_at, _num(r.value))]
        if parts and r.value2 is not None:
            points.append((r.effective_at, _num(r.value2)))
        return points

    unusual = [p for r in good if r.unusual for p in both(r)]
    if unusual:
        series.append((_("Unusual value"), unusual, {"stroke": False, "dots_size": 10}, AMBER))
    limits = []
    for t in thresholds:
        which = f" ({t.component})" if t.component else ""
        early = t.severity == "yellow"  # a bands rule's early-warning limit: amber, and said so
        if t.bound == "low":
            name = _("Lower warning limit %(value)s") if early else _("Lower limit %(value)s")
        else:
            name = _("Upper warning limit %(value)s") if early else _("Upper limit %(value)s")
        name %= {"value": f"{number_format(t.value.normalize())} {measure.unit_label}{which}"}
        limits.append((name, [(start, _num(t.value)), (end, _num(t.value))],
                       {"show_dots": False, "stroke_style": {"width": 3, "dasharray": "14, 8"}},
                       AMBER if early else RED))

    # The scale follows the values that count and the limits: a value marked as wrong (a slip of
    # 1 kg for 71) must not squeeze the real ones into a thin band. Outside it, its ring sits on
    # the edge, its tooltip saying the value it had.
    wrong = [p for r in ordered if r.erroneous_at for p in both(r)]
    y_range, y_labels = y_axis([y for _n, points, _o, _c in series + limits for y in _ys(points)]
                               or [y for _x, y in wrong] or [0.0, 1.0])

    def kept_on_scale(point: tuple[datetime, float], style: str) -> dict[str, Any]:
        (x, y), (lo, hi) = point, y_range
        if lo <= y <= hi:
            return {"value": point, "style": style}
        return {"value": (x, min(max(y, lo), hi)), "style": style,
                "label": _("%(value)s, off the scale") % {
                    "value": f"{number_format(Decimal(str(y)).normalize())} {measure.unit_label}"}}

    if wrong:
        series.append((_("Marked as wrong"), [kept_on_scale(p, HOLLOW) for p in wrong],
                       {"stroke": False, "dots_size": 9}, GREY))
    ringed = [kept_on_scale(p, RING) for r in ordered if r.pk in highlight for p in both(r)]
    if ringed:
        series.append((_("Behind the alert"), ringed, {"stroke": False, "dots_size": 14}, BLACK))
    series += limits

    style = Style(**{**STYLE.to_dict(), "colors": tuple(colour for *_, colour in series)})
    chart = pygal.DateTimeLine(
        js=[],  # no scripts from the internet; the chart is a plain picture
        disable_xml_declaration=True, style=style, height=400, width=480, dots_size=6,
        show_legend=True, legend_at_bottom=True, legend_at_bottom_columns=1, x_label_rotation=0,
        truncate_label=-1, truncate_legend=-1, x_value_formatter=_when,
        value_formatter=lambda v: number_format(Decimal(str(v)).normalize()),
        range=y_range,
        show_minor_y_labels=True, margin=8, allow_interruptions=True,
        xrange=(start.timestamp(), end.timestamp()), print_values=False,
    )
    chart.y_labels = y_labels
    chart.x_labels = x_axis(start, end)
    for name, points, options, _colour in series:
        chart.add(name, points, **options)
    svg = chart.render(is_unicode=True)
    svg = re.sub(r"<script.*?</script>", "", svg, flags=re.S)
    # pygal puts a value's style on the dot's group, where its CSS (.dot {stroke-width: 1px})
    # wins; on the circle itself the ring is thick enough to see on a phone.
    for ring in (HOLLOW, RING):
        svg = svg.replace(f'style="{ring}"><circle ', f'style="{ring}"><circle style="{ring}" ')
    return svg.replace("<svg ", f'<svg role="img" aria-label="{escape(label)}" focusable="false" ', 1)
