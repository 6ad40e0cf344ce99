"""The quality indicators in a real browser (Debian chromium): the front page, an indicator page
with a filter and a drill-down region → department → team, the SVG and CSV downloads (the CSV
opened and read as Danish Excel would), and the analyst refused everywhere else — axe-core clean,
no sideways scrolling, no JavaScript needed."""

import csv
import io
import itertools
import re
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from playwright.sync_api import BrowserContext, expect

from accounts.models import Role
from patients.models import CareTeam, Patient, Region, Sex, TreatmentEpisode
from questionnaires.models import QuestionnaireResponse
from tests.browser.conftest import ARTIFACTS, check_page, login
from tests.factories import make_user

pytestmark = [pytest.mark.browser, pytest.mark.live]
WIDE = {"width": 1440, "height": 900}
CPH = ZoneInfo("Europe/Copenhagen")
_n = itertools.count(100)


def _world(cast: Any) -> None:
    today = timezone.localdate()
    small = CareTeam.objects.create(name="Team A2", department="Lunge", region=Region.MIDTJYLLAND)
    south = CareTeam.objects.create(name="Team S", department="Onkologi", region=Region.SYDDANMARK)
    plan = [(cast.team_a, 14, 8), (small, 3, 2), (cast.team_b, 12, 9), (south, 16, 6)]
    for team, n, answered in plan:
        for k in range(n):
            i = next(_n)
            start = today - timedelta(days=150 + 90 * (k % 3))
            p = Patient.objects.create(cpr=f"0303{i % 90 + 10:02d}-{i:04d}", given_name="Hemmelig",
                                       family_name="Patientsen", birth_date=date(1940 + k * 3, 2, 2),
                                       sex=Sex.MALE if k % 2 else Sex.FEMALE)
            TreatmentEpisode.objects.create(patient=p, program=cast.program_a, care_team=team, condition_code="DC34",
                                            treatment_start=start)
            if k < answered:
                QuestionnaireResponse.objects.create(
                    patient=p, questionnaire=cast.questionnaire, items=[], scores=[],
                    authored_at=datetime.combine(start + timedelta(days=91), time(10), tzinfo=CPH))


