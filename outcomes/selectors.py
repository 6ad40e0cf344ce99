"""Reads for cohorts and outcomes. Membership is always evaluated now, from the criteria."""

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, TypedDict
from zoneinfo import ZoneInfo

from django.db.models import Case, Count, Exists, F, Func, IntegerField, OuterRef, Q, QuerySet, Value, When
from django.db.models.expressions import ExpressionWrapper
from django.db.models.fields import CharField
from django.db.models.functions import ExtractDay, ExtractMonth, ExtractYear, TruncDate

from monitoring.models import Reading
from outcomes.models import Cohort
from outcomes.timepoints import Timepoint, TimepointSet, timepoints_for_program
from patients.models import TreatmentEpisode
from questionnaires.models import QuestionnaireResponse, ResponseStatus

if TYPE_CHECKING:
    # django-stubs-ext's WithAnnotations is for the checker only (at runtime it takes one
    # argument); the indicator modules are imported late below, as before.
    from django_stubs_ext import WithAnnotations

    from outcomes.indicator_core import Filters
    from outcomes.indicators import Cell
    from outcomes.models import IndicatorRefresh

# Timepoint days are Danish calendar days (see outcomes.timepoints).
DANISH_TIME = ZoneInfo("Europe/Copenhagen")


class DaysBetween(Func):
    """Whole days from the second date to the first (``later - earlier``), as an integer.

    PostgreSQL subtracts dates to an integer; SQLite has no date type, so the Julian day numbers
    of the two (midnight) dates are subtracted instead — exact, since both are whole days."""

    arity = 2
    arg_joiner = " - "
    template = "(%(expressions)s)"
    output_field = IntegerField()

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, template="CAST(julianday(%(expressions)s) AS INTEGER)",
                           arg_joiner=") - julianday(", **extra)


def _local_day(field: str) -> TruncDate:
    return TruncDate(field, tzinfo=DANISH_TIME)


def _timepoint_case(timepoints: TimepointSet) -> Case:
    """The code of the timepoint whose window holds the annotation ``_day``, else NULL."""
    return Case(
        *[When(_day__range=(t.start_day, t.end_day), then=Value(t.code)) for t in timepoints],
        default=Value(None), output_field=CharField(),
    )


# --- cohort membership ------------------------------------------------------------------------

def _yyyymmdd(field: str) -> ExpressionWrapper:
    return ExpressionWrapper(
        ExtractYear(field) * 10000 + ExtractMonth(field) * 100 + ExtractDay(field),
        output_field=IntegerField(),
    )


def cohort_episodes(*, cohort: Cohort) -> QuerySet[TreatmentEpisode]:
    """The treatment episodes that meet the cohort's criteria, now.

    Patients who withdrew from secondary use are always left out (see ConsentCriterion: a cohort
    cannot ask for them)."""
    qs = TreatmentEpisode.objects.filter(patient__secondary_use_withdrawn_at__isnull=True)
    if cohort.program_id is not None:
        qs = qs.filter(program_id=cohort.program_id)
    if cohort.condition_code:
        qs = qs.filter(condition_code__startswith=cohort.condition_code)
    if cohort.treatment_start_from is not None:
        qs = qs.filter(treatment_start__gte=cohort.treatment_start_from)
    if cohort.treatment_start_to is not None:
        qs = qs.filter(treatment_start__lte=cohort.treatment_start_to)
    if cohort.department:
        qs = qs.filter(care_team__department=cohort.department)
    if cohort.region:
        qs = qs.filter(care_team__region=cohort.region)
    if cohort.sex:
        qs = qs.filter(patient__sex=cohort.sex)
    if cohort.age_min is not None or cohort.age_max is not None:
        # Whole years at the index date, in SQL and the same on SQLite and PostgreSQL:
        # YYYYMMDD(start) - YYYYMMDD(birth) >= N * 10000  <=>  the N-th birthday was on or before
        # the start. Someone born on 29 February turns a year older on 1 March in common years.
        qs = qs.annotate(_age_key=_yyyymmdd("treatment_start") - _yyyymmdd("patient__birth_date"))
        if cohort.age_min is not None:
            qs = qs.filter(_age_key__gte=cohort.age_min * 10000)
        if cohort.age_max is not None:
            qs = qs.filter(_age_key__lt=(cohort.age_max + 1) * 10000)
    return qs


