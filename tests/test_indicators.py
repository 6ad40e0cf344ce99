"""Each outcome indicator on a small hand-made data set whose answers are worked out by hand:
ties, withdrawn consent, missing baselines, a patient who changed team, windows still open."""

import itertools
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from alerts.models import Alert, EscalationPolicy, Outcome, Rule, Severity, Status
from monitoring.models import Device, DeviceKind, DeviceLending, Reading
from outcomes import indicator_sql
from outcomes.indicators import (
    INDICATORS,
    Dataset,
    Filters,
    aggregate,
    cells_from_units,
    episodes_in_scope,
)
from outcomes.live import cells_from_rows
from outcomes.stats import mean_ci, quantile, t975, wilson
from patients.models import CareTeam, Patient, Region, Sex, TreatmentEpisode
from questionnaires.models import QuestionnaireResponse, ResponseReview, ResponseStatus
from schedules.models import Occurrence, OccurrenceStatus, Schedule
from tests.factories import make_cast

CPH = ZoneInfo("Europe/Copenhagen")
TODAY = date(2026, 12, 1)
NOW = datetime.combine(TODAY, time(12, 0), tzinfo=CPH)
START = date(2026, 1, 1)  # every 3-month window (day 61..121) has closed by TODAY
PHQ9 = "44261-6"

_cpr = itertools.count(1000)


def _patient(cast, *, team=None, start=START, sex=Sex.FEMALE, birth=date(1960, 6, 1), withdrawn=False,
             program=None):
    patient = Patient.objects.create(
        cpr=f"0101{next(_cpr) % 100:02d}-{next(_cpr):04d}", given_name="P", family_name="T", birth_date=birth,
        sex=sex, secondary_use_withdrawn_at=NOW if withdrawn else None)
    program = program or cast.program_a
    TreatmentEpisode.objects.create(patient=patient, program=program, care_team=team or cast.team_a,
                                    condition_code=program.condition_code, treatment_start=start)
    return patient


def _respond(cast, patient, day, phq9=None, *, at=time(12, 0), start=START):
    authored = datetime.combine(start + timedelta(days=day), at, tzinfo=CPH)
    scores = [] if phq9 is None else [{"code": {"system": "http://loinc.org", "code": PHQ9}, "value": phq9}]
    return QuestionnaireResponse.objects.create(
        patient=patient, questionnaire=cast.questionnaire, items=[], scores=scores, authored_at=authored,
        status=ResponseStatus.COMPLETED)


def _figure(code, filters=None):
    """The figure by the Python definition; on PostgreSQL also checks that the SQL twin gives the
    same cells (run this file with DATABASE_URL pointing at PostgreSQL to check both paths)."""
    indicator = INDICATORS[code]
    filters = filters or Filters()
    ds = Dataset(episodes_in_scope(filters, TODAY), TODAY, NOW)
    units = indicator.units(ds)
    if connection.vendor == "postgresql":
        sql_cells = cells_from_rows(indicator_sql.cells_rows(indicator, filters, TODAY, NOW))
        assert_same_cells(cells_from_units(units), sql_cells)
    return aggregate(indicator, units), units


def _cell_key(c):
    return (c.program_id, c.team_id, c.sex, c.age_band, c.month)


def assert_same_cells(python_cells, sql_cells):
    by_key = {_cell_key(c): c for c in sql_cells}
    assert sorted(by_key) == sorted(_cell_key(c) for c in python_cells)
    for c in python_cells:
        s = by_key[_cell_key(c)]
        assert (s.n_patients, s.n_units, s.categories) == (c.n_patients, c.n_units, c.categories), _cell_key(c)
        assert s.numerator == pytest.approx(c.numerator) and s.denominator == pytest.approx(c.denominator)
        assert sorted(s.values) == pytest.approx(sorted(c.values))


@pytest.fixture
def cast(db):
    cast = make_cast()
    # The cast's own episodes start relative to the real today; these tests fix TODAY instead.
    TreatmentEpisode.objects.all().delete()
    return cast


# --- statistics -----------------------------------------------------------------------------

def test_t_quantile_matches_the_printed_tables_from_four_degrees_of_freedom():
    for df, table in ((4, 2.776), (5, 2.571), (10, 2.228), (29, 2.045), (120, 1.980)):
        assert abs(t975(df) - table) < 0.002


def test_wilson_interval_for_eight_of_ten_is_49_to_94_percent():
    low, high = wilson(8, 10)
    assert round(low, 3) == 0.490 and round(high, 3) == 0.943


