"""The quality dashboards: front page, indicator page with filters and drill-down, downloads,
small-number suppression on every level, and the analyst who sees aggregates and nothing else."""

import csv
import io
import itertools
import re
from datetime import date, datetime, time, timedelta
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from accounts.models import Role
from audit.models import AuditEvent
from outcomes.indicators import INDICATORS
from patients.models import CareTeam, Patient, Region, Sex, TreatmentEpisode
from questionnaires.models import QuestionnaireResponse
from tests.factories import make_cast, make_user

CPH = ZoneInfo("Europe/Copenhagen")
_cpr = itertools.count(2000)


def _patients(cast, team, n, *, answered, start):
    for k in range(n):
        p = Patient.objects.create(cpr=f"0202{k % 90 + 10:02d}-{next(_cpr):04d}", given_name="Ingrid",
                                   family_name="Hemmeligsen", birth_date=date(1955, 3, 3),
                                   sex=Sex.MALE if k % 2 else Sex.FEMALE)
        TreatmentEpisode.objects.create(patient=p, program=cast.program_a, care_team=team, condition_code="DC34",
                                        treatment_start=start)
        if k < answered:
            QuestionnaireResponse.objects.create(
                patient=p, questionnaire=cast.questionnaire, items=[], scores=[],
                authored_at=datetime.combine(start + timedelta(days=90), time(12), tzinfo=CPH))


@pytest.fixture
def world(db):
    cast = make_cast()
    TreatmentEpisode.objects.all().delete()  # the cast's own episodes start "now": not needed here
    start = timezone.localdate() - timedelta(days=200)
    team_a2 = CareTeam.objects.create(name="Team A2", department="Lunge", region=Region.MIDTJYLLAND)
    _patients(cast, cast.team_a, 12, answered=6, start=start)
    _patients(cast, team_a2, 3, answered=2, start=start)  # small: "<5"
    _patients(cast, cast.team_b, 10, answered=5, start=start)
    cast.team_a2 = team_a2
    cast.analyst = make_user("analyst", Role.ANALYST)
    return cast


def _client(user):
    c = Client()
    c.force_login(user)
    return c


def test_the_front_page_lists_every_key_indicator_with_its_value_standard_and_trend(world):
    html = _client(world.quality).get("/quality/indicators/").content.decode()
    assert "Svarprocent ved 3 måneder" in html or "Response rate at 3" in html
    # 25 episodes, 13 answered at 3 months: 52,0 %; no standard has been published for it
    assert "52,0 %" in html
    assert "ingen fastsat standard" in html
    assert "Ikke opfyldt" not in html and "Opfyldt" not in html


