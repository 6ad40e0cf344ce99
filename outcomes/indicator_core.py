"""The types and the arithmetic of the outcome indicators (issue 23): scope (Filters), the facts
of an episode, units, cells, figures, and the rows a scope reads (Dataset). The registry is
outcomes.indicators; the Python definitions of the units are outcomes.indicator_units, their SQL
twins outcomes.indicator_sql."""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils.functional import lazy
from django.utils.translation import gettext_lazy as _

from alerts.models import Alert, EscalationPolicy
from monitoring.models import DeviceLending, Reading
from outcomes.stats import mean_ci, poisson_ci, quantile, wilson
from patients.models import TreatmentEpisode, age_on
from questionnaires.models import QuestionnaireResponse, ResponseStatus
from schedules.models import Occurrence, OccurrenceStatus

DANISH_TIME = ZoneInfo("Europe/Copenhagen")

# A red alert's promise: acknowledged before the team's escalation ladder starts climbing
# (alerts.EscalationPolicy.after), 30 minutes where a team has no policy (the model's default).
DEFAULT_RED_ACK_PROMISE = timedelta(minutes=30)

AGE_BANDS: tuple[tuple[str, int, int | None], ...] = (
    ("0-39", 0, 39), ("40-59", 40, 59), ("60-69", 60, 69), ("70-79", 70, 79), ("80+", 80, None))


def fmt(template: Any, values: dict[str, Any]) -> Any:
    """A lazily translated string with %-placeholders filled in when it is shown, so the
    registry (built once, at import) follows each request's language."""
    return lazy(lambda: str(template) % {k: str(v) for k, v in values.items()}, str)()


def min_patients() -> int:
    """Figures are shown only for groups of at least this many patients (and counts below it
    as "<5"). Configurable as ``OUTCOMES_MIN_PATIENTS``; 5 by default, the Danish practice."""
    return int(getattr(settings, "OUTCOMES_MIN_PATIENTS", 5))


def age_band(age: int) -> str:
    for code, low, high in AGE_BANDS:
        if age >= low and (high is None or age <= high):
            return code
    return AGE_BANDS[-1][0]


def local_day(moment: datetime) -> date:
    return moment.astimezone(DANISH_TIME).date()


def quarter_of(day: date) -> str:
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


@dataclass(frozen=True)
class Filters:
    """The scope of a figure. Organisation (region → department → team) is the drill-down
    position, handled by the dashboard, not a filter here, so every level is cut from one tree."""

    program_id: int | None = None
    start_from: date | None = None
    start_to: date | None = None
    sex: str = ""
    age_band: str = ""

    def describe(self) -> list[tuple[str, str]]:
        from patients.models import Program, Sex
        out = []
        if self.program_id:
            program = Program.objects.filter(pk=self.program_id).first()
            out.append((str(_("Programme")), str(program) if program else str(self.program_id)))
        if self.start_from or self.start_to:
            out.append((str(_("Treatment start")),
                         f"{self.start_from.isoformat() if self.start_from else '…'} – "
                         f"{self.start_to.isoformat() if self.start_to else '…'}"))
        if self.sex:
            out.append((str(_("Sex")), str(dict(Sex.choices).get(self.sex, self.sex))))
        if self.age_band:
            out.append((str(_("Age band")), self.age_band))
        return out


@dataclass(frozen=True)
class EpisodeFacts:
    episode_id: int
    patient_id: uuid.UUID
    program_id: int
    team_id: int
    team_name: str
    department: str
    region: str
    sex: str
    age_band: str
    start: date
    end: date | None

    def covers(self, day: date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)


@dataclass(frozen=True)
class Unit:
    episode: EpisodeFacts
    numerator: float = 0
    denominator: float = 1
    value: float | None = None  # distributions: the unit's own value
    category: str = ""


class Kind(StrEnum):
    PROPORTION = "proportion"  # share: sum(numerator) / sum(denominator), Wilson interval
    RATE = "rate"  # events per 100 patient-days, Poisson interval
    DISTRIBUTION = "distribution"  # one value per unit: mean (t interval), median, IQR, p90