def test_quantiles_interpolate_like_a_spreadsheet_and_handle_ties():
    assert quantile([1, 2, 3, 4], 0.5) == 2.5
    assert quantile([5, 5, 5, 9], 0.5) == 5
    assert quantile([1, 2, 3, 4, 10], 0.9) == pytest.approx(7.6)
    mean, low, high = mean_ci([2, 4, 6, 8, 10])
    assert mean == 6 and high - mean == pytest.approx(2.776445 * 3.1622777 / 2.2360680, abs=0.01)


# --- response rate ----------------------------------------------------------------------------

def test_response_rate_at_three_months_counts_closed_windows_danish_days_and_never_the_withdrawn(cast):
    answered_day_61 = _patient(cast)
    _respond(cast, answered_day_61, 61)
    answered_twice = _patient(cast)
    _respond(cast, answered_twice, 80)
    _respond(cast, answered_twice, 90)
    day_60_utc_but_61_in_denmark = _patient(cast)
    QuestionnaireResponse.objects.create(
        patient=day_60_utc_but_61_in_denmark, questionnaire=cast.questionnaire, items=[], scores=[],
        authored_at=datetime.combine(START + timedelta(days=60), time(23, 30), tzinfo=ZoneInfo("UTC")))
    too_early = _patient(cast)
    _respond(cast, too_early, 60)
    silent = _patient(cast)
    draft_only = _patient(cast)
    QuestionnaireResponse.objects.create(
        patient=draft_only, questionnaire=cast.questionnaire, items=[], status=ResponseStatus.IN_PROGRESS,
        authored_at=datetime.combine(START + timedelta(days=70), time(12), tzinfo=CPH))
    withdrawn = _patient(cast, withdrawn=True)
    _respond(cast, withdrawn, 70)
    window_open = _patient(cast, start=TODAY - timedelta(days=100))
    _respond(cast, window_open, 70, start=TODAY - timedelta(days=100))
    assert silent and withdrawn

    figure, units = _figure("response-rate-3m")
    # The cast's own two episodes started 30 days before the real today, after TODAY: not counted.
    # Eligible: answered_day_61, answered_twice, day_60_utc, too_early, silent, draft_only = 6.
    assert figure.denominator == 6
    assert figure.numerator == 3
    assert figure.value == pytest.approx(0.5)
    assert {u.episode.patient_id for u in units}.isdisjoint({withdrawn.pk, window_open.pk})


# --- PROM change --------------------------------------------------------------------------------

def test_phq9_change_uses_the_last_baseline_and_the_follow_up_nearest_day_91_and_classifies_by_five_points(cast):
    improved_by_exactly_five = _patient(cast)
    _respond(cast, improved_by_exactly_five, -20, 18)
    _respond(cast, improved_by_exactly_five, -2, 15)  # the last baseline wins: 15
    _respond(cast, improved_by_exactly_five, 91, 10)
    unchanged = _patient(cast)
    _respond(cast, unchanged, 0, 15)
    _respond(cast, unchanged, 81, 11)  # 10 days before the target: the earlier of a tie wins
    _respond(cast, unchanged, 101, 2)  # 10 days after
    worse = _patient(cast)
    _respond(cast, worse, -1, 10)
    _respond(cast, worse, 95, 15)
    no_baseline = _patient(cast)
    _respond(cast, no_baseline, 91, 3)
    unscored_baseline = _patient(cast)
    _respond(cast, unscored_baseline, -1, None)
    _respond(cast, unscored_baseline, 91, 3)
    withdrawn = _patient(cast, withdrawn=True)
    _respond(cast, withdrawn, 0, 20)
    _respond(cast, withdrawn, 91, 0)

    figure, units = _figure("prom-change-phq-9-3m")
    assert sorted(u.value for u in units) == [-5, -4, 5]
    assert figure.categories == {"improved": 1, "unchanged": 1, "worse": 1}
    assert figure.mean == pytest.approx(-4 / 3)
    assert figure.median == -4
    assert figure.q1 == -4.5 and figure.q3 == 0.5
    assert figure.n_patients == 3


# --- alerts -------------------------------------------------------------------------------------

def _alert(patient, rule, *, raised, severity=Severity.RED, ack=None, resolved=None, outcome=""):
    return Alert.objects.create(
        patient=patient, rule=rule, rule_version=1, severity=severity, reason="r", evidence={},
        source_key=f"k{next(_cpr)}", raised_at=raised, acknowledged_at=ack, resolved_at=resolved,
        status=Status.RESOLVED if resolved else (Status.ACKNOWLEDGED if ack else Status.OPEN), outcome=outcome)