def cohort_patient_ids(*, cohort: Cohort) -> list[uuid.UUID]:
    """The ids of the cohort's members at this moment, sorted (stable for keyset pagination and
    for tests). Never includes a patient who withdrew from secondary use."""
    return list(
        cohort_episodes(cohort=cohort).order_by("patient_id").values_list("patient_id", flat=True).distinct()
    )


def cohort_patient_ids_query(*, cohort: Cohort) -> QuerySet[TreatmentEpisode, uuid.UUID]:
    """The same members as an unevaluated ``values_list`` query, for use as a subquery
    (``Patient.objects.filter(pk__in=...)``) so that a large export never holds every id in memory."""
    return cohort_episodes(cohort=cohort).values_list("patient_id", flat=True).distinct()


def cohort_count(*, cohort: Cohort) -> int:
    return cohort_episodes(cohort=cohort).values("patient_id").distinct().count()


def cohorts_all() -> QuerySet[Cohort]:
    return Cohort.objects.select_related("program", "created_by").order_by("name")


# --- responses and readings by timepoint --------------------------------------------------------

class Timepointed(TypedDict):
    """What the by-timepoint selectors annotate each row with."""

    day: int  # days since the episode's index date (Danish calendar days)
    timepoint: str | None  # the window's code, or None outside every window


def episode_responses_by_timepoint(
    *, episode: TreatmentEpisode, timepoints: TimepointSet | None = None
) -> "QuerySet[WithAnnotations[QuestionnaireResponse, Timepointed]]":
    """The episode's patient's completed responses, each annotated with ``timepoint`` (a code, or
    None when the day falls in no window) and ``day`` (days since the index date). Drafts never
    count as outcomes."""
    timepoints = timepoints or timepoints_for_program(episode.program)
    return (
        QuestionnaireResponse.objects.filter(patient_id=episode.patient_id, status=ResponseStatus.COMPLETED)
        .annotate(_day=DaysBetween(_local_day("authored_at"), Value(episode.treatment_start)))
        .annotate(day=F("_day"), timepoint=_timepoint_case(timepoints))
        .order_by("authored_at", "pk")
    )


def episode_readings_by_timepoint(
    *, episode: TreatmentEpisode, timepoints: TimepointSet | None = None
) -> "QuerySet[WithAnnotations[Reading, Timepointed]]":
    """The episode's patient's readings, without those marked erroneous (kept for the record,
    never an outcome), annotated with ``timepoint`` and ``day`` like the responses."""
    timepoints = timepoints or timepoints_for_program(episode.program)
    return (
        Reading.objects.filter(patient_id=episode.patient_id, erroneous_at__isnull=True)
        .annotate(_day=DaysBetween(_local_day("effective_at"), Value(episode.treatment_start)))
        .annotate(day=F("_day"), timepoint=_timepoint_case(timepoints))
        .order_by("effective_at", "pk")
    )


@dataclass(frozen=True)
class TimepointCount:
    timepoint: Timepoint
    expected: int  # members whose window has closed
    responded: int  # of those, members with at least one completed response inside the window


def _responded_in(t: Timepoint) -> Exists:
    return Exists(
        QuestionnaireResponse.objects.filter(patient_id=OuterRef("patient_id"), status=ResponseStatus.COMPLETED)
        .annotate(_day=DaysBetween(_local_day("authored_at"), OuterRef("treatment_start")))
        .filter(_day__gte=t.start_day, _day__lte=t.end_day)  # the window, both ends included
    )


