"""The quality dashboards (issue 23): a front page of key indicators and one page per indicator
with filters, drill-down and four figures, each beside its table; every figure downloadable as
SVG and every table as CSV. Aggregates only: quality staff, analysts and administrators.

Views parse the filters, call outcomes.dashboard and render; nothing here touches a patient row.
Reading an aggregate is audited as an aggregate read (no patient in it)."""

from __future__ import annotations

import csv
import io
from typing import Any

from django import forms
from django.contrib import messages
from django.db import connection, transaction
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from accounts.decorators import role_required
from accounts.http import AuthenticatedHttpRequest
from accounts.models import Role
from audit.models import Action
from audit.services import audit_record
from outcomes.charts import Point, caterpillar_svg, funnel_unavailable_svg, series_svg, sparkline_svg
from outcomes.dashboard import (
    IndicatorView,
    Row,
    Table,
    headline_value,
    indicator_view,
    plain_value,
    row_cells,
    statistics_columns,
    suppression_rule,
)
from outcomes.funnel import FunnelPoint, funnel_for, funnel_svg, position, size_of
from outcomes.indicators import AGE_BANDS, INDICATORS, Dataset, Filters, Indicator, Kind, episodes_in_scope
from outcomes.replica import reads_from_replica
from outcomes.selectors import indicator_refreshes_fitting
from patients.models import Program, Region, Sex

DASHBOARD_ROLES = (Role.QUALITY, Role.ANALYST, Role.ADMIN)
TABLE_KEYS = ("org", "quarter", "sex", "age", "funnel")


class IndicatorFilterForm(forms.Form):
    program = forms.ModelChoiceField(label=gettext_lazy("Programme"), queryset=Program.objects.order_by("name"),
                                     required=False, empty_label=gettext_lazy("All programmes"))
    start_from = forms.DateField(label=gettext_lazy("Treatment start from"), required=False,
                                 widget=forms.DateInput(attrs={"type": "date"}))
    start_to = forms.DateField(label=gettext_lazy("Treatment start to"), required=False,
                               widget=forms.DateInput(attrs={"type": "date"}))
    sex = forms.ChoiceField(label=gettext_lazy("Sex"), required=False,
                            choices=[("", gettext_lazy("Both sexes"))] + list(Sex.choices))
    age_band = forms.ChoiceField(label=gettext_lazy("Age at treatment start"), required=False,
                                 choices=[("", gettext_lazy("All ages"))] + [(c, c) for c, _lo, _hi in AGE_BANDS])
    # The drill-down position travels with the filters (links and downloads keep both).
    region = forms.ChoiceField(required=False, choices=[("", "")] + list(Region.choices), widget=forms.HiddenInput)
    department = forms.CharField(required=False, max_length=200, widget=forms.HiddenInput)
    team = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("start_from"), data.get("start_to")
        if start and end and start > end:
            self.add_error("start_to", _("The end of the period is before its start."))
        return data

    def filters(self) -> Filters:
        d = self.cleaned_data if self.is_bound and self.is_valid() else {}
        program = d.get("program")
        return Filters(program_id=program.pk if program else None, start_from=d.get("start_from"),
                       start_to=d.get("start_to"), sex=d.get("sex") or "", age_band=d.get("age_band") or "")

    def position(self) -> dict[str, object]:
        d = self.cleaned_data if self.is_bound and self.is_valid() else {}
        return {"region": d.get("region") or "", "department": d.get("department") or "", "team_id": d.get("team")}


def _form(request: HttpRequest) -> IndicatorFilterForm:
    return IndicatorFilterForm(request.GET if request.GET else None)


def _query(request: HttpRequest, **changes: str | None) -> str:
    q = QueryDict(mutable=True)
    for key in ("program", "start_from", "start_to", "sex", "age_band", "region", "department", "team"):
        value = changes[key] if key in changes else request.GET.get(key)
        if value:
            q[key] = value
    return q.urlencode()


def _stamp(view: IndicatorView, position: str) -> list[str]:
    scope = "; ".join(f"{label}: {value}" for label, value in view.filters.describe()) or _("No filters")
    return [
        f"{_('Indicator')}: {view.indicator.title}",
        f"{_('Group')}: {position}. {_('Filters')}: {scope}",
        f"{_('Period')}: {_('treatment start')} {view.filters.start_from or '…'} – {view.filters.start_to or '…'}; "
        f"{_('figures up to')} {view.today.isoformat()}",
        f"{_('Made')}: {timezone.localtime(view.computed_at).strftime('%Y-%m-%d %H:%M')}",
        suppression_rule(),
    ]


