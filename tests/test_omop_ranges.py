"""OMOP measurement ranges from the programme's limits (issue 25, ADR 0019): range_low/high are
the range inside which the programme of the episode covering the reading raises no alert, worked
out by hand from the rules below."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection

from alerts.models import Rule, RuleOverride, Severity
from exports.omop.export import omop_export
from exports.omop.limits import programme_ranges
from patients.models import TreatmentEpisode
from tests.conftest import production_shape_required
from tests.test_omop_export import RELEASE, SCHEMA, person_id, reading, rows

if connection.vendor != "postgresql" and not production_shape_required():
    pytestmark = pytest.mark.skip(reason="the OMOP export writes into a PostgreSQL schema")

D1 = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)  # lung programme only
D6 = datetime(2026, 12, 6, 10, 30, tzinfo=UTC)  # lung and heart failure episodes both cover it


@pytest.fixture(autouse=True)
def _key(settings):
    settings.EXPORT_PSEUDONYM_KEY = "omop-test-key"


def rule(program, kind, params, active=True) -> Rule:
    return Rule.objects.create(program=program, kind=kind, name=kind, severity=Severity.RED, params=params,
                               active=active)


@pytest.fixture
def limits(cast):
    """Patient A: lung programme 1 Nov – 10 Dec, heart failure from 5 Dec. Both programmes (the
    cast) alert on SpO2 below 92. The lung programme's blood pressure limits:
      systolic:  threshold high 160; bands yellow 90–140 (red 80/180)  → 90 … 140
      diastolic: threshold 50–100; bands2 red above 110 only           → 50 … 100
    Heart failure: systolic above 130 only (so it disagrees with lung on both parts)."""
    a = cast.patient_a
    TreatmentEpisode.objects.filter(patient=a).update(treatment_start=date(2026, 11, 1), end=date(2026, 12, 10))
    TreatmentEpisode.objects.create(patient=a, program=cast.program_b, care_team=cast.team_a,
                                    condition_code="DI50", treatment_start=date(2026, 12, 5))
    lung, hf = cast.program_a, cast.program_b
    rule(lung, "threshold", {"measure": "blood-pressure", "high": 160})
    rule(lung, "bands", {"measure": "blood-pressure",
                         "bands": {"alert_low": 80, "warning_low": 90, "warning_high": 140, "alert_high": 180},
                         "bands2": {"alert_high": 110}})
    rule(lung, "threshold", {"measure": "blood-pressure", "component": "value2", "low": 50, "high": 100})
    rule(lung, "threshold", {"measure": "spo2", "low": 95}, active=False)  # switched off: not a limit
    spo2 = Rule.objects.get(program=lung, kind="threshold", params__measure="spo2", active=True)
    # This patient's own limit is not the programme's: it stays out of the range.
    RuleOverride.objects.create(rule=spo2, patient=a, params={"low": 88}, reason="usually 89-91",
                                created_by=cast.clinician_a)
    rule(hf, "threshold", {"measure": "blood-pressure", "high": 130})
    return {"spo2_rule": spo2}


def export(**kw):
    return omop_export(schema=SCHEMA, release_date=RELEASE, **kw)


def ranges(patient) -> dict[int, tuple]:
    return {r[0]: (r[1], r[2]) for r in rows(
        "SELECT measurement_id, range_low, range_high FROM cdm.measurement WHERE person_id = %s",
        [person_id(patient)])}


def test_the_programme_ranges_are_the_highest_low_and_lowest_high_of_its_active_rules(cast, limits):
    got = {(p, m, n): (lo, hi) for p, m, n, lo, hi in programme_ranges()}
    lung, hf = cast.program_a.pk, cast.program_b.pk
    assert got == {
        (lung, "blood-pressure", 0): (Decimal(90), Decimal(140)),
        (lung, "blood-pressure", 1): (Decimal(50), Decimal(100)),
        (lung, "spo2", 0): (Decimal(92), None),
        (hf, "blood-pressure", 0): (None, Decimal(130)),
        (hf, "spo2", 0): (Decimal(92), None),
    }


def test_spo2_and_blood_pressure_get_their_programmes_limits_as_ranges(cast, limits):
    a = cast.patient_a
    spo2 = reading(a, "spo2", "95", "%", D1)
    bp = reading(a, "blood-pressure", "142", "mm[Hg]", D1, value2="91")
    weight = reading(a, "body-weight", "81.4", "kg", D1)  # no rule on weight: no range
    result = export()
    assert all(c["ok"] for c in result["checks"])
    got = ranges(a)
    assert got[spo2.pk * 2] == (Decimal(92), None)  # low 92, no upper limit; the override's 88 not used
    assert got[bp.pk * 2] == (Decimal(90), Decimal(140))  # systolic
    assert got[bp.pk * 2 + 1] == (Decimal(50), Decimal(100))  # diastolic
    assert got[weight.pk * 2] == (None, None)
    # The range is in the unit of value_as_number (the measure's canonical unit).
    assert rows("SELECT unit_source_value FROM cdm.measurement WHERE measurement_id = %s", [bp.pk * 2]) == [
        ("mm[Hg]",)]


def test_a_reading_outside_every_episode_or_under_disagreeing_programmes_gets_no_range(cast, limits):
    a = cast.patient_a
    before = reading(a, "spo2", "95", "%", datetime(2026, 10, 31, 12, 0, tzinfo=UTC))  # before 1 Nov
    last_day = reading(a, "spo2", "95", "%", datetime(2026, 12, 10, 22, 30, tzinfo=UTC))  # 23:30 on 10 Dec
    both_bp = reading(a, "blood-pressure", "142", "mm[Hg]", D6, value2="91")
    both_spo2 = reading(a, "spo2", "95", "%", D6)
    export()
    got = ranges(a)
    assert got[before.pk * 2] == (None, None)
    assert got[last_day.pk * 2] == (Decimal(92), None)  # the end day counts, in Copenhagen time
    # Lung says 90–140 systolic, heart failure ≤ 130: no range rather than a guessed one.
    assert got[both_bp.pk * 2] == (None, None)
    # Diastolic: lung 50–100, heart failure none — they differ too.
    assert got[both_bp.pk * 2 + 1] == (None, None)
    # Both programmes say SpO2 ≥ 92: they agree, so the range stands.
    assert got[both_spo2.pk * 2] == (Decimal(92), None)
    after_lung = reading(a, "spo2", "95", "%", datetime(2026, 12, 11, 12, 0, tzinfo=UTC))  # heart failure only
    export()
    assert ranges(a)[after_lung.pk * 2] == (Decimal(92), None)


def test_an_incremental_run_after_a_rule_change_ends_where_a_full_run_would(cast, limits):
    a = cast.patient_a
    spo2 = reading(a, "spo2", "95", "%", D1)
    export()
    since = D1 + timedelta(days=30)
    Rule.objects.filter(pk=limits["spo2_rule"].pk).update(params={"measure": "spo2", "low": 90, "high": 100})
    export(since=since)  # no reading changed since; the limits did
    assert ranges(a)[spo2.pk * 2] == (Decimal(90), Decimal(100))
    omop_export(schema="omop_test_full", release_date=RELEASE)
    assert rows("SELECT t::text FROM cdm.measurement t ORDER BY 1") == rows(
        "SELECT t::text FROM omop_test_full.measurement t ORDER BY 1")
    # A rule switched off: its limits go from the rows kept as well.
    Rule.objects.filter(pk=limits["spo2_rule"].pk).update(active=False)
    export(since=since)
    assert ranges(a)[spo2.pk * 2] == (None, None)


def test_limits_that_leave_no_value_without_an_alert_give_no_range(cast):
    # Heart failure: SpO2 alerts below 92 (the cast) and, by a second rule, above 90 — every value
    # alerts, so there is no range to give; neither 92 nor 90 goes out alone.
    rule(cast.program_b, "threshold", {"measure": "spo2", "high": 90})
    got = {(p, m, n): (lo, hi) for p, m, n, lo, hi in programme_ranges()}
    assert got[(cast.program_b.pk, "spo2", 0)] == (None, None)
    assert got[(cast.program_a.pk, "spo2", 0)] == (Decimal(92), None)
    b = cast.patient_b
    TreatmentEpisode.objects.filter(patient=b).update(treatment_start=date(2026, 11, 1))
    spo2 = reading(b, "spo2", "95", "%", D1)
    export()
    assert ranges(b)[spo2.pk * 2] == (None, None)


def test_an_incremental_run_sees_a_limit_moved_to_the_other_side(cast):
    # low 92 → high 92: the same number on the other side must still count as a change
    # (patient B: heart failure only, so nothing else in the fingerprint moves).
    b = cast.patient_b
    TreatmentEpisode.objects.filter(patient=b).update(treatment_start=date(2026, 11, 1))
    spo2 = reading(b, "spo2", "95", "%", D1)
    export()
    assert ranges(b)[spo2.pk * 2] == (Decimal(92), None)
    Rule.objects.filter(program=cast.program_b, kind="threshold").update(params={"measure": "spo2", "high": 92})
    export(since=D1 + timedelta(days=30))
    assert ranges(b)[spo2.pk * 2] == (None, Decimal(92))