def cohort_timepoint_counts(
    *, cohort: Cohort, today: date, timepoints: TimepointSet | None = None
) -> list[TimepointCount]:
    """Per timepoint: how many members were expected to answer, and how many did — one query.

    A member is *expected* at a timepoint once its window has closed (the last day of the window
    is before ``today``): counting open windows would show every current follow-up as a
    non-response. A member with several matching episodes counts once, as expected when any
    episode's window has closed, and as responded when they answered in such a window."""
    timepoints = timepoints or timepoints_for_program(cohort.program)
    episodes = cohort_episodes(cohort=cohort).annotate(
        **{f"_responded_{i}": _responded_in(t) for i, t in enumerate(timepoints)}
    )
    aggregates: dict[str, Count] = {}
    for i, t in enumerate(timepoints):
        # window closed <=> treatment_start + end_day < today
        closed = Q(treatment_start__lt=today - timedelta(days=t.end_day))
        aggregates[f"expected_{i}"] = Count("patient_id", distinct=True, filter=closed)
        aggregates[f"responded_{i}"] = Count(
            "patient_id", distinct=True, filter=closed & Q(**{f"_responded_{i}": True}))
    row = episodes.aggregate(**aggregates)
    return [TimepointCount(timepoint=t, expected=row[f"expected_{i}"], responded=row[f"responded_{i}"])
            for i, t in enumerate(timepoints)]


# --- precomputed indicator aggregates (issue 23) ------------------------------------------------

def _month_aligned(start: date | None, end: date | None) -> bool:
    first_ok = start is None or start.day == 1
    last_ok = end is None or (end + timedelta(days=1)).day == 1
    return first_ok and last_ok


def indicator_refresh_fitting(*, code: str, filters: "Filters") -> "IndicatorRefresh | None":
    """The indicator's last refresh when its cells fit the filters (whole months), else None."""
    from outcomes.models import IndicatorRefresh

    if not _month_aligned(filters.start_from, filters.start_to):
        return None
    return IndicatorRefresh.objects.filter(indicator=code, refreshed_at__isnull=False).first()


def indicator_refreshes_fitting(*, filters: "Filters") -> "dict[str, IndicatorRefresh]":
    """``indicator_refresh_fitting`` of every indicator at once (the front page's 23): by code."""
    from outcomes.models import IndicatorRefresh

    if not _month_aligned(filters.start_from, filters.start_to):
        return {}
    return {r.indicator: r for r in IndicatorRefresh.objects.filter(refreshed_at__isnull=False)}


def indicator_cells_precomputed(*, code: str, filters: "Filters") -> "tuple[list[Cell], IndicatorRefresh] | None":
    """The precomputed cells of an indicator cut to the filters, with their refresh time; None
    when there are none yet or the filters are finer than the cells (a period not in whole
    months) — the page then computes live."""
    from outcomes.indicators import Cell
    from outcomes.models import IndicatorCell, IndicatorRefresh

    refresh = IndicatorRefresh.objects.filter(indicator=code, refreshed_at__isnull=False).first()
    if refresh is None or not _month_aligned(filters.start_from, filters.start_to):
        return None
    qs = IndicatorCell.objects.filter(indicator=code)
    if filters.program_id:
        qs = qs.filter(program_id=filters.program_id)
    if filters.sex:
        qs = qs.filter(sex=filters.sex)
    if filters.age_band:
        qs = qs.filter(age_band=filters.age_band)
    if filters.start_from:
        qs = qs.filter(month__gte=filters.start_from.strftime("%Y-%m"))
    if filters.start_to:
        qs = qs.filter(month__lte=filters.start_to.strftime("%Y-%m"))
    rows = qs.values_list("program_id", "care_team_id", "care_team__name", "care_team__department",
                          "care_team__region", "sex", "age_band", "month", "n_patients", "n_units", "numerator",
                          "denominator", "values", "categories")
    cells = [Cell(program_id=r[0], team_id=r[1], team_name=r[2], department=r[3], region=r[4], sex=r[5],
                  age_band=r[6], month=r[7], n_patients=r[8], n_units=r[9], numerator=r[10], denominator=r[11],
                  values=r[12] or [], categories=r[13] or {}) for r in rows.iterator(chunk_size=5000)]
    return cells, refresh