def test_alerts_per_100_patient_days_count_the_episode_days_up_to_yesterday(cast):
    rule = Rule.objects.get(program=cast.program_a, kind="threshold")
    yellow = Rule.objects.get(program=cast.program_a, kind="answer")
    start = TODAY - timedelta(days=100)
    a = _patient(cast, start=start)
    b = _patient(cast, start=start)
    raised = datetime.combine(start + timedelta(days=5), time(9), tzinfo=CPH)
    for k in range(3):
        _alert(a, rule, raised=raised + timedelta(days=k), resolved=raised + timedelta(days=k, hours=1))
    _alert(b, yellow, raised=raised, severity=Severity.YELLOW)
    before_start = _alert(b, rule, raised=raised - timedelta(days=30), resolved=raised)
    withdrawn = _patient(cast, start=start, withdrawn=True)
    _alert(withdrawn, rule, raised=raised)
    assert before_start

    every, _ = _figure("alert-rate-all")
    assert every.denominator == 200  # two patients, 100 days each (day 0..99)
    assert every.numerator == 4
    assert every.value == pytest.approx(2.0)
    red, _ = _figure("alert-rate-red")
    assert red.value == pytest.approx(1.5)


def test_red_alert_times_give_median_and_90th_percentile_and_the_share_within_each_teams_promise(cast):
    rule = Rule.objects.get(program=cast.program_a, kind="threshold")
    EscalationPolicy.objects.create(care_team=cast.team_b, after=timedelta(hours=2))
    start = TODAY - timedelta(days=50)
    raised = datetime.combine(start + timedelta(days=1), time(9), tzinfo=CPH)
    minutes = [10, 20, 20, 45, 90]  # team A's promise is 30 minutes: 3 of 5 on time
    for m in minutes:
        p = _patient(cast, start=start)
        _alert(p, rule, raised=raised, ack=raised + timedelta(minutes=m),
               resolved=raised + timedelta(minutes=2 * m), outcome=Outcome.NO_ACTION if m < 30 else "")
    team_b_patient = _patient(cast, start=start, team=cast.team_b, program=cast.program_a)
    _alert(team_b_patient, rule, raised=raised, ack=raised + timedelta(minutes=90))  # within B's 2 hours
    never_acknowledged = _patient(cast, start=start)
    _alert(never_acknowledged, rule, raised=raised)
    just_raised = _patient(cast, start=start)
    _alert(just_raised, rule, raised=NOW - timedelta(minutes=5))

    ack, _ = _figure("red-ack-hours")
    hours = [m / 60 for m in minutes] + [1.5]  # the never- and just-raised ones are not acknowledged
    assert ack.n_units == 6
    assert ack.median == pytest.approx(32.5 / 60)  # between 20 and 45 minutes
    assert ack.p90 == pytest.approx(quantile(hours, 0.9)) == pytest.approx(1.5)
    on_time, units = _figure("red-ack-on-time")
    # judged: 5 team-A alerts, the team-B one, the never-acknowledged one; not the just-raised one
    assert (on_time.numerator, on_time.denominator) == (4, 7)
    no_action, _ = _figure("alert-no-action")
    assert (no_action.numerator, no_action.denominator) == (3, 5)
    resolve, _ = _figure("red-resolve-hours")
    assert resolve.median == pytest.approx(40 / 60)


# --- review, adherence, missed --------------------------------------------------------------------

def test_reviews_on_time_count_reviewed_before_due_and_leave_out_those_not_yet_due(cast):
    start = TODAY - timedelta(days=40)
    p = _patient(cast, start=start)
    due = NOW - timedelta(days=1)
    on_time = _respond(cast, p, 10, start=start)
    late = _respond(cast, p, 11, start=start)
    never = _respond(cast, p, 12, start=start)
    not_due = _respond(cast, p, 13, start=start)
    QuestionnaireResponse.objects.filter(pk__in=[on_time.pk, late.pk, never.pk]).update(review_due_at=due)
    QuestionnaireResponse.objects.filter(pk=not_due.pk).update(review_due_at=NOW + timedelta(days=1))
    ResponseReview.objects.create(response=on_time, reviewed_by=cast.clinician_a, reviewed_at=due - timedelta(hours=1))
    ResponseReview.objects.create(response=late, reviewed_by=cast.clinician_a, reviewed_at=due + timedelta(hours=1))
    figure, _ = _figure("review-on-time")
    assert (figure.numerator, figure.denominator) == (1, 3)


def test_measurement_adherence_counts_lent_days_with_a_reading_and_ignores_erroneous_readings(cast):
    start = TODAY - timedelta(days=10)
    p = _patient(cast, start=start)
    device = Device.objects.create(kind=DeviceKind.SCALE, serial="S-1", patient=p, lent_from=start + timedelta(days=2))
    DeviceLending.objects.create(device=device, patient=p, lent_from=start + timedelta(days=2))
    # lent day 2..9 (yesterday) = 8 expected days; readings on days 2, 2, 5 and an erroneous one on 7
    for day, erroneous in ((2, False), (2, False), (5, False), (7, True)):
        Reading.objects.create(patient=p, device=device, measure="body-weight", value=80, unit="kg", source="device",
                               effective_at=datetime.combine(start + timedelta(days=day), time(8), tzinfo=CPH),
                               erroneous_at=NOW if erroneous else None)
    figure, _ = _figure("reading-adherence")
    assert (figure.numerator, figure.denominator) == (2, 8)


