"""A funnel plot of the departments (issue 23): each department's figure against its size, with
95 % and 99.8 % control limits around the national value, so a small department is not called
an outlier for the chance variation any small group shows (Spiegelhalter DJ. Funnel plots for
comparing institutional performance. Stat Med 2005;24:1185-202).

Limits by the normal approximation, as Spiegelhalter's paper and the Danish clinical quality
databases' funnel plots draw them:
- shares: p0 ± z·√(p0(1 − p0)/n), n = the denominator;
- rates per 100 patient-days: 100·(r0 ± z·√(r0/T)), T = patient-days;
- means: m0 ± z·s0/√n, s0 = the national standard deviation, n = measurements.
An indicator whose headline is a median has no such limits: the page says so instead.

Hidden departments (small, or hidden so that a small one cannot be worked out) are listed in
the table with their marker and not drawn: the funnel shows exactly the department figures the
drill-down shows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from xml.sax.saxutils import escape

from django.utils.translation import gettext as _

from outcomes.charts import BLUE, GREY, INK, MUTED, RED, _fmt, _open, _stamp
from outcomes.indicator_core import Figure, Indicator, Kind
from outcomes.stats import t975

Z95, Z998 = 1.959964, 3.090232


@dataclass(frozen=True)
class Funnel:
    centre: float  # the national value, in the pages' unit (a share as a percentage)
    spread: float  # the per-unit spread: limits are centre ± z·spread/√n
    percent: bool

    def limits(self, n: float, z: float) -> tuple[float, float]:
        half = z * self.spread / math.sqrt(n)
        low, high = self.centre - half, self.centre + half
        if self.percent:
            low, high = max(0.0, low), min(100.0, high)
        return low, high


def funnel_for(indicator: Indicator, national: Figure) -> Funnel | None:
    """The limits around the national figure, or None when there are none (a median headline,
    no national figure)."""
    if national.value is None or national.n_units == 0:
        return None
    if indicator.kind == Kind.PROPORTION:
        p0 = national.value
        return Funnel(100 * p0, 100 * math.sqrt(p0 * (1 - p0)), percent=True)
    if indicator.kind == Kind.RATE:
        r0 = national.numerator / national.denominator  # per patient-day
        return Funnel(100 * r0, 100 * math.sqrt(r0), percent=False)
    # mean_high is set only together with mean (outcomes.indicator_core.aggregate)
    if (indicator.headline == "mean" and national.mean is not None and national.mean_high is not None
            and national.n_units >= 2):
        n = national.n_units
        sd = (national.mean_high - national.mean) * math.sqrt(n) / t975(n - 1)
        return Funnel(national.mean, sd, percent=False)
    return None


def size_of(indicator: Indicator, figure: Figure) -> float:
    """The x of a funnel plot: the denominator, patient-days, or measurements."""
    return figure.n_units if indicator.kind == Kind.DISTRIBUTION else figure.denominator


def position(funnel: Funnel, value: float, n: float, higher_is_better: bool) -> str:
    """Where a department lies, in words for the table (and the screen reader)."""
    if n <= 0:
        return ""
    lo95, hi95 = funnel.limits(n, Z95)
    lo998, hi998 = funnel.limits(n, Z998)
    if lo95 <= value <= hi95:
        return _("within the 95 % limits")
    above = value > hi95
    beyond = value > hi998 if above else value < lo998
    better = above == higher_is_better
    if beyond:
        return _("better than expected (beyond 99.8 %)") if better else _("worse than expected (beyond 99.8 %)")
    return _("better than expected (beyond 95 %)") if better else _("worse than expected (beyond 95 %)")


@dataclass(frozen=True)
class FunnelPoint:
    number: int
    label: str
    value: float | None  # None: hidden
    size: float
    marker: str = "–"


def funnel_svg(*, title: str, points: list[FunnelPoint], funnel: Funnel, size_label: str, ident: str,
               national_label: str, stamp: list[str] | None = None, standalone: bool = False) -> str:
    width, left, right, top, plot_h = 760, 60, 30, 56, 300
    stamp = stamp or []
    height = top + plot_h + 56 + 16 * len(stamp)
    shown = [(p, p.value) for p in points if p.value is not None and p.size > 0]  # (point, its value)
    max_n = max([p.size for p, _v in shown] + [10.0]) * 1.05
    min_n = max(1.0, max_n / 400)
    curve_n = [min_n * (max_n / min_n) ** (k / 60) for k in range(61)]
    ys = [v for _p, v in shown] + [funnel.centre]
    ys += [v for n in curve_n[6:] for v in funnel.limits(n, Z998)]
    lo, hi = (0.0, 100.0) if funnel.percent else (min(ys), max(ys))
    if hi <= lo:
        hi = lo + 1
    x = lambda n: left + (width - left - right) * n / max_n  # noqa: E731
    y = lambda v: top + plot_h - plot_h * (min(max(v, lo), hi) - lo) / (hi - lo)  # noqa: E731
    desc = f"{title}. {national_label} {_fmt(funnel.centre)}. " + "; ".join(
        f"{p.number} {p.label}: " + (f"{_fmt(p.value)}, {size_label} {_fmt(p.size)}" if p.value is not None
                                     else p.marker) for p in points)
    out = _open(width, height, title, desc, ident, standalone)
    out.append(f'<text x="8" y="20" font-weight="bold" fill="{INK}">{escape(title)}</text>')
    for k in range(5):
        v = lo + (hi - lo) * k / 4
        out.append(f'<line x1="{left}" y1="{y(v):.1f}" x2="{width - right}" y2="{y(v):.1f}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end" fill="{MUTED}">{_fmt(v)}</text>')
        n = max_n * k / 4
        out.append(f'<text x="{x(n):.1f}" y="{top + plot_h + 18}" text-anchor="middle" fill="{MUTED}">'
                   f'{_fmt(n)}</text>')
    out.append(f'<text x="{(left + width - right) / 2:.0f}" y="{top + plot_h + 36}" text-anchor="middle" '
               f'fill="{MUTED}">{escape(size_label)}</text>')
    for z, dash, colour in ((Z95, "4 3", GREY), (Z998, "", RED)):
        for side in (0, 1):
            pts = " ".join(f"{x(n):.1f},{y(funnel.limits(n, z)[side]):.1f}" for n in curve_n)
            out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" '
                       f'{f"stroke-dasharray={chr(34)}{dash}{chr(34)} " if dash else ""}points="{pts}"/>')
    out.append(f'<line x1="{left}" y1="{y(funnel.centre):.1f}" x2="{width - right}" y2="{y(funnel.centre):.1f}" '
               f'stroke="{INK}" stroke-width="2"/>')
    for p, value in shown:
        cx, cy = x(p.size), y(value)
        out.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="5" fill="{BLUE}"/>')
        out.append(f'<text x="{cx + 7:.1f}" y="{cy - 5:.1f}" fill="{INK}" font-size="11">{p.number}</text>')
    out.append(f'<text x="{left}" y="{top - 24}" fill="{INK}">— {escape(national_label)} {_fmt(funnel.centre)}'
               f'</text>')
    out.append(f'<text x="{left}" y="{top - 8}" fill="{GREY}">- - {escape(_("95 % limits"))}</text>')
    out.append(f'<text x="{left + 160}" y="{top - 8}" fill="{RED}">— {escape(_("99.8 % limits"))}</text>')
    out += _stamp(stamp, top + plot_h + 56, width)
    out.append("</svg>")
    return "\n".join(out)