def _points(indicator: Indicator, table: Table) -> list[Point]:
    out = []
    for r in table.rows:
        f = r.figure
        if r.shown and f.value is not None:
            out.append(Point(r.label, plain_value(indicator, f.value), plain_value(indicator, f.low),
                             plain_value(indicator, f.high)))
        else:
            out.append(Point(r.label, None, marker=r.marker if f.n_patients else _("none")))
    return out


def _funnel_rows(view: IndicatorView, table: Table) -> list[tuple[int, Row, str]]:
    """(number in the plot, row, position against the limits) per department."""
    ind = view.indicator
    national = view.national()
    funnel = funnel_for(ind, national.figure) if national.shown else None
    out = []
    for k, r in enumerate(table.rows, start=1):
        where = ""
        if funnel is not None and r.shown and r.figure.value is not None:
            where = position(funnel, plain_value(ind, r.figure.value), size_of(ind, r.figure),  # type: ignore[arg-type]
                             ind.higher_is_better)
        out.append((k, r, where))
    return out


def _funnel_svg(view: IndicatorView, table: Table, *, standalone: bool) -> str:
    ind = view.indicator
    national = view.national()
    funnel = funnel_for(ind, national.figure) if national.shown else None
    stamp = _stamp(view, _("All of Denmark")) if standalone else None
    title = f"{ind.title} — {table.title}"
    if funnel is None:
        return funnel_unavailable_svg(title=title, reason=_funnel_reason(view), ident="fig-funnel", stamp=stamp,
                                      standalone=standalone)
    size_label = {Kind.PROPORTION: _("Denominator"), Kind.RATE: _("Patient-days")}.get(ind.kind, _("Measurements"))
    points = [FunnelPoint(k, r.label, plain_value(ind, r.figure.value) if r.shown else None,
                          size_of(ind, r.figure), marker=r.marker if r.figure.n_patients else _("none"))
              for k, r, _where in _funnel_rows(view, table)]
    return funnel_svg(title=title, points=points, funnel=funnel, size_label=size_label, ident="fig-funnel",
                      national_label=_("Denmark"), stamp=stamp, standalone=standalone)


def _funnel_reason(view: IndicatorView) -> str:
    if view.indicator.kind == Kind.DISTRIBUTION and view.indicator.headline != "mean":
        return _("This indicator's headline is a median, which has no funnel limits; compare the departments "
                 "in the table and the drill-down instead.")
    return _("There is no national figure to draw the limits around (too few patients).")


def _figure_svg(view: IndicatorView, table: Table, *, standalone: bool) -> str:
    if table.key == "funnel":
        return _funnel_svg(view, table, standalone=standalone)
    ind = view.indicator
    percent = ind.kind == Kind.PROPORTION
    national = view.national()
    nat = plain_value(ind, national.figure.value) if national.shown else None
    std = plain_value(ind, ind.standard)
    labels = {"national_label": _("Denmark"), "standard_label": _("Standard")}
    stamp = _stamp(view, view.current().label) if standalone else None
    title = f"{ind.title} — {table.title} ({view.current().label})"
    if table.key == "quarter":
        national_series = _national_quarters(view, [r.key for r in table.rows])
        return series_svg(title=title, points=_points(ind, table), national=national_series, standard=std,
                          percent=percent, ident=f"fig-{table.key}", stamp=stamp, standalone=standalone, **labels)
    return caterpillar_svg(title=title, points=_points(ind, table), national=nat, standard=std, percent=percent,
                           ident=f"fig-{table.key}", stamp=stamp, standalone=standalone, **labels)


def _national_quarters(view: IndicatorView, quarters: list[object]) -> list[float | None]:
    """The national figure per quarter for the time series' reference line, suppressed as the
    national page's own quarter table is."""
    if view.position == "all":
        table = view.quarter_table()
    else:
        national = IndicatorView(view.indicator, view.filters, today=view.today,
                                 cells=None if view.in_db else view.cells, in_db=view.in_db,
                                 computed_at=view.computed_at, national_only=True)
        table = national.quarter_table()
    by_key = {r.key: r for r in table.rows}
    out: list[float | None] = []
    for q in quarters:
        r = by_key.get(q)
        out.append(plain_value(view.indicator, r.figure.value) if r is not None and r.shown else None)
    return out