def test_quality_staff_read_filter_drill_down_and_download_an_indicator(
        new_context: Callable[..., BrowserContext], live_stack: Any, live_cast: Any) -> None:
    _world(live_cast)
    context = new_context(WIDE)
    page = context.new_page()
    login(page, live_stack.url, "quality")
    page.goto(live_stack.url + "/quality/indicators/")
    expect(page.locator("h1")).to_have_text("Kvalitetsindikatorer")
    row = page.locator("main table.indicators tbody tr").filter(has_text="Svarprocent ved 3 måneder")
    expect(row).to_have_count(1)
    check_page(page, "the indicator front page")
    page.screenshot(path=str(ARTIFACTS / "indicators-front-1440.png"))

    row.locator("a").click()
    expect(page.locator("h1")).to_have_text("Svarprocent ved 3 måneder")
    expect(page.locator("main svg[role=img]")).to_have_count(4)
    expect(page.locator("main table.figures")).to_have_count(4)
    check_page(page, "an indicator page")
    page.screenshot(path=str(ARTIFACTS / "indicator-national-1440.png"), full_page=True)

    # A filter with an error is refused next to its field, in Danish.
    page.locator("#id_start_from").fill("2026-06-01")
    page.locator("#id_start_to").fill("2026-01-01")
    page.locator("main form.filters button[type=submit]").click()
    wrapper = page.locator("main .field").filter(has=page.locator("#id_start_to"))
    expect(wrapper.locator("ul.errors")).to_have_text("Periodens slutning ligger før dens start.")
    check_page(page, "an indicator page with a filter error")
    page.locator("#id_start_from").fill("")
    page.locator("#id_start_to").fill("")
    page.locator("#id_sex").select_option("female")
    page.locator("main form.filters button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"sex=female"))

    # Drill: region → department → team, one click each; the filter stays.
    page.locator("#h-org ~ .figure-pair table a", has_text="Region Midtjylland").click()
    expect(page).to_have_url(re.compile(r"region=1082"))
    expect(page).to_have_url(re.compile(r"sex=female"))
    page.locator("#h-org ~ .figure-pair table a", has_text="Lunge").click()
    expect(page.locator("nav.crumbs")).to_contain_text("Lunge")
    small_row = page.locator("#h-org ~ .figure-pair table tbody tr").filter(has_text="Team A2")
    expect(small_row.locator("td").first).to_have_text("<5")
    check_page(page, "a department's page")
    page.screenshot(path=str(ARTIFACTS / "indicator-department-1440.png"), full_page=True)
    assert "Hemmelig" not in page.content() and "0303" not in page.content()

    with page.expect_download() as got:
        page.locator("#h-org ~ p.downloads a", has_text="tabel (CSV)").click()
    raw = open(got.value.path(), "rb").read()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    stamp = " ".join(r[0] for r in rows[:6] if r)
    assert "Køn: Kvinde" in stamp and "<5" in stamp and timezone.localdate().isoformat() in stamp
    header = next(r for r in rows if r and r[0] == "Team")
    body = {r[0]: dict(zip(header, r, strict=False)) for r in rows[rows.index(header) + 1:]}
    assert body["Team A2"]["Patienter"] == "<5"
    assert all("." not in v for r in body.values() for v in list(r.values())[1:])  # decimal commas

    with page.expect_download() as got:
        page.locator("#h-quarter ~ p.downloads a", has_text="figur (SVG)").click()
    svg = ElementTree.parse(got.value.path()).getroot()
    assert svg.tag.endswith("svg")
    assert "Køn: Kvinde" in " ".join(t.text or "" for t in svg.iter("{http://www.w3.org/2000/svg}text"))


def test_the_analyst_sees_the_indicators_and_is_refused_everywhere_else(
        new_context: Callable[..., BrowserContext], live_stack: Any, live_cast: Any) -> None:
    _world(live_cast)
    make_user("analyst", Role.ANALYST)
    page = new_context(WIDE).new_page()
    login(page, live_stack.url, "analyst")
    expect(page).to_have_url(re.compile(r"/quality/indicators/$"))  # where "/" sends an analyst
    expect(page.locator("nav a", has_text="Kvalitetsindikatorer")).to_be_visible()
    expect(page.locator("nav a", has_text="Resultater")).to_have_count(0)
    check_page(page, "the analyst's front page")
    for path in ("/quality/", "/quality/cohorts/", f"/patients/{live_cast.patient_a.pk}/", "/triage/",
                 "/reviews/", "/devices/", "/me/answers/"):
        response = page.goto(live_stack.url + path)
        assert response is not None and response.status in (403, 404), path
        assert "Hemmelig" not in page.content() and live_cast.patient_a.cpr not in page.content()
    check_page(page, "a refusal shown to the analyst")


def test_the_funnel_plot_page_compares_departments_with_limits_beside_its_table_without_javascript(
        new_context: Callable[..., BrowserContext], live_stack: Any, live_cast: Any) -> None:
    _world(live_cast)
    context = new_context(WIDE)
    page = context.new_page()
    login(page, live_stack.url, "quality")
    page.goto(live_stack.url + "/quality/indicators/response-rate-3m/")
    page.locator("main a", has_text="tragtdiagram").click()
    expect(page.locator("h1")).to_contain_text("afdelingerne sammenlignet med hele landet")
    figure = page.locator("main svg[role=img]")
    expect(figure).to_have_count(1)
    expect(figure.locator("desc")).to_contain_text("Lunge")
    table = page.locator("main table.figures")
    expect(table.locator("tbody tr")).to_have_count(3)  # Lunge, the team_b department, Onkologi
    expect(table).to_contain_text("95 %-grænserne")
    check_page(page, "the funnel plot page")
    page.screenshot(path=str(ARTIFACTS / "indicator-funnel-1440.png"), full_page=True)
    with page.expect_download() as got:
        page.locator("main p.downloads a", has_text="tabel (CSV)").click()
    rows = list(csv.reader(io.StringIO(open(got.value.path(), "rb").read().decode("utf-8-sig")), delimiter=";"))
    header = next(r for r in rows if r and r[0] == "Afdeling")
    assert header[-1] == "Sammenlignet med Danmark"
    with page.expect_download() as got:
        page.locator("main p.downloads a", has_text="figur (PNG)").click()
    assert open(got.value.path(), "rb").read().startswith(b"\x89PNG")

    # Without JavaScript the same page is whole: figure, table and links are server-rendered.
    plain = new_context(WIDE)
    plain_page = plain.new_page()
    login(plain_page, live_stack.url, "quality")
    plain.set_extra_http_headers({})
    plain_page.context.route("**/*.js", lambda route: route.abort())
    plain_page.goto(live_stack.url + "/quality/indicators/response-rate-3m/funnel/")
    expect(plain_page.locator("main svg[role=img]")).to_have_count(1)
    expect(plain_page.locator("main table.figures tbody tr")).to_have_count(3)