@dataclass(frozen=True)
class Indicator:
    code: str
    title: str | Any
    kind: Kind
    unit_label: str | Any
    numerator: str | Any
    denominator: str | Any
    exclusions: str | Any
    source: str
    units: Callable[[Dataset], list[Unit]] = field(repr=False)
    # The same units in SQL (outcomes.indicator_sql), used on PostgreSQL; tested equal to ``units``.
    # Called with ``shared=True`` by the refresh, which has built the rows several indicators
    # read (the episodes, the alerts, the scores, the reading days) once as temporary tables.
    sql: Callable[..., str] = field(repr=False, default=lambda shared=False: "")
    # Indicators the refresh computes together in one pass over their rows (e.g. the alert rates
    # by severity and rule kind: one scan of the alerts, one count per indicator), with the
    # indicator's own arguments in that pass (outcomes.indicator_sql.BATCHES). Tested to give
    # the cells of ``sql``.
    batch: str = ""
    batch_args: tuple[Any, ...] = ()
    standard: float | None = None  # in the headline's unit (a share as 0..1)
    # Where the standard comes from (a clinical quality database's standard or published
    # literature): required with a standard, so that no level is invented (tests check it).
    standard_source: str = ""
    higher_is_better: bool = True
    headline: str = "value"  # "value" | "mean" | "median"
    categories: tuple[tuple[str, Any], ...] = ()
    group: str | Any = ""
    key: bool = True  # on the front page; the others are listed below it

    def meets(self, value: float | None) -> bool | None:
        if value is None or self.standard is None:
            return None
        return value >= self.standard if self.higher_is_better else value <= self.standard


@dataclass
class Figure:
    n_patients: int
    n_units: int
    numerator: float
    denominator: float
    value: float | None = None  # the headline
    low: float | None = None
    high: float | None = None
    mean: float | None = None
    mean_low: float | None = None
    mean_high: float | None = None
    median: float | None = None
    q1: float | None = None
    q3: float | None = None
    p90: float | None = None
    categories: dict[str, int] = field(default_factory=dict)

    def counts(self, indicator: Indicator) -> tuple[int, ...]:
        """The counts the figure shows, in the order suppression sees them (each additive over
        groups): patients; for shares also the numerator and the rest of the denominator."""
        if indicator.kind == Kind.PROPORTION:
            return (self.n_patients, int(self.numerator), int(self.denominator - self.numerator))
        if indicator.kind == Kind.RATE:
            return (self.n_patients, int(self.numerator))
        return (self.n_patients, *(self.categories.get(c, 0) for c, _label in indicator.categories))


@dataclass
class Cell:
    """Units summed per programme, team, month of treatment start, sex and age band: the finest
    grain any page, download or report asks for, and what the precomputed table stores
    (outcomes.models.IndicatorCell). Distributions keep their values (medians and percentiles
    do not add up); a cell's values are never shown, only figures over groups of enough patients."""

    program_id: int
    team_id: int
    team_name: str
    department: str
    region: str
    sex: str
    age_band: str
    month: str  # "2026-03", of the treatment start
    n_patients: int = 0
    n_units: int = 0
    numerator: float = 0
    denominator: float = 0
    values: list[float] = field(default_factory=list)
    categories: dict[str, int] = field(default_factory=dict)

    @property
    def quarter(self) -> str:
        year, month = self.month.split("-")
        return f"{year}-Q{(int(month) - 1) // 3 + 1}"


def cells_from_units(units: Iterable[Unit]) -> list[Cell]:
    cells: dict[tuple[Any, ...], Cell] = {}
    patients: dict[tuple[Any, ...], set[Any]] = defaultdict(set)
    for u in units:
        e = u.episode
        key = (e.program_id, e.team_id, e.sex, e.age_band, e.start.strftime("%Y-%m"))
        cell = cells.get(key)
        if cell is None:
            cell = cells[key] = Cell(e.program_id, e.team_id, e.team_name, e.department, e.region, e.sex,
                                     e.age_band, key[-1])
        patients[key].add(e.patient_id)
        cell.n_units += 1
        cell.numerator += u.numerator
        cell.denominator += u.denominator
        if u.value is not None:
            cell.values.append(u.value)
        if u.category:
            cell.categories[u.category] = cell.categories.get(u.category, 0) + 1
    for key, cell in cells.items():
        cell.n_patients = len(patients[key])
    return list(cells.values())


