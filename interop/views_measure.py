"""FHIR endpoints of the outcome indicators: ``GET /fhir/Measure``, ``GET /fhir/Measure/{id}``,
``GET /fhir/MeasureReport?measure=…&period=…`` and ``GET /fhir/Measure/{id}/$evaluate-measure
?periodStart=…&periodEnd=…``. Aggregates only, suppressed exactly as the pages are (the same
outcomes.dashboard.IndicatorView); for quality staff, analysts and administrators.

``period`` is the period of treatment start the report covers. The MeasureReport search takes
FHIR date search values: ``period=2026`` (that year), ``period=2026-03`` (that month),
``period=ge2026-01-01&period=le2026-06-30``."""

import calendar
import re
from datetime import date

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import Role
from audit.models import Action
from audit.services import audit_record
from interop.mapping import searchset
from interop.measure import indicator_for_reference, indicator_to_measure, view_to_measure_report
from interop.views import FhirView, role_authorise
from outcomes.dashboard import indicator_view
from outcomes.indicators import INDICATORS, Filters, Indicator
from outcomes.replica import reads_from_replica

_OUTCOME = OpenApiResponse(OpenApiTypes.OBJECT, description="FHIR OperationOutcome")
_ALLOWED = (Role.QUALITY, Role.ANALYST, Role.ADMIN)
_DATE = re.compile(r"^(?P<prefix>eq|ge|le|gt|lt)?(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2}))?)?$")


def _authorise(request: Request, resource: str) -> None:
    role_authorise(request, allowed=_ALLOWED, resource=resource,
                   refusal="Measures are for quality staff, analysts and administrators.")


def _bounds(raw: str) -> tuple[str, date, date]:
    """(prefix, first day, last day) of a FHIR date search value; 400 when it is not one."""
    match = _DATE.match(raw.strip())
    if not match:
        raise exceptions.ParseError(f"{raw[:40]!r} is not a date: use YYYY, YYYY-MM or YYYY-MM-DD.")
    y, m, d = int(match["y"]), match["m"], match["d"]
    try:
        if d:
            first = last = date(y, int(m), int(d))
        elif m:
            first = date(y, int(m), 1)
            last = date(y, int(m), calendar.monthrange(y, int(m))[1])
        else:
            first, last = date(y, 1, 1), date(y, 12, 31)
    except ValueError as exc:
        raise exceptions.ParseError(f"{raw[:40]!r} is not a valid date.") from exc
    return match["prefix"] or "eq", first, last


def _period(values: list[str]) -> tuple[date | None, date | None]:
    start: date | None = None
    end: date | None = None
    for raw in values:
        prefix, first, last = _bounds(raw)
        if prefix in ("eq", "ge", "gt"):
            start = first if prefix != "gt" else date.fromordinal(last.toordinal() + 1)
        if prefix in ("eq", "le", "lt"):
            end = last if prefix != "lt" else date.fromordinal(first.toordinal() - 1)
    return _checked(start, end)


def _checked(start: date | None, end: date | None) -> tuple[date | None, date | None]:
    if start and end and start > end:
        raise exceptions.ParseError("The period ends before it starts.")
    return start, end


def _report(request: Request, indicator: Indicator, start: date | None, end: date | None) -> dict:
    view = reads_from_replica(indicator_view)(indicator, Filters(start_from=start, start_to=end))
    audit_record(user=request.user, action=Action.READ, resource=f"MeasureReport {indicator.code} (FHIR, aggregate)",
                 request=request)
    return view_to_measure_report(view, period_start=start, period_end=end, now=view.computed_at)


def _indicator(measure_id: str) -> Indicator:
    indicator = INDICATORS.get(measure_id)
    if indicator is None:
        raise exceptions.NotFound(f"No Measure with id {measure_id[:40]!r}.")
    return indicator


class MeasureSearchView(FhirView):
    @extend_schema(responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="searchset Bundle of Measures"),
                              401: _OUTCOME, 403: _OUTCOME}, tags=["fhir"], operation_id="fhir_Measure_search")
    def get(self, request: Request) -> Response:
        _authorise(request, "Measure search (FHIR)")
        measures = [indicator_to_measure(i) for i in INDICATORS.values()]
        return Response(searchset(request.build_absolute_uri("/fhir").rstrip("/"), measures))


class MeasureReadView(FhirView):
    @extend_schema(responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="FHIR R4 Measure"),
                              401: _OUTCOME, 403: _OUTCOME, 404: _OUTCOME}, tags=["fhir"],
                   operation_id="fhir_Measure_read")
    def get(self, request: Request, measure_id: str) -> Response:
        _authorise(request, f"Measure/{measure_id[:40]} (FHIR)")
        return Response(indicator_to_measure(_indicator(measure_id)))


class EvaluateMeasureView(FhirView):
    @extend_schema(parameters=[OpenApiParameter("periodStart", str), OpenApiParameter("periodEnd", str)],
                   responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="FHIR R4 MeasureReport"),
                              400: _OUTCOME, 401: _OUTCOME, 403: _OUTCOME, 404: _OUTCOME},
                   tags=["fhir"], operation_id="fhir_Measure_evaluate_measure")
    def get(self, request: Request, measure_id: str) -> Response:
        _authorise(request, f"Measure/{measure_id[:40]}/$evaluate-measure (FHIR)")
        indicator = _indicator(measure_id)
        start = end = None
        if raw := request.query_params.get("periodStart"):
            start = _bounds(raw)[1]
        if raw := request.query_params.get("periodEnd"):
            end = _bounds(raw)[2]
        start, end = _checked(start, end)
        return Response(_report(request, indicator, start, end))


class MeasureReportSearchView(FhirView):
    @extend_schema(parameters=[OpenApiParameter("measure", str, required=True), OpenApiParameter("period", str)],
                   responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="searchset Bundle"),
                              400: _OUTCOME, 401: _OUTCOME, 403: _OUTCOME}, tags=["fhir"],
                   operation_id="fhir_MeasureReport_search")
    def get(self, request: Request) -> Response:
        _authorise(request, "MeasureReport search (FHIR)")
        reference = request.query_params.get("measure")
        if not reference:
            raise exceptions.ParseError("Search MeasureReport with measure=<Measure url or id>.")
        indicator = indicator_for_reference(reference)
        start, end = _period(request.query_params.getlist("period"))
        reports = [_report(request, indicator, start, end)] if indicator else []
        return Response(searchset(request.build_absolute_uri("/fhir").rstrip("/"), reports))
