"""The funnel plot of the departments: 95 % and 99.8 % control limits around the national value
by denominator, a server-drawn SVG beside its table, downloads, and the same access and
suppression as the other indicator pages."""

import csv
import io
import itertools
import math
from datetime import date
from xml.etree import ElementTree

import pytest

from outcomes.funnel import Z95, Z998, Funnel, funnel_for, position
from outcomes.indicators import INDICATORS, Figure
from tests.test_indicator_pages import _client
from tests.test_indicator_pages import world as world  # noqa: F401 (the fixture, shared)


def test_limits_of_a_share_are_the_national_value_plus_minus_z_times_its_standard_error():
    f = funnel_for(INDICATORS["response-rate-3m"], Figure(n_patients=400, n_units=400, numerator=200,
                                                          denominator=400, value=0.5))
    low, high = f.limits(100, Z95)
    assert (round(low, 2), round(high, 2)) == (40.2, 59.8)  # 50 ± 1.96·√(0.25/100)·100
    low, high = f.limits(100, Z998)
    assert (round(low, 2), round(high, 2)) == (34.55, 65.45)
    assert f.limits(1, Z998) == (0.0, 100.0)  # clipped to a share's range


def test_limits_of_a_rate_use_the_poisson_spread_per_patient_day():
    f = funnel_for(INDICATORS["alert-rate-all"], Figure(n_patients=50, n_units=50, numerator=20, denominator=1000,
                                                        value=2.0))
    assert f.centre == pytest.approx(2.0)
    low, high = f.limits(1000, Z95)
    assert high - 2.0 == pytest.approx(100 * Z95 * math.sqrt(0.02 / 1000))


def test_a_median_headline_has_no_funnel_and_a_department_is_placed_in_words():
    assert funnel_for(INDICATORS["red-ack-hours"], Figure(10, 10, 0, 10, value=1.0, median=1.0)) is None
    f = Funnel(50.0, 50.0, percent=True)
    assert position(f, 52, 100, True) == "inden for 95 %-grænserne"
    assert position(f, 62, 100, True) == "bedre end forventet (uden for 95 %-grænsen)"
    assert position(f, 30, 100, True) == "dårligere end forventet (uden for 99,8 %-grænsen)"
    assert position(f, 30, 100, False) == "bedre end forventet (uden for 99,8 %-grænsen)"


def test_the_funnel_page_draws_the_departments_above_their_table_in_danish(world):
    page = _client(world.quality).get("/quality/indicators/response-rate-3m/funnel/")
    html = page.content.decode()
    assert page.status_code == 200
    assert html.count("<svg") == 1 and "<table" in html
    # The explanation is a blocktranslate with "%" in it (written "%%" in the catalogue).
    assert "Hver afdelings tal er tegnet mod dens størrelse" in html
    assert "Each department's figure" not in html
    assert "95 %-grænserne" in html or "inden for" in html
    assert "Hemmeligsen" not in html
    detail = _client(world.quality).get("/quality/indicators/response-rate-3m/").content.decode()
    assert "/quality/indicators/response-rate-3m/funnel/" in detail


def test_the_funnel_downloads_svg_png_and_a_danish_excel_csv_with_the_position_column(world):
    c = _client(world.analyst)
    svg = c.get("/quality/indicators/response-rate-3m/funnel.svg")
    assert svg.status_code == 200
    root = ElementTree.fromstring(svg.content)
    assert root.find("{http://www.w3.org/2000/svg}title") is not None
    png = c.get("/quality/indicators/response-rate-3m/funnel.png")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    raw = c.get("/quality/indicators/response-rate-3m/funnel.csv").content
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    header = next(r for r in rows if r and r[0] == "Afdeling")
    assert header[-2:] == ["Nr. i figuren", "Sammenlignet med Danmark"]


def test_a_median_indicator_says_why_it_has_no_funnel(world):
    html = _client(world.quality).get("/quality/indicators/red-ack-hours/funnel/").content.decode()
    assert "median" in html


def test_bad_filters_on_the_funnel_page_are_refused_in_danish_and_never_a_500(world):
    c = _client(world.quality)
    answer = c.get("/quality/indicators/response-rate-3m/funnel/?start_from=2026-06-01&start_to=2026-01-01")
    assert answer.status_code == 400 and "Periodens slutning ligger før dens start." in answer.content.decode()
    assert c.get("/quality/indicators/response-rate-3m/funnel/?sex=x&program=abc").status_code == 400
    assert c.get("/quality/indicators/nope/funnel/").status_code == 404


def test_the_funnel_is_for_dashboard_roles_only(world):
    answer = _client(world.clinician_a).get("/quality/indicators/response-rate-3m/funnel/")
    assert answer.status_code in (302, 403)


def test_a_department_minus_its_shown_teams_never_gives_back_a_teams_small_count_of_women(db):
    """Team X has 3 women and 10 men, team Y 10 and 10, both in one department: X's women are
    hidden ("<5") on X's page, so Y's women must be hidden too ("–") — else the department's
    women minus Y's would give X's 3 back — and X's men as well (X's total minus them)."""
    from datetime import timedelta

    from django.utils import timezone

    from outcomes.dashboard import IndicatorView
    from outcomes.indicators import Filters
    from patients.models import CareTeam, Patient, Region, Sex, TreatmentEpisode
    from tests.factories import make_cast

    cast = make_cast()
    TreatmentEpisode.objects.all().delete()
    start = timezone.localdate() - timedelta(days=200)
    x = CareTeam.objects.create(name="Team X", department="Nyre", region=Region.SJAELLAND)
    y = CareTeam.objects.create(name="Team Y", department="Nyre", region=Region.SJAELLAND)
    n = itertools.count(5000)
    for team, women, men in ((x, 3, 10), (y, 10, 10)):
        for sex, k in ((Sex.FEMALE, women), (Sex.MALE, men)):
            for _ in range(k):
                i = next(n)
                p = Patient.objects.create(cpr=f"0404{i % 90 + 10:02d}-{i:04d}", given_name="G", family_name="H",
                                           birth_date=date(1950, 1, 1), sex=sex)
                TreatmentEpisode.objects.create(patient=p, program=cast.program_a, care_team=team,
                                                condition_code="DC34", treatment_start=start)
    indicator = INDICATORS["response-rate-3m"]

    def sex_rows(team):
        view = IndicatorView(indicator, Filters(), region=Region.SJAELLAND, department="Nyre", team_id=team.pk)
        return {r.key: r for r in view.sex_table().rows}

    rows_x, rows_y = sex_rows(x), sex_rows(y)
    assert rows_x["female"].figure.n_patients == 3 and not rows_x["female"].shown and rows_x["female"].small
    assert not rows_x["male"].shown  # X's total (13) minus its men would give the 3 back
    assert not rows_y["female"].shown and not rows_y["female"].small  # the department minus Y's women
    dept = IndicatorView(indicator, Filters(), region=Region.SJAELLAND, department="Nyre")
    org = {r.key: r for r in dept.org_table().rows}
    assert org[("team", x.pk)].shown and org[("team", y.pk)].shown  # 13 and 20 patients: not small