def test_the_indicator_page_shows_regions_with_the_national_value_and_hides_a_small_team_on_every_level(world):
    c = _client(world.quality)
    page = c.get("/quality/indicators/response-rate-3m/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "Region Midtjylland" in html and "Region Hovedstaden" in html
    assert html.count("<svg") >= 4  # four figures, each beside a table
    # drill: region → department → team, in one click each
    region = c.get("/quality/indicators/response-rate-3m/?region=1082").content.decode()
    assert "Lunge" in region and "?region=1082&amp;department=Lunge" in region
    department = c.get("/quality/indicators/response-rate-3m/?region=1082&department=Lunge").content.decode()
    team_a2_row = re.search(r"Team A2</a></th>(.*?)</tr>", department, re.S).group(1)
    assert "&lt;5" in team_a2_row and "66" not in team_a2_row
    # Team A (12, 6 answered) must be hidden too: Lunge's total (15, 8) minus it would give A2 back.
    team_a_row = re.search(r"Team A</a></th>(.*?)</tr>", department, re.S).group(1)
    assert "–" in team_a_row and "50,0" not in team_a_row
    assert "53,3 %" in department  # Lunge itself: 8 of 15


def test_a_period_that_ends_before_it_starts_is_refused_in_danish_next_to_the_field(world):
    page = _client(world.quality).get("/quality/indicators/response-rate-3m/?start_from=2026-05-01&start_to=2026-01-01")
    assert page.status_code == 400
    assert "Periodens slutning ligger før dens start." in page.content.decode()


def test_rubbish_in_the_query_is_a_400_with_the_page_not_a_500(world):
    c = _client(world.quality)
    for query in ("start_from=31-31-2026", "team=abc", "program=999999", "sex=x", "age_band=7"):
        assert c.get(f"/quality/indicators/alert-rate-all/?{query}").status_code == 400
    assert c.get("/quality/indicators/no-such-indicator/").status_code == 404


def test_the_csv_opens_in_danish_excel_and_is_stamped_with_filters_date_and_suppression_rule(world):
    answer = _client(world.quality).get("/quality/indicators/response-rate-3m/org.csv?region=1082&department=Lunge")
    assert answer.status_code == 200
    assert answer["Content-Disposition"].startswith('attachment; filename="response-rate-3m-org-')
    raw = answer.content
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    stamp = " ".join(r[0] for r in rows[:6] if r)
    assert "Lunge" in stamp and "<5" in stamp and timezone.localdate().isoformat() in stamp
    header = next(r for r in rows if r and r[0] == "Team")
    body = {r[0]: dict(zip(header, r, strict=False)) for r in rows[rows.index(header) + 1:]}
    assert body["Team A2"]["Patienter"] == "<5"
    assert body["Team A"]["Andel"] == "–"
    assert body["I alt: Lunge"]["Andel"] == "53,3"


def test_the_svg_download_is_a_standalone_figure_with_its_title_stamp_and_no_invented_standard(world):
    answer = _client(world.quality).get("/quality/indicators/response-rate-3m/quarter.svg")
    assert answer.status_code == 200 and answer["Content-Type"].startswith("image/svg+xml")
    root = ElementTree.fromstring(answer.content)
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{ns}svg" and root.find(f"{ns}title") is not None
    text = " ".join(t.text or "" for t in root.iter(f"{ns}text"))
    assert "Hele landet" in text and "<5" in text
    assert "Standard" not in text  # none is set for this indicator: no line is drawn


def test_the_analyst_lands_on_the_indicators_after_logging_in(world):
    answer = _client(world.analyst).get("/")
    assert answer.status_code == 302 and answer["Location"] == "/quality/indicators/"


def test_viewing_indicators_is_audited_as_an_aggregate_read_without_a_patient(world):
    _client(world.analyst).get("/quality/indicators/review-on-time/")
    event = AuditEvent.objects.filter(resource__startswith="Outcome indicator review-on-time").latest("pk")
    assert event.patient_ref is None and event.role == "analyst"


@pytest.mark.parametrize("who", ["patient_a", "clinician_a"])
def test_patients_and_clinicians_cannot_open_the_dashboards(world, who):
    user = getattr(world, who)
    user = user.user if hasattr(user, "user") else user
    for path in ("/quality/indicators/", "/quality/indicators/response-rate-3m/",
                 "/quality/indicators/response-rate-3m/org.csv"):
        assert _client(user).get(path).status_code == 403


# --- the analyst: aggregates and nothing else -------------------------------------------------------

ANALYST_MAY = {"indicator-home", "indicator-detail", "indicator-download", "indicator-funnel"}
# The indicators over FHIR: aggregates too; with the made-up ids and parameters here a 400/404.
ANALYST_MAY_FHIR = {"fhir-measures", "fhir-measure", "fhir-evaluate-measure", "fhir-measure-reports"}
# Pages about the analyst's own login and account, and public endpoints: no patient data in them.
OWN_OR_PUBLIC = {"home", "login", "logout", "two-factor", "account-tokens", "account-token-revoke", "set_language",
                 "health", "fhir-metadata", "api-token", "api-tokens", "api-token-detail", "schema", "swagger",
                 "admin-login", "api-schema", "api-docs",
                 # SMART Backend Services: the discovery document and the token endpoint (no patient in them)
                 "fhir-smart-configuration", "smart-configuration", "smart-token",
                 # the instrument library: questionnaire definitions, no answers in them
                 "fhir-questionnaires"}


def _all_patterns(resolver=None, prefix=""):
    resolver = resolver or get_resolver()
    for p in resolver.url_patterns:
        if isinstance(p, URLResolver):
            yield from _all_patterns(p, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern), p.name


def _concrete(route, world):
    patient = str(world.patient_a.pk)
    subs = {r"<uuid:[a-z_]+>": patient, r"<int:[a-z_]+>": "1", r"<slug:code>": "response-rate-3m",
            r"<slug:table>": "org", r"<slug:fmt>": "csv", r"<slug:[a-z_]+>": "x", r"<str:[a-z_]+>": patient,
            r"<path:[a-z_]+>": "x"}
    path = route
    for pattern, value in subs.items():
        path = re.sub(pattern, value, path)
    path = path.replace("^", "").replace("$", "") if not path.startswith("fhir") else path
    return "/" + path


def test_the_analyst_is_refused_on_every_url_but_the_indicators_and_never_sees_a_patient(world):
    c = _client(world.analyst)
    c.raise_request_exception = False
    checked, wrong = 0, []
    for route, name in _all_patterns():
        if "(?P" in route or route.startswith("static") or name in OWN_OR_PUBLIC or route.startswith("admin/"):
            continue
        path = _concrete(route, world)
        for method in ("get", "post"):
            if path.startswith("/fhir/"):
                # Past the protocol checks ($export wants Prefer, searches a parameter, POST a body),
                # so that the answer is the access decision itself.
                headers = {"HTTP_PREFER": "respond-async", "HTTP_ACCEPT": "application/fhir+json"}
                query = {} if "$export" in path else {"patient": str(world.patient_a.pk)}
                if method == "get":
                    answer = c.get(path, query, **headers)
                else:
                    answer = c.post(path, '{"resourceType": "Parameters"}', content_type="application/fhir+json",
                                    **headers)
            else:
                answer = getattr(c, method)(path)
            body = answer.content.decode("utf-8", "replace")
            assert "Hemmeligsen" not in body and world.patient_a.cpr not in body, (method, path)
            expected = (200,) if name in ANALYST_MAY and method == "get" else (401, 403, 404, 405)
            if name in ANALYST_MAY_FHIR:
                expected = (200, 400, 404) if method == "get" else (405,)
            if name == "fhir-patient-search-post" and method == "post":
                expected = (403, 415)  # a form body only: refused before anything is looked up
            if name == "fhir-questionnaire-responses" and method == "post":
                expected = (400, 403)  # interop parses the body before it asks who sends it; nothing is stored
            if answer.status_code not in expected:
                wrong.append((method, path, name, answer.status_code))
        checked += 1
    assert wrong == [], "\n".join(map(str, wrong))
    assert checked > 60
    admin = c.get("/admin/")
    assert admin.status_code in (302, 403) and "Hemmeligsen" not in admin.content.decode()


def test_the_png_download_is_the_same_figure_rasterised_at_twice_its_width(world):
    answer = _client(world.quality).get("/quality/indicators/response-rate-3m/org.png")
    assert answer.status_code == 200 and answer["Content-Type"] == "image/png"
    assert answer.content[:8] == b"\x89PNG\r\n\x1a\n"
    width = int.from_bytes(answer.content[16:20], "big")
    assert width == 1520


def test_the_front_pages_national_figures_equal_the_full_trees_root(world):
    from outcomes.dashboard import IndicatorView
    from outcomes.indicators import Filters
    for indicator in INDICATORS.values():
        full = IndicatorView(indicator, Filters())
        quick = IndicatorView(indicator, Filters(), national_only=True)
        assert (quick.national().shown, quick.national().figure) == (full.national().shown, full.national().figure)
        assert [(r.label, r.shown) for r in quick.quarter_table().rows] == [
            (r.label, r.shown) for r in full.quarter_table().rows]
