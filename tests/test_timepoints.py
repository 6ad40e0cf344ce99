"""Outcome timepoints: windows around the index date, and responses/readings assigned to them."""

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from monitoring.models import Reading, Source
from outcomes.models import Cohort
from outcomes.selectors import (
    cohort_timepoint_counts,
    episode_readings_by_timepoint,
    episode_responses_by_timepoint,
)
from outcomes.timepoints import DEFAULT_TIMEPOINTS, Timepoint, TimepointDefinitionError, TimepointSet
from patients.models import Patient, TreatmentEpisode
from questionnaires.models import QuestionnaireResponse, ResponseStatus
from tests.factories import Cast

CPH = ZoneInfo("Europe/Copenhagen")
START = date(2025, 3, 10)


def _at(day: date, hour: int = 12, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=CPH)


# --- the pure definition -----------------------------------------------------------------------

@pytest.mark.parametrize(("offset", "code"), [
    (-31, None), (-30, "baseline"), (0, "baseline"), (1, None), (60, None),
    (61, "3m"), (91, "3m"), (121, "3m"), (122, None), (151, None), (152, "6m"), (212, "6m"),
    (213, None), (334, None), (335, "12m"), (395, "12m"), (396, None),
])
def test_a_day_falls_in_the_timepoint_whose_window_holds_it_edges_included(offset: int, code: str | None) -> None:
    tp = DEFAULT_TIMEPOINTS.timepoint_for(index_date=START, on=START + timedelta(days=offset))
    assert (tp.code if tp else None) == code


def test_the_default_windows_are_baseline_and_3_6_12_months_plus_minus_30_days() -> None:
    assert [(t.code, t.start_day, t.target_day, t.end_day) for t in DEFAULT_TIMEPOINTS] == [
        ("baseline", -30, 0, 0), ("3m", 61, 91, 121), ("6m", 152, 182, 212), ("12m", 335, 365, 395)]
    assert DEFAULT_TIMEPOINTS.get("6m").window(START) == (date(2025, 8, 9), date(2025, 10, 8))


@given(st.integers(-400, 800))
def test_every_day_is_in_at_most_one_default_window(day: int) -> None:
    holding = [t for t in DEFAULT_TIMEPOINTS if t.start_day <= day <= t.end_day]
    assert len(holding) <= 1
    assert DEFAULT_TIMEPOINTS.timepoint_for_day(day) == (holding[0] if holding else None)


def test_overlapping_windows_are_refused() -> None:
    with pytest.raises(TimepointDefinitionError, match="overlap"):
        TimepointSet((Timepoint("a", "a", 0, -30, 30), Timepoint("b", "b", 30, 30, 60)))


def test_a_window_that_misses_its_target_day_or_a_duplicate_code_is_refused() -> None:
    with pytest.raises(TimepointDefinitionError, match="target"):
        Timepoint("a", "a", target_day=100, start_day=0, end_day=30)
    with pytest.raises(TimepointDefinitionError, match="unique"):
        TimepointSet((Timepoint("a", "a", 0, 0, 1), Timepoint("a", "a", 10, 10, 11)))
    with pytest.raises(TimepointDefinitionError):
        TimepointSet(())


# --- assignment in the database ---------------------------------------------------------------

def _episode(cast: Cast, start: date = START) -> TreatmentEpisode:
    episode = cast.patient_a.episodes.get()
    episode.treatment_start = start
    episode.save()
    return episode


def _respond(patient: Patient, cast: Cast, at: datetime,
             status: str = ResponseStatus.COMPLETED) -> QuestionnaireResponse:
    return QuestionnaireResponse.objects.create(patient=patient, questionnaire=cast.questionnaire, items=[],
                                                authored_at=at, status=status)


def _read(patient: Patient, at: datetime, erroneous: bool = False) -> Reading:
    return Reading.objects.create(patient=patient, measure="spo2", value=Decimal(96), unit="%", effective_at=at,
                                  source=Source.DEVICE, erroneous_at=timezone.now() if erroneous else None)


