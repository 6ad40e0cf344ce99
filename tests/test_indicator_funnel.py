"""The funnel plot of the departments: 95 % and 99.8 % control limits around the national value
by denominator, a server-drawn SVG beside its table, downloads, and the same access and
suppression as the other indicator pages."""

import csv
import io
import math
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


def test_the_funnel_page_draws_the_departments_beside_their_table_in_danish(world):
    page = _client(world.quality).get("/quality/indicators/response-rate-3m/funnel/")
    html = page.content.decode()
    assert page.status_code == 200
    assert html.count("<svg") == 1 and "<table" in html
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