@require_GET
@role_required(*DASHBOARD_ROLES)
@reads_from_replica
def indicator_home(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = _form(request)
    status = 400 if form.is_bound and not form.is_valid() else 200
    filters = form.filters()
    today = timezone.localdate()
    # Rows shared by the indicators computed live (on SQLite); on PostgreSQL the live ones are SQL.
    dataset = None if connection.vendor == "postgresql" else Dataset(episodes_in_scope(filters, today), today)
    rows = []
    refreshed = []
    more = [{"indicator": ind, "url": reverse("indicator-detail", args=[ind.code])}
            for ind in INDICATORS.values() if not ind.key]
    refreshes = indicator_refreshes_fitting(filters=filters) if dataset is None else None
    for ind in INDICATORS.values():
        if not ind.key:
            continue
        view = indicator_view(ind, filters, dataset=dataset, national_only=True, refreshes=refreshes)
        refreshed.append((view.precomputed, view.computed_at))
        national = view.national()
        quarters = view.quarter_table()
        trend = [plain_value(ind, r.figure.value) if r.shown else None for r in quarters.rows][-8:]
        trend_text = "; ".join(f"{r.label}: {headline_value(ind, r.figure.value) if r.shown else r.marker}"
                               for r in quarters.rows[-8:])
        value = national.figure.value if national.shown else None
        rows.append({
            "indicator": ind, "value": headline_value(ind, value) if value is not None else national.marker,
            "patients": row_cells(ind, national)[0],
            "sparkline": sparkline_svg(trend, label=f"{_('Trend by quarter')}: {trend_text}",
                                       percent=ind.kind == Kind.PROPORTION),
            "trend_text": trend_text, "standard": headline_value(ind, ind.standard), "meets": ind.meets(value),
            "url": reverse("indicator-detail", args=[ind.code]) + (f"?{_query(request)}" if _query(request) else ""),
        })
    audit_record(user=request.user, action=Action.READ, resource="Outcome indicators (aggregate)", request=request)
    return render(request, "outcomes/indicator_home.html", {
        "form": form, "rows": rows, "more": more,
        "computed_at": min(at for _p, at in refreshed) if refreshed else timezone.now(),
        "precomputed": all(p for p, _at in refreshed), "rule": suppression_rule(), "today": today,
        "can_refresh": request.user.role in (Role.QUALITY, Role.ADMIN)}, status=status)


@require_GET
@role_required(*DASHBOARD_ROLES)
@reads_from_replica
def indicator_detail(request: AuthenticatedHttpRequest, code: str) -> HttpResponse:
    indicator = INDICATORS.get(code)
    if indicator is None:
        raise Http404
    form = _form(request)
    status = 400 if form.is_bound and not form.is_valid() else 200
    view = indicator_view(indicator, form.filters(), **form.position())  # type: ignore[arg-type]
    cols = statistics_columns(indicator)
    figures = []
    query = _query(request)
    for table in view.tables():
        rows = []
        for r in table.rows:
            link = None
            if r.drill and table.key == "org":
                link = "?" + _query(request, region=r.drill.get("region"), department=r.drill.get("department"),
                                    team=r.drill.get("team"))
            rows.append({"label": r.label, "cells": row_cells(indicator, r), "link": link})
        figures.append({
            "key": table.key, "title": table.title, "group_label": table.group_label,
            "svg": _figure_svg(view, table, standalone=False), "rows": rows,
            "total": {"label": table.total.label, "cells": row_cells(indicator, table.total)},
            "csv": reverse("indicator-download", args=[code, table.key, "csv"]) + (f"?{query}" if query else ""),
            "svg_url": reverse("indicator-download", args=[code, table.key, "svg"]) + (f"?{query}" if query else ""),
            "png_url": reverse("indicator-download", args=[code, table.key, "png"]) + (f"?{query}" if query else ""),
        })
    crumbs = []
    for r in view.breadcrumbs():
        drill = r.drill or {}
        crumbs.append({"label": r.label, "link": "?" + _query(request, region=drill.get("region"),
                                                               department=drill.get("department"),
                                                               team=drill.get("team"))})
    current, national = view.current(), view.national()
    audit_record(user=request.user, action=Action.READ, resource=f"Outcome indicator {code} (aggregate)",
                 request=request)
    return render(request, "outcomes/indicator_detail.html", {
        "indicator": indicator, "form": form, "cols": cols, "figures": figures, "crumbs": crumbs,
        "current": {"label": current.label, "cells": row_cells(indicator, current),
                    "value": headline_value(indicator, current.figure.value) if current.shown else current.marker},
        "national": headline_value(indicator, national.figure.value) if national.shown else national.marker,
        "standard": headline_value(indicator, indicator.standard),
        "meets": indicator.meets(current.figure.value if current.shown else None),
        "computed_at": view.computed_at, "precomputed": view.precomputed, "rule": suppression_rule(),
        "today": view.today, "can_refresh": request.user.role in (Role.QUALITY, Role.ADMIN),
        "funnel_url": reverse("indicator-funnel", args=[code]) + (f"?{query}" if query else ""),
    }, status=status)


def _csv(view: IndicatorView, table: Table) -> bytes:
    """Danish Excel: semicolons, decimal commas, UTF-8 with a byte-order mark; the stamp first."""
    with translation.override("da"):
        buf = io.StringIO()
        writer = csv.writer(buf, delimiter=";", lineterminator="\r\n")
        for line in _stamp(view, view.current().label):
            writer.writerow([line])
        writer.writerow([])
        cols = statistics_columns(view.indicator)
        funnel = table.key == "funnel"
        where = {id(r): (k, w) for k, r, w in _funnel_rows(view, table)} if funnel else {}
        extra = [_("No. in the plot"), _("Compared with Denmark")] if funnel else []
        writer.writerow([table.group_label] + [heading for _k, heading in cols] + extra)
        body: list[Row] = [*table.rows, table.total]
        for r in body:
            label = r.label if r is not table.total else f"{_('Total')}: {r.label}"
            cells = [c.replace("\u00a0", " ").replace(" %", "") for c in row_cells(view.indicator, r)]
            if funnel:
                k, w = where.get(id(r), ("", ""))
                cells += [str(k), w]
            writer.writerow([label, *cells])
        return ("\ufeff" + buf.getvalue()).encode("utf-8")


@require_GET
@role_required(*DASHBOARD_ROLES)
@reads_from_replica
def indicator_funnel(request: AuthenticatedHttpRequest, code: str) -> HttpResponse:
    """The departments against the national value with 95 % and 99.8 % limits, beside the table."""
    indicator = INDICATORS.get(code)
    if indicator is None:
        raise Http404
    form = _form(request)
    status = 400 if form.is_bound and not form.is_valid() else 200
    view = indicator_view(indicator, form.filters())
    table = view.department_table()
    query = _query(request)
    suffix = f"?{query}" if query else ""
    rows = [{"number": k, "label": r.label, "cells": row_cells(indicator, r), "position": w}
            for k, r, w in _funnel_rows(view, table)]
    audit_record(user=request.user, action=Action.READ, resource=f"Outcome indicator {code} funnel (aggregate)",
                 request=request)
    return render(request, "outcomes/indicator_funnel.html", {
        "indicator": indicator, "form": form, "cols": statistics_columns(indicator), "table": table, "rows": rows,
        "total": row_cells(indicator, table.total), "svg": _figure_svg(view, table, standalone=False),
        "downloads": {f: reverse("indicator-download", args=[code, "funnel", f]) + suffix
                      for f in ("svg", "png", "csv")},
        "back": reverse("indicator-detail", args=[code]) + suffix,
        "computed_at": view.computed_at, "precomputed": view.precomputed, "rule": suppression_rule(),
        "today": view.today, "can_refresh": request.user.role in (Role.QUALITY, Role.ADMIN),
        "funnel_page": True,
    }, status=status)


@require_GET
@role_required(*DASHBOARD_ROLES)
@reads_from_replica
def indicator_download(request: AuthenticatedHttpRequest, code: str, table: str, fmt: str) -> HttpResponse:
    indicator = INDICATORS.get(code)
    if indicator is None or table not in TABLE_KEYS or fmt not in ("csv", "svg", "png"):
        raise Http404
    form = _form(request)
    if form.is_bound and not form.is_valid():
        return HttpResponse(_("The filters are not valid: %(errors)s") % {"errors": form.errors.as_text()},
                            status=400, content_type="text/plain; charset=utf-8")
    view = indicator_view(indicator, form.filters(), **form.position())  # type: ignore[arg-type]
    chosen = view.table(table)
    assert chosen is not None
    stamp_day = timezone.localdate().isoformat()
    name = f"{code}-{table}-{stamp_day}.{fmt}"
    audit_record(user=request.user, action=Action.READ, resource=f"Outcome indicator {code} {table}.{fmt} (aggregate)",
                 request=request)
    if fmt == "csv":
        resp = HttpResponse(_csv(view, chosen), content_type="text/csv; charset=utf-8")
    elif fmt == "png":
        import cairosvg  # imported here: only this download needs cairo

        svg = _figure_svg(view, chosen, standalone=True).replace('width="100%"', 'width="760"', 1)
        resp = HttpResponse(cairosvg.svg2png(bytestring=svg.encode("utf-8"), output_width=1520),
                            content_type="image/png")
    else:
        resp = HttpResponse(_figure_svg(view, chosen, standalone=True), content_type="image/svg+xml; charset=utf-8")
    resp["Content-Disposition"] = f'attachment; filename="{name}"'
    return resp



@require_POST
@role_required(Role.QUALITY, Role.ADMIN)
def indicator_refresh(request: AuthenticatedHttpRequest) -> HttpResponse:
    """"Refresh now": queue a rebuild of the precomputed aggregates after this request commits."""
    from outcomes.tasks import refresh_indicator_cells

    transaction.on_commit(refresh_indicator_cells.delay)
    audit_record(user=request.user, action=Action.UPDATE, resource="Outcome indicators refresh requested",
                 request=request)
    messages.success(request, _("The figures are being refreshed; reload the page in a minute."))
    return redirect("indicator-home")
