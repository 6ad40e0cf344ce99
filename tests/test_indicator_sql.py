"""The indicators computed in the database (PostgreSQL) give the same answers as the Python
definitions (the SQLite path): the refresh's INSERT … SELECT stores the same cells, and the
pages' GROUP BY GROUPING SETS with percentile_cont give the same figures per region, department,
team, quarter, sex and age band as outcomes.indicator_core.aggregate over those cells.

Hand-made data: ties in the follow-up scores, a withdrawn patient, a missing baseline, a patient
who changed team, two teams in two regions. Run with DATABASE_URL pointing at PostgreSQL; on
SQLite only the Python path exists and these tests are skipped."""

from datetime import date, time, timedelta

import pytest
from django.db import connection

from alerts.models import Outcome, Rule
from monitoring.models import Device, DeviceKind, DeviceLending, Reading
from outcomes import aggregates
from outcomes.dashboard import IndicatorView
from outcomes.indicators import INDICATORS, Dataset, Filters, aggregate, cells_from_units, episodes_in_scope
from outcomes.selectors import indicator_cells_precomputed
from outcomes.services import indicator_cells_refresh
from patients.models import CareTeam, Region, Sex, TreatmentEpisode
from tests.test_indicators import NOW, START, TODAY, _alert, _patient, _respond, assert_same_cells, cast  # noqa: F401

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="the SQL path is PostgreSQL's")


@pytest.fixture
def data(cast):  # noqa: F811 (the fixture imported above)
    north = CareTeam.objects.create(name="Team N", department="Onko N", region=Region.NORDJYLLAND)
    rule = Rule.objects.get(program=cast.program_a, kind="threshold")
    patients = []
    for i in range(14):
        team = north if i % 3 == 0 else cast.team_a
        p = _patient(cast, team=team, sex=Sex.MALE if i % 2 else Sex.FEMALE,
                     birth=date(1940 + 4 * i, 3, 1), start=START + timedelta(days=35 * (i % 5)))
        start = START + timedelta(days=35 * (i % 5))
        if i != 4:  # a missing baseline
            _respond(cast, p, -2, 10 + i % 4, start=start)
        _respond(cast, p, 91 - (i % 3), 6 + i % 5, start=start)  # ties: the same scores repeat
        if i % 4 == 0:
            _respond(cast, p, 93, 2, at=time(9, 0), start=start)  # as near day 91 as day 89: the earlier wins
        raised = NOW - timedelta(days=20 + i)
        _alert(p, rule, raised=raised, ack=raised + timedelta(minutes=10 * (i % 5)),
               resolved=raised + timedelta(hours=i % 4 + 1), outcome=Outcome.NO_ACTION if i % 2 else "")
        device = Device.objects.create(kind=DeviceKind.PULSE_OXIMETER, serial=f"S{i}", patient=p, lent_from=start)
        DeviceLending.objects.create(device=device, patient=p, lent_from=start)
        for d in range(0, 40, 1 + i % 3):
            Reading.objects.create(patient=p, measure="spo2", value=95, unit="%", source="device",
                                   effective_at=NOW - timedelta(days=d, hours=1), received_at=NOW)
        patients.append(p)
    _patient(cast, withdrawn=True)  # never counted
    moved = patients[1]
    TreatmentEpisode.objects.filter(patient=moved).update(care_team=north)  # changed team
    return patients


def _python_cells(code, filters=None):
    filters = filters or Filters()
    ds = Dataset(episodes_in_scope(filters, TODAY), TODAY)
    return cells_from_units(INDICATORS[code].units(ds))


def test_the_refresh_in_sql_stores_the_same_cells_as_the_python_definitions(data):
    indicator_cells_refresh(today=TODAY)
    for code in INDICATORS:
        cells, _refresh = indicator_cells_precomputed(code=code, filters=Filters())
        assert_same_cells(_python_cells(code), cells)


def _same_figure(indicator, got, want):
    assert (got.n_patients, got.n_units, got.categories) == (want.n_patients, want.n_units, want.categories)
    for name in ("numerator", "denominator", "value", "low", "high", "mean", "mean_low", "mean_high", "median",
                 "q1", "q3", "p90"):
        a, b = getattr(got, name), getattr(want, name)
        assert (a is None) == (b is None), (indicator.code, name)
        if a is not None:
            assert a == pytest.approx(b, rel=1e-9, abs=1e-9), (indicator.code, name)


@pytest.mark.parametrize("code", ["response-rate-3m", "prom-change-phq-9-3m", "alert-rate-all", "red-ack-hours",
                                  "red-resolve-hours", "alert-no-action", "reading-adherence"])
def test_figures_summed_in_the_database_equal_the_python_aggregate_at_every_level(data, code):
    indicator_cells_refresh(today=TODAY)
    indicator = INDICATORS[code]
    for filters in (Filters(), Filters(sex=Sex.FEMALE), Filters(start_from=date(2026, 2, 1))):
        cells, _r = indicator_cells_precomputed(code=code, filters=filters)
        python = IndicatorView(indicator, filters, today=TODAY, cells=cells)
        in_db = IndicatorView(indicator, filters, today=TODAY, in_db=True)
        assert set(in_db.figures) == set(python.figures)
        for node, fig in python.figures.items():
            _same_figure(indicator, in_db.figures[node], fig)
        assert (in_db.hidden, in_db.primary) == (python.hidden, python.primary)
        for table_py, table_db in zip(python.tables(), in_db.tables(), strict=True):
            assert [r.key for r in table_py.rows] == [r.key for r in table_db.rows]
            for r_py, r_db in zip(table_py.rows, table_db.rows, strict=True):
                _same_figure(indicator, r_db.figure, r_py.figure)
                assert r_py.shown == r_db.shown


def test_medians_quartiles_and_p90_with_ties_come_from_percentile_cont_like_the_spreadsheet(data):
    indicator_cells_refresh(today=TODAY)
    indicator = INDICATORS["prom-change-phq-9-3m"]
    national = aggregates.tree_figures(indicator, Filters(), national_only=True)[aggregates.ROOT]
    cells, _r = indicator_cells_precomputed(code=indicator.code, filters=Filters())
    values = sorted(v for c in cells for v in c.values)
    assert len(values) == 13  # 14 patients, one without a baseline (the withdrawn one is a 15th)
    assert len(set(values)) < len(values)  # ties
    _same_figure(indicator, national, aggregate(indicator, cells))