def aggregate(indicator: Indicator, items: Iterable[Unit] | Iterable[Cell]) -> Figure:
    """The figure of a group. A patient is counted once per cell (programme, team, month, sex,
    age band): one with two episodes in different cells counts twice in a group holding both,
    which is rare and errs towards showing fewer small groups, never more."""
    listed: list[Unit | Cell] = list(items)
    units = [u for u in listed if isinstance(u, Unit)]
    cells = cells_from_units(units) if units else [c for c in listed if isinstance(c, Cell)]
    num = math.fsum(c.numerator for c in cells)
    den = math.fsum(c.denominator for c in cells)
    fig = Figure(n_patients=sum(c.n_patients for c in cells), n_units=sum(c.n_units for c in cells),
                 numerator=num, denominator=den)
    if indicator.categories:
        fig.categories = {code: sum(c.categories.get(code, 0) for c in cells) for code, _label in indicator.categories}
    if not cells:
        return fig
    if indicator.kind in (Kind.PROPORTION, Kind.RATE):
        ratio_figure(indicator, fig)
    elif indicator.kind == Kind.DISTRIBUTION:
        values = [v for c in cells for v in c.values]
        if values:
            fig.median = quantile(values, 0.5)
            fig.q1, fig.q3, fig.p90 = quantile(values, 0.25), quantile(values, 0.75), quantile(values, 0.9)
            if len(values) >= 2:
                fig.mean, fig.mean_low, fig.mean_high = mean_ci(values)
            else:
                fig.mean = values[0]
            headline_figure(indicator, fig)
    return fig


def ratio_figure(indicator: Indicator, fig: Figure) -> None:
    """A share's or a rate's value and 95 % interval from the figure's numerator and denominator
    (nothing when the denominator is 0): the one place this arithmetic lives, for the figures
    computed here and for those summed in SQL (outcomes.aggregates.figure_from)."""
    num, den = fig.numerator, fig.denominator
    if den <= 0:
        return
    if indicator.kind == Kind.PROPORTION:
        fig.value = num / den
        fig.low, fig.high = wilson(round(num), round(den))
    elif indicator.kind == Kind.RATE:
        fig.value = 100 * num / den
        low, high = poisson_ci(round(num))
        fig.low, fig.high = 100 * low / den, 100 * high / den


def headline_figure(indicator: Indicator, fig: Figure) -> None:
    """A distribution's headline and the interval drawn with it: the mean's 95 % CI, or the
    median's IQR."""
    if indicator.headline == "mean":
        fig.value, fig.low, fig.high = fig.mean, fig.mean_low, fig.mean_high
    else:
        fig.value, fig.low, fig.high = fig.median, fig.q1, fig.q3


# --- the data behind the indicators, loaded once per scope ----------------------------------------

def episodes_in_scope(filters: Filters, today: date) -> list[EpisodeFacts]:
    qs = (TreatmentEpisode.objects.filter(patient__secondary_use_withdrawn_at__isnull=True,
                                          treatment_start__lte=today)
          .values_list("pk", "patient_id", "program_id", "care_team_id", "care_team__name",
                       "care_team__department", "care_team__region", "patient__sex",
                       "patient__birth_date", "treatment_start", "end"))
    if filters.program_id:
        qs = qs.filter(program_id=filters.program_id)
    if filters.start_from:
        qs = qs.filter(treatment_start__gte=filters.start_from)
    if filters.start_to:
        qs = qs.filter(treatment_start__lte=filters.start_to)
    if filters.sex:
        qs = qs.filter(patient__sex=filters.sex)
    out = []
    for pk, patient_id, program_id, team_id, team_name, department, region, sex, birth, start, end in qs:
        band = age_band(age_on(birth, start))
        if filters.age_band and band != filters.age_band:
            continue
        out.append(EpisodeFacts(pk, patient_id, program_id, team_id, team_name, department, region, sex,
                                band, start, end))
    return out