def test_missed_questionnaires_per_100_expected_count_missed_over_answered_and_missed(cast):
    start = TODAY - timedelta(days=40)
    p = _patient(cast, start=start)
    episode = p.episodes.get()
    schedule = Schedule.objects.create(program=cast.program_a, name="weekly", questionnaire_url=cast.questionnaire.url,
                                       kind="once", params={"kind": "once", "day": 7}, window=timedelta(days=2))
    moment = NOW - timedelta(days=20)
    for status in (OccurrenceStatus.MISSED, OccurrenceStatus.COMPLETED, OccurrenceStatus.COMPLETED,
                   OccurrenceStatus.COMPLETED, OccurrenceStatus.OPEN, OccurrenceStatus.PAUSED):
        Occurrence.objects.create(patient=p, episode=episode, schedule=schedule,
                                  questionnaire_url=cast.questionnaire.url, opens_at=moment, due_at=moment,
                                  closes_at=moment, status=status)
        moment += timedelta(days=1)
    figure, _ = _figure("missed-questionnaires")
    assert (figure.numerator, figure.denominator) == (1, 4)
    assert figure.value == pytest.approx(0.25)


def test_a_patient_who_changed_team_counts_once_for_the_new_team_only(cast):
    p = _patient(cast)
    _respond(cast, p, 91)
    TreatmentEpisode.objects.filter(patient=p).update(care_team=cast.team_b)
    _figure_all, units = _figure("response-rate-3m")
    assert [u.episode.team_id for u in units if u.episode.patient_id == p.pk] == [cast.team_b.pk]


def test_filters_by_sex_age_band_and_treatment_start_narrow_the_episodes(cast):
    other_team = CareTeam.objects.create(name="Team C", department="Onko", region=Region.SYDDANMARK)
    old_man = _patient(cast, sex=Sex.MALE, birth=date(1940, 1, 1), team=other_team)
    young_woman = _patient(cast, birth=date(1990, 1, 1))
    late = _patient(cast, start=date(2026, 6, 1))
    ids = lambda f: {e.patient_id for e in episodes_in_scope(f, TODAY)}  # noqa: E731
    assert ids(Filters(sex=Sex.MALE)) == {old_man.pk}
    assert ids(Filters(age_band="80+")) == {old_man.pk}
    assert young_woman.pk in ids(Filters(age_band="0-39"))
    assert ids(Filters(start_from=date(2026, 5, 1))) == {late.pk}


def test_every_indicator_is_defined_once_with_numerator_denominator_exclusions_and_source():
    for code, indicator in INDICATORS.items():
        assert indicator.code == code
        for text in (indicator.title, indicator.numerator, indicator.denominator, indicator.exclusions,
                     indicator.source):
            assert str(text).strip()
    assert "prom-change-phq-9-12m" in INDICATORS and "response-rate-baseline" in INDICATORS


def test_no_standard_level_is_invented_a_standard_comes_with_its_source():
    for indicator in INDICATORS.values():
        if indicator.standard is not None:
            assert indicator.standard_source.strip(), indicator.code
        else:
            assert indicator.meets(0.5) is None
        assert "illustrative" not in indicator.source


def test_alerts_per_100_patient_days_by_rule_kind_count_only_that_kinds_alerts(cast):
    threshold = Rule.objects.get(program=cast.program_a, kind="threshold")
    answer = Rule.objects.get(program=cast.program_a, kind="answer")
    start = TODAY - timedelta(days=50)
    p = _patient(cast, start=start)
    raised = datetime.combine(start + timedelta(days=3), time(9), tzinfo=CPH)
    _alert(p, threshold, raised=raised, resolved=raised + timedelta(hours=1))
    _alert(p, threshold, raised=raised + timedelta(days=1), resolved=raised + timedelta(days=1, hours=1))
    _alert(p, answer, raised=raised, severity=Severity.YELLOW)
    by_threshold, _ = _figure("alert-rate-kind-threshold")
    by_answer, _ = _figure("alert-rate-kind-answer")
    assert (by_threshold.numerator, by_threshold.denominator) == (2, 50)
    assert by_threshold.value == pytest.approx(4.0) and by_answer.value == pytest.approx(2.0)
    assert not INDICATORS["alert-rate-kind-threshold"].key and INDICATORS["alert-rate-all"].key