@pytest.mark.django_db
def test_completed_responses_are_assigned_to_their_timepoint_in_the_database(cast: Cast) -> None:
    episode = _episode(cast)
    before = _respond(cast.patient_a, cast, _at(START - timedelta(days=31)))
    first_baseline = _respond(cast.patient_a, cast, _at(START - timedelta(days=30), 0, 5))
    on_start = _respond(cast.patient_a, cast, _at(START, 23, 59))
    day_one = _respond(cast.patient_a, cast, _at(START + timedelta(days=1), 0, 30))
    three_months = _respond(cast.patient_a, cast, _at(START + timedelta(days=121), 22, 0))
    _respond(cast.patient_a, cast, _at(START + timedelta(days=90)), status=ResponseStatus.IN_PROGRESS)
    got = {r.pk: (r.day, r.timepoint) for r in episode_responses_by_timepoint(episode=episode)}
    assert got == {
        before.pk: (-31, None), first_baseline.pk: (-30, "baseline"), on_start.pk: (0, "baseline"),
        day_one.pk: (1, None), three_months.pk: (121, "3m"),
    }  # the draft is not an outcome


@pytest.mark.django_db
def test_the_day_is_the_danish_calendar_day_not_the_utc_one(cast: Cast) -> None:
    episode = _episode(cast, date(2025, 7, 1))
    # 00:30 in Copenhagen on 1 July is 22:30 UTC on 30 June: day 0, baseline — not day -1.
    early = _respond(cast.patient_a, cast, datetime(2025, 6, 30, 22, 30, tzinfo=ZoneInfo("UTC")))
    # 23:30 Copenhagen on day 121 is still 3 months; 00:30 the next morning is outside.
    late_in = _respond(cast.patient_a, cast, _at(date(2025, 7, 1) + timedelta(days=121), 23, 30))
    late_out = _respond(cast.patient_a, cast, _at(date(2025, 7, 1) + timedelta(days=122), 0, 30))
    got = {r.pk: r.timepoint for r in episode_responses_by_timepoint(episode=episode)}
    assert got == {early.pk: "baseline", late_in.pk: "3m", late_out.pk: None}


@pytest.mark.django_db
def test_erroneous_readings_are_not_outcomes_and_the_rest_get_their_timepoint(cast: Cast) -> None:
    episode = _episode(cast)
    good = _read(cast.patient_a, _at(START + timedelta(days=182)))
    _read(cast.patient_a, _at(START + timedelta(days=183)), erroneous=True)
    outside = _read(cast.patient_a, _at(START + timedelta(days=30)))
    got = {r.pk: r.timepoint for r in episode_readings_by_timepoint(episode=episode)}
    assert got == {good.pk: "6m", outside.pk: None}


@pytest.mark.django_db
def test_another_patients_answers_never_count_for_this_episode(cast: Cast) -> None:
    episode = _episode(cast)
    _respond(cast.patient_b, cast, _at(START))
    assert list(episode_responses_by_timepoint(episode=episode)) == []


@pytest.mark.django_db
def test_cohort_counts_expect_members_once_the_window_has_closed_and_count_answers_inside_it(cast: Cast) -> None:
    today = date(2025, 12, 1)
    a = _episode(cast, date(2025, 1, 1))  # 3m (closed 2 May) and 6m (closed 1 Aug) expected; 12m not yet
    b = cast.patient_b.episodes.get()
    b.treatment_start = date(2025, 10, 1)  # only baseline has closed
    b.save()
    _respond(cast.patient_a, cast, _at(date(2025, 1, 1) + timedelta(days=61)))  # 3m, first day
    _respond(cast.patient_a, cast, _at(date(2025, 1, 1) + timedelta(days=150)))  # between 3m and 6m
    _respond(cast.patient_b, cast, _at(date(2025, 9, 15)))  # baseline
    _read(cast.patient_a, _at(date(2025, 1, 1) + timedelta(days=182)))  # readings are not answers
    counts = {c.timepoint.code: (c.expected, c.responded)
              for c in cohort_timepoint_counts(cohort=Cohort(name="all"), today=today)}
    assert counts == {"baseline": (2, 1), "3m": (1, 1), "6m": (1, 0), "12m": (0, 0)}
    assert a.pk and b.pk


@pytest.mark.django_db
def test_the_last_day_of_a_window_is_still_open_on_that_day(cast: Cast) -> None:
    _episode(cast, date(2025, 1, 1))
    TreatmentEpisode.objects.filter(patient=cast.patient_b).delete()
    last_day_3m = date(2025, 1, 1) + timedelta(days=121)
    counts = cohort_timepoint_counts(cohort=Cohort(name="all"), today=last_day_3m)
    assert {c.timepoint.code: c.expected for c in counts}["3m"] == 0
    counts = cohort_timepoint_counts(cohort=Cohort(name="all"), today=last_day_3m + timedelta(days=1))
    assert {c.timepoint.code: c.expected for c in counts}["3m"] == 1
