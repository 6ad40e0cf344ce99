"""The indicator pages' figures as hand-written SVG (ADR 0005: server-rendered, no JavaScript,
always beside a table with the same numbers).

pygal draws lines and bars but no confidence intervals, and a caterpillar plot is mostly
intervals, so these two small drawings are written directly: a *caterpillar plot* (one row per
group: the figure as a dot, its 95 % interval as a line) and a *time series* by quarter. Both draw
the national figure and the standard, so every group is read against the same two references.
The same SVG is the page's figure and the download (``standalone=True`` adds the XML prolog and
the stamp: filters, period, date and the suppression rule).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from xml.sax.saxutils import escape

from django.utils.formats import number_format

BLUE, GREY, RED, INK, MUTED = "#0b5394", "#555555", "#b00020", "#1a1a1a", "#595959"
FONT = 'font-family="system-ui, sans-serif"'


@dataclass(frozen=True)
class Point:
    label: str
    value: float | None  # None: hidden (``marker`` is drawn instead)
    low: float | None = None
    high: float | None = None
    marker: str = "–"


def _fmt(v: float) -> str:
    return number_format(v, 1)


def _scale(values: list[float], percent: bool) -> tuple[float, float]:
    if percent:
        return 0.0, 100.0
    lo, hi = min(values, default=0.0), max(values, default=1.0)
    lo = min(lo, 0.0)
    if hi <= lo:
        hi = lo + 1
    span = hi - lo
    step = 10 ** math.floor(math.log10(span / 4)) if span > 0 else 1
    return math.floor(lo / step) * step, math.ceil(hi / step) * step


def _ticks(lo: float, hi: float) -> list[float]:
    return [lo + (hi - lo) * k / 4 for k in range(5)]


def _open(width: int, height: int, title: str, desc: str, ident: str, standalone: bool) -> list[str]:
    head = ['<?xml version="1.0" encoding="UTF-8"?>'] if standalone else []
    ns = ' xmlns="http://www.w3.org/2000/svg"'
    head.append(f'<svg{ns} viewBox="0 0 {width} {height}" width="100%" role="img" '
                f'aria-labelledby="{ident}-t {ident}-d" focusable="false" {FONT} font-size="13">')
    head.append(f'<title id="{ident}-t">{escape(title)}</title><desc id="{ident}-d">{escape(desc)}</desc>')
    head.append(f'<rect width="{width}" height="{height}" fill="white"/>')
    return head


def _stamp(lines: list[str], y: int, width: int) -> list[str]:
    return [f'<text x="8" y="{y + 16 * i}" fill="{MUTED}" font-size="11">{escape(line)}</text>'
            for i, line in enumerate(lines)]


def caterpillar_svg(*, title: str, points: list[Point], national: float | None, standard: float | None,
                    percent: bool, ident: str, national_label: str, standard_label: str,
                    stamp: list[str] | None = None, standalone: bool = False) -> str:
    width, left, right = 760, 230, 90
    row_h, top = 26, 40
    stamp = stamp or []
    plot_h = max(1, len(points)) * row_h
    height = top + plot_h + 40 + 16 * len(stamp)
    values = [v for p in points for v in (p.value, p.low, p.high) if v is not None]
    values += [v for v in (national, standard) if v is not None]
    lo, hi = _scale(values, percent)
    x = lambda v: left + (width - left - right) * (v - lo) / (hi - lo)  # noqa: E731
    desc = f"{title}. " + "; ".join(
        f"{p.label}: {_fmt(p.value) if p.value is not None else p.marker}" for p in points)
    out = _open(width, height, title, desc, ident, standalone)
    out.append(f'<text x="8" y="20" font-weight="bold" fill="{INK}">{escape(title)}</text>')
    for t in _ticks(lo, hi):
        out.append(f'<line x1="{x(t):.1f}" y1="{top}" x2="{x(t):.1f}" y2="{top + plot_h}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{x(t):.1f}" y="{top + plot_h + 16}" text-anchor="middle" fill="{MUTED}">'
                   f'{_fmt(t)}</text>')
    for i, p in enumerate(points):
        cy = top + i * row_h + row_h / 2
        out.append(f'<text x="{left - 8}" y="{cy + 4:.1f}" text-anchor="end" fill="{INK}">'
                   f'{escape(p.label[:32])}</text>')
        if p.value is None:
            out.append(f'<text x="{left + 6}" y="{cy + 4:.1f}" fill="{MUTED}">{escape(p.marker)}</text>')
            continue
        if p.low is not None and p.high is not None:
            out.append(f'<line x1="{x(p.low):.1f}" y1="{cy:.1f}" x2="{x(p.high):.1f}" y2="{cy:.1f}" '
                       f'stroke="{BLUE}" stroke-width="3"/>')
        out.append(f'<circle cx="{x(p.value):.1f}" cy="{cy:.1f}" r="6" fill="{BLUE}"/>')
        out.append(f'<text x="{width - right + 8}" y="{cy + 4:.1f}" fill="{INK}">{_fmt(p.value)}</text>')
    legend_y = top - 10
    if national is not None:
        out.append(f'<line x1="{x(national):.1f}" y1="{top}" x2="{x(national):.1f}" y2="{top + plot_h}" '
                   f'stroke="{GREY}" stroke-width="2" stroke-dasharray="6 4"/>')
        out.append(f'<text x="{left}" y="{legend_y}" fill="{GREY}">'
                   f'- - {escape(national_label)} {_fmt(national)}</text>')
    if standard is not None:
        out.append(f'<line x1="{x(standard):.1f}" y1="{top}" x2="{x(standard):.1f}" y2="{top + plot_h}" '
                   f'stroke="{RED}" stroke-width="2"/>')
        out.append(f'<text x="{width - right}" y="{legend_y}" text-anchor="end" fill="{RED}">'
                   f'— {escape(standard_label)} {_fmt(standard)}</text>')
    out += _stamp(stamp, top + plot_h + 36, width)
    out.append("</svg>")
    return "\n".join(out)


def series_svg(*, title: str, points: list[Point], national: list[float | None], standard: float | None,
               percent: bool, ident: str, national_label: str, standard_label: str,
               stamp: list[str] | None = None, standalone: bool = False) -> str:
    width, left, right, top, plot_h = 760, 60, 20, 40, 240
    stamp = stamp or []
    height = top + plot_h + 50 + 16 * len(stamp)
    values = [v for p in points for v in (p.value, p.low, p.high) if v is not None]
    values += [v for v in national if v is not None] + ([standard] if standard is not None else [])
    lo, hi = _scale(values, percent)
    n = max(1, len(points))
    x = lambda i: left + (width - left - right) * (i + 0.5) / n  # noqa: E731
    y = lambda v: top + plot_h - plot_h * (v - lo) / (hi - lo)  # noqa: E731
    desc = f"{title}. " + "; ".join(
        f"{p.label}: {_fmt(p.value) if p.value is not None else p.marker}" for p in points)
    out = _open(width, height, title, desc, ident, standalone)
    out.append(f'<text x="8" y="20" font-weight="bold" fill="{INK}">{escape(title)}</text>')
    for t in _ticks(lo, hi):
        out.append(f'<line x1="{left}" y1="{y(t):.1f}" x2="{width - right}" y2="{y(t):.1f}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{left - 6}" y="{y(t) + 4:.1f}" text-anchor="end" fill="{MUTED}">{_fmt(t)}</text>')
    every = max(1, math.ceil(n / 10))
    for i, p in enumerate(points):
        if i % every == 0:
            out.append(f'<text x="{x(i):.1f}" y="{top + plot_h + 18}" text-anchor="middle" fill="{MUTED}">'
                       f'{escape(p.label)}</text>')
    nat = [(x(i), y(v)) for i, v in enumerate(national) if v is not None]
    if len(nat) > 1:
        out.append('<polyline fill="none" stroke="{}" stroke-width="2" stroke-dasharray="6 4" points="{}"/>'.format(
            GREY, " ".join(f"{a:.1f},{b:.1f}" for a, b in nat)))
    if standard is not None:
        out.append(f'<line x1="{left}" y1="{y(standard):.1f}" x2="{width - right}" y2="{y(standard):.1f}" '
                   f'stroke="{RED}" stroke-width="2"/>')
    segment: list[str] = []
    for i, p in enumerate(points):
        if p.value is None:
            if len(segment) > 1:
                out.append(f'<polyline fill="none" stroke="{BLUE}" stroke-width="3" points="{" ".join(segment)}"/>')
            segment = []
            out.append(f'<text x="{x(i):.1f}" y="{top + plot_h - 6}" text-anchor="middle" fill="{MUTED}">'
                       f'{escape(p.marker)}</text>')
            continue
        segment.append(f"{x(i):.1f},{y(p.value):.1f}")
        if p.low is not None and p.high is not None:
            out.append(f'<line x1="{x(i):.1f}" y1="{y(p.low):.1f}" x2="{x(i):.1f}" y2="{y(p.high):.1f}" '
                       f'stroke="{BLUE}" stroke-width="2"/>')
        out.append(f'<circle cx="{x(i):.1f}" cy="{y(p.value):.1f}" r="5" fill="{BLUE}"/>')
    if len(segment) > 1:
        out.append(f'<polyline fill="none" stroke="{BLUE}" stroke-width="3" points="{" ".join(segment)}"/>')
    out.append(f'<text x="{left}" y="{top - 10}" fill="{GREY}">- - {escape(national_label)}</text>')
    if standard is not None:
        out.append(f'<text x="{width - right}" y="{top - 10}" text-anchor="end" fill="{RED}">'
                   f'— {escape(standard_label)} {_fmt(standard)}</text>')
    out += _stamp(stamp, top + plot_h + 42, width)
    out.append("</svg>")
    return "\n".join(out)


def sparkline_svg(values: list[float | None], *, label: str, percent: bool) -> str:
    width, height = 120, 28
    shown = [v for v in values if v is not None]
    if len(shown) < 2:
        return ""
    lo, hi = (0.0, 100.0) if percent else (min(shown), max(shown) if max(shown) > min(shown) else min(shown) + 1)
    n = len(values)
    pts = " ".join(f"{4 + (width - 8) * i / max(1, n - 1):.1f},{height - 4 - (height - 8) * (v - lo) / (hi - lo):.1f}"
                   for i, v in enumerate(values) if v is not None)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
            f'height="{height}" role="img" aria-label="{escape(label, {chr(34): "&quot;"})}" focusable="false">'
            f'<polyline fill="none" stroke="{BLUE}" stroke-width="2" points="{pts}"/></svg>')


def funnel_unavailable_svg(*, title: str, reason: str, ident: str, stamp: list[str] | None = None,
                           standalone: bool = False) -> str:
    """The funnel figure when it cannot be drawn: the reason, in words (the download says it too)."""
    stamp = stamp or []
    width, height = 760, 80 + 16 * len(stamp)
    out = _open(width, height, title, reason, ident, standalone)
    out.append(f'<text x="8" y="20" font-weight="bold" fill="{INK}">{escape(title)}</text>')
    out.append(f'<text x="8" y="48" fill="{INK}">{escape(reason[:110])}</text>')
    out += _stamp(stamp, 72, width)
    out.append("</svg>")
    return "\n".join(out)
