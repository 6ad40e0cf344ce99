"""Precomputed indicator aggregates: a refresh rebuilds them from the live rows, the pages read
them (showing when) and give the same figures as the live computation; a withdrawal leaves them
at the next refresh; refreshing twice changes nothing."""

from datetime import timedelta

import pytest
from django.utils import timezone

from outcomes.dashboard import IndicatorView, indicator_view
from outcomes.indicators import INDICATORS, Filters
from outcomes.models import IndicatorCell, IndicatorRefresh
from outcomes.services import indicator_cells_refresh
from patients.models import Patient
from tests.test_indicator_pages import _client, world  # noqa: F401


def _figures(view):
    return [(r.label, r.shown, r.figure.n_patients, r.figure.numerator, r.figure.value)
            for t in view.tables() for r in [*t.rows, t.total]]


@pytest.mark.parametrize("code", ["response-rate-3m", "alert-rate-all", "prom-change-phq-9-3m"])
def test_figures_from_the_precomputed_cells_equal_the_live_ones_at_every_level(world, code):  # noqa: F811
    indicator = INDICATORS[code]
    indicator_cells_refresh(codes=[code])
    for position in ({}, {"region": "1082"}, {"region": "1082", "department": "Lunge"}):
        live = IndicatorView(indicator, Filters(), **position)
        stored = indicator_view(indicator, Filters(), **position)
        assert stored.precomputed and not live.precomputed
        assert _figures(stored) == _figures(live)


def test_a_period_in_whole_months_reads_the_cells_and_a_finer_one_computes_live(world):  # noqa: F811
    indicator = INDICATORS["response-rate-3m"]
    indicator_cells_refresh(codes=[indicator.code])
    today = timezone.localdate()
    first = (today - timedelta(days=400)).replace(day=1)
    assert indicator_view(indicator, Filters(start_from=first)).precomputed
    assert not indicator_view(indicator, Filters(start_from=first + timedelta(days=3))).precomputed


def test_refreshing_twice_gives_the_same_cells_and_a_withdrawal_leaves_at_the_next_refresh(world):  # noqa: F811
    code = "response-rate-3m"
    indicator_cells_refresh(codes=[code])
    first = sorted(IndicatorCell.objects.filter(indicator=code).values_list("care_team_id", "n_patients", "numerator"))
    indicator_cells_refresh(codes=[code])
    assert sorted(IndicatorCell.objects.filter(indicator=code).values_list(
        "care_team_id", "n_patients", "numerator")) == first
    before = indicator_view(INDICATORS[code], Filters()).national().figure.n_patients
    Patient.objects.filter(family_name="Hemmeligsen").order_by("pk").filter(
        pk__in=Patient.objects.filter(family_name="Hemmeligsen").values("pk")[:1]).update(
        secondary_use_withdrawn_at=timezone.now())
    indicator_cells_refresh(codes=[code])
    assert indicator_view(INDICATORS[code], Filters()).national().figure.n_patients == before - 1
    assert IndicatorRefresh.objects.get(indicator=code).refreshed_at is not None


def test_pages_say_when_the_figures_were_refreshed_and_staff_can_ask_for_a_refresh(world, django_capture_on_commit_callbacks):  # noqa: F811,E501
    indicator_cells_refresh()
    html = _client(world.quality).get("/quality/indicators/response-rate-3m/").content.decode()
    assert "forudberegnet" in html
    with django_capture_on_commit_callbacks(execute=True):
        answer = _client(world.quality).post("/quality/indicators/refresh/")
    assert answer.status_code == 302
    assert _client(world.analyst).post("/quality/indicators/refresh/").status_code == 403