class Dataset:
    """The rows the indicators read for one scope, each fetched once (a page computes many
    indicators over the same episodes)."""

    def __init__(self, episodes: list[EpisodeFacts], today: date, now: datetime | None = None) -> None:
        self.episodes = episodes
        self.today = today
        self.now = now or datetime.combine(today, datetime.min.time(), tzinfo=DANISH_TIME)
        self.by_patient: dict[Any, list[EpisodeFacts]] = defaultdict(list)
        for e in episodes:
            self.by_patient[e.patient_id].append(e)

    def episode_for(self, patient_id: uuid.UUID, day: date) -> EpisodeFacts | None:
        """The patient's episode that covers the day; the latest started if several do."""
        covering = [e for e in self.by_patient.get(patient_id, ()) if e.covers(day)]
        # Of two started the same day, the lower id (as the SQL twin orders them).
        return max(covering, key=lambda e: (e.start, -e.episode_id)) if covering else None

    @cached_property
    def responses(self) -> dict[Any, list[tuple[date, datetime, list[dict[str, Any]]]]]:
        """Completed responses per patient: (Danish day, authored_at, scores), by time."""
        out: dict[Any, list[tuple[date, datetime, list[dict[str, Any]]]]] = defaultdict(list)
        rows = (QuestionnaireResponse.objects.filter(patient_id__in=list(self.by_patient),
                                                     status=ResponseStatus.COMPLETED)
                .order_by("authored_at", "pk").values_list("patient_id", "authored_at", "scores"))
        for patient_id, authored, scores in rows.iterator(chunk_size=2000):
            out[patient_id].append((local_day(authored), authored, scores or []))
        return out

    @cached_property
    def alerts(self) -> list[Mapping[str, Any]]:
        return list(Alert.objects.filter(patient_id__in=list(self.by_patient)).values(
            "pk", "patient_id", "severity", "rule__kind", "raised_at", "acknowledged_at", "resolved_at",
            "outcome"))

    @cached_property
    def ack_promise(self) -> dict[int, timedelta]:
        return dict(EscalationPolicy.objects.values_list("care_team_id", "after"))

    @cached_property
    def reviews(self) -> list[tuple[Any, datetime, datetime, datetime | None]]:
        """(patient, authored_at, review_due_at, reviewed_at or None when not yet reviewed)."""
        rows = QuestionnaireResponse.objects.filter(
            patient_id__in=list(self.by_patient), status=ResponseStatus.COMPLETED, review_due_at__isnull=False,
        ).values_list("patient_id", "authored_at", "review_due_at", "review__reviewed_at")
        # due is never None (filtered above); the check only tells the type checker so.
        return [(patient_id, authored, due, reviewed) for patient_id, authored, due, reviewed in rows
                if due is not None]

    @cached_property
    def occurrences(self) -> list[tuple[int, str]]:
        return list(Occurrence.objects.filter(
            episode_id__in=[e.episode_id for e in self.episodes],
            status__in=(OccurrenceStatus.COMPLETED, OccurrenceStatus.MISSED)).values_list("episode_id", "status"))

    @cached_property
    def lendings(self) -> dict[Any, list[tuple[date, date | None]]]:
        out: dict[Any, list[tuple[date, date | None]]] = defaultdict(list)
        for patient_id, start, lent_to, returned in DeviceLending.objects.filter(
                patient_id__in=list(self.by_patient)).values_list("patient_id", "lent_from", "lent_to", "returned_on"):
            out[patient_id].append((start, returned or lent_to))
        return out

    @cached_property
    def reading_days(self) -> dict[Any, set[date]]:
        out: dict[Any, set[date]] = defaultdict(set)
        patients = [p for p in self.by_patient if p in self.lendings]
        for patient_id, at in Reading.objects.filter(patient_id__in=patients, erroneous_at__isnull=True).values_list(
                "patient_id", "effective_at").iterator(chunk_size=5000):
            out[patient_id].add(local_day(at))
        return out


