"""Trend pages of home readings (chart + table + CSV) for clinicians and patients, and marking a
reading as erroneous: who may, what is audited, what the files and pictures contain."""

import csv
import io
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import Role
from alerts.models import Rule, Severity
from audit.models import AuditEvent
from monitoring.models import DeviceKind, Reading, Source
from patients.models import RelativeGrant
from tests.factories import device_token_of, make_user

pytestmark = pytest.mark.django_db
NBSP = "\u00a0"  # between a value and its unit on the trend pages, so "91 %" never breaks


def _reading(patient, value, days_ago=1, measure="spo2", unit="%", **extra):
    return Reading.objects.create(patient=patient, measure=measure, value=Decimal(value), unit=unit,
                                  effective_at=timezone.now() - timedelta(days=days_ago),
                                  source=extra.pop("source", Source.DEVICE), **extra)


def _client(user):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def _trend_url(patient, measure="spo2"):
    return f"/patients/{patient.pk}/readings/{measure}/"


@pytest.fixture
def relative(cast):
    user = make_user("relative-of-a", Role.RELATIVE)
    RelativeGrant.objects.create(patient=cast.patient_a, relative=user, relationship="daughter")
    return user


# --- access -----------------------------------------------------------------------------------

def test_the_clinician_trend_page_is_open_to_the_team_and_admin_and_closed_to_everyone_else(cast, relative):
    _reading(cast.patient_a, 95)
    url = _trend_url(cast.patient_a)
    expected = {cast.clinician_a: 200, cast.admin: 200, cast.clinician_b: 404,
                cast.patient_a.user: 403, cast.patient_b.user: 403, cast.quality: 403, relative: 403}
    for user, status in expected.items():
        assert _client(user).get(url).status_code == status, user.username
        assert _client(user).get(url + "csv/").status_code == status, user.username
    assert Client().get(url).status_code == 302  # to the login page


def test_my_readings_shows_a_patient_only_their_own_readings(cast, relative):
    _reading(cast.patient_a, 95)
    _reading(cast.patient_b, 88)
    html = _client(cast.patient_a.user).get("/me/readings/spo2/").content.decode()
    table = html.split("<table", 1)[1]
    assert f"95{NBSP}%" in table and f"88{NBSP}%" not in table
    for user in (cast.clinician_a, cast.quality, cast.admin, relative):
        assert _client(user).get("/me/readings/").status_code == 403, user.username
        assert _client(user).get("/me/readings/spo2/csv/").status_code == 403, user.username


def test_an_unknown_measure_is_not_found(cast):
    assert _client(cast.clinician_a).get(_trend_url(cast.patient_a, "cholesterol")).status_code == 404
    assert _client(cast.patient_a.user).get("/me/readings/cholesterol/").status_code == 404


def test_my_readings_without_any_readings_or_limits_says_so(cast):
    Rule.objects.filter(kind="threshold").update(active=False)
    response = _client(cast.patient_a.user).get("/me/readings/")
    assert response.status_code == 200
    assert "No measurements yet." in response.content.decode()


# --- audit ------------------------------------------------------------------------------------

def test_every_read_and_export_is_audited_allowed_or_denied(cast):
    _reading(cast.patient_a, 95)
    _client(cast.clinician_a).get(_trend_url(cast.patient_a))
    _client(cast.clinician_a).get(_trend_url(cast.patient_a) + "csv/")
    _client(cast.clinician_b).get(_trend_url(cast.patient_a))
    _client(cast.patient_a.user).get("/me/readings/spo2/csv/")
    rows = AuditEvent.objects.filter(patient_ref=cast.patient_a.pk, resource__startswith="Reading")
    got = sorted((r.username, r.action, r.outcome) for r in rows)
    assert got == [("clinician-a", "export", "allowed"), ("clinician-a", "read", "allowed"),
                   ("clinician-b", "read", "denied"), ("patient-a", "export", "allowed")]


def test_a_patient_trying_the_clinician_page_is_audited_as_denied(cast):
    _client(cast.patient_a.user).get(_trend_url(cast.patient_b))
    assert AuditEvent.objects.filter(username="patient-a", patient_ref=cast.patient_b.pk,
                                     outcome="denied").count() == 1


# --- chart, table, period ---------------------------------------------------------------------

def test_the_chart_is_an_accessible_svg_with_the_limit_line_and_the_erroneous_series(cast):
    _reading(cast.patient_a, 95, days_ago=3)
    _reading(cast.patient_a, 86, days_ago=2, unusual=True)
    _reading(cast.patient_a, 70, days_ago=1, erroneous_at=timezone.now(), erroneous_reason="finger cold",
             erroneous_by=cast.clinician_a)
    html = _client(cast.clinician_a).get(_trend_url(cast.patient_a)).content.decode()
    main = html.split("<main", 1)[1]
    assert main.count('<svg role="img" aria-label="Oxygen saturation (SpO2) over the last 30 days"') == 1
    assert "<script" not in main
    svg = main.split("<svg", 1)[1].split("</svg>", 1)[0]
    assert "Lower limit 92 %" in svg  # the programme's threshold rule, drawn
    assert "Marked as wrong" in svg and "Unusual value" in svg
    assert "stroke: #595959" in svg  # the hollow rings of the erroneous series
    # The erroneous value is struck through in the table, with its reason; the line skips it.
    assert f"<s>70{NBSP}%</s>" in main and "finger cold" in main
    assert "Alert limits" in main and "below 92 %" in main
    assert "(value)" not in main  # a one-value measure's limit names no part


def test_a_blood_pressure_limit_names_the_part_it_applies_to(cast):
    _reading(cast.patient_a, 150, measure="blood-pressure", unit="mm[Hg]", value2=Decimal(95))
    Rule.objects.create(program=cast.program_a, kind="threshold", name="BP", severity=Severity.RED,
                        params={"measure": "blood-pressure", "component": "value2", "high": 100})
    Rule.objects.create(program=cast.program_a, kind="threshold", name="BP high", severity=Severity.RED,
                        params={"measure": "blood-pressure", "high": 180})
    main = _client(cast.patient_a.user).get("/me/readings/blood-pressure/").content.decode().split("<main", 1)[1]
    assert "above 100 mmHg (Diastolic)" in main and "above 180 mmHg (Systolic)" in main
    assert "Upper limit 100 mmHg (Diastolic)" in main


def test_only_active_limits_of_the_patients_own_programmes_are_drawn(cast):
    _reading(cast.patient_a, 95)
    Rule.objects.create(program=cast.program_b, kind="threshold", name="B only", severity=Severity.RED,
                        params={"measure": "spo2", "low": 80})
    Rule.objects.create(program=cast.program_a, kind="threshold", name="off", severity=Severity.RED,
                        params={"measure": "spo2", "high": 99}, active=False)
    html = _client(cast.clinician_a).get(_trend_url(cast.patient_a)).content.decode()
    assert "Lower limit 92 %" in html
    assert "Lower limit 80 %" not in html and "Upper limit 99 %" not in html


def test_blood_pressure_is_drawn_as_systolic_and_diastolic_lines(cast):
    _reading(cast.patient_a, 142, measure="blood-pressure", unit="mm[Hg]", value2=Decimal(91))
    html = _client(cast.clinician_a).get(_trend_url(cast.patient_a, "blood-pressure")).content.decode()
    svg = html.split("<svg", 1)[1].split("</svg>", 1)[0]
    assert "Systolic" in svg and "Diastolic" in svg
    assert f"142/91{NBSP}mmHg" in html.split("<table", 1)[1]


def test_the_period_selector_limits_chart_table_and_csv_to_the_chosen_days(cast):
    _reading(cast.patient_a, 97, days_ago=3)
    _reading(cast.patient_a, 93, days_ago=20)
    client = _client(cast.clinician_a)
    week = client.get(_trend_url(cast.patient_a) + "?days=7").content.decode()
    assert f"97{NBSP}%" in week and f"93{NBSP}%" not in week
    assert 'aria-current="page">7 days</a>' in week
    month = client.get(_trend_url(cast.patient_a) + "?days=30").content.decode()
    assert f"93{NBSP}%" in month
    csv_week = client.get(_trend_url(cast.patient_a) + "csv/?days=7").content.decode("utf-8-sig")
    assert len(csv_week.strip().splitlines()) == 2  # header + one row
    # A made-up period falls back to 30 days rather than failing.
    assert f"93{NBSP}%" in client.get(_trend_url(cast.patient_a) + "?days=abc").content.decode()


def test_the_table_lists_the_newest_reading_first(cast):
    _reading(cast.patient_a, 91, days_ago=5)
    _reading(cast.patient_a, 98, days_ago=1)
    table = _client(cast.patient_a.user).get("/me/readings/spo2/").content.decode().split("<tbody>", 1)[1]
    assert table.index(f"98{NBSP}%") < table.index(f"91{NBSP}%")


def test_the_patient_page_links_to_the_trend_of_each_measure_and_marks_erroneous_rows(cast):
    _reading(cast.patient_a, 70, erroneous_at=timezone.now(), erroneous_reason="x", erroneous_by=cast.clinician_a)
    html = _client(cast.clinician_a).get(f"/patients/{cast.patient_a.pk}/").content.decode()
    assert f'href="/patients/{cast.patient_a.pk}/readings/spo2/"' in html
    assert "<s>70 %</s>" in html


# --- CSV ----------------------------------------------------------------------------------------

def test_the_csv_has_a_bom_semicolons_decimal_commas_and_iso_times_with_offset(cast):
    _reading(cast.patient_a, "36.8", measure="body-temperature", unit="Cel", days_ago=2)
    r = _reading(cast.patient_a, "39.1", measure="body-temperature", unit="Cel", days_ago=1,
                 erroneous_at=timezone.now(), erroneous_reason="=HYPERLINK(\"x\"); held the probe wrong",
                 erroneous_by=cast.clinician_a, source=Source.WEB)
    response = _client(cast.clinician_a).get(_trend_url(cast.patient_a, "body-temperature") + "csv/")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="readings-body-temperature-')
    assert str(cast.patient_a.pk) not in response["Content-Disposition"]
    body = response.content
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == ["effective_time", "measure", "loinc", "value", "unit", "source", "unusual",
                       "erroneous", "erroneous_reason", "erroneous_marked_at", "date", "time"]
    newest = dict(zip(rows[0], rows[1], strict=True))
    assert newest["value"] == "39,1" and newest["unit"] == "Cel" and newest["source"] == "web"
    assert newest["erroneous"] == "yes"
    assert newest["erroneous_reason"] == "'=HYPERLINK(\"x\"); held the probe wrong"  # stays text in Excel
    assert newest["effective_time"] == timezone.localtime(r.effective_at).isoformat(timespec="seconds")
    assert newest["effective_time"][-6:] in {"+01:00", "+02:00"}
    local = timezone.localtime(r.effective_at)  # and as Danish Excel reads a date and a time
    assert (newest["date"], newest["time"]) == (local.strftime("%d-%m-%Y"), local.strftime("%H:%M"))
    assert rows[2][3] == "36,8" and rows[2][7] == "no"
    assert len(rows) == 3


def test_the_blood_pressure_csv_has_a_column_per_component(cast):
    _reading(cast.patient_a, 142, measure="blood-pressure", unit="mm[Hg]", value2=Decimal(91))
    body = _client(cast.patient_a.user).get("/me/readings/blood-pressure/csv/").content.decode("utf-8-sig")
    header, row = list(csv.reader(io.StringIO(body), delimiter=";"))
    assert header[3:6] == ["systolic", "diastolic", "unit"]
    assert row[3:6] == ["142", "91", "mm[Hg]"]


# --- marking a reading as erroneous -----------------------------------------------------------------

def _mark_url(reading):
    return f"/patients/{reading.patient_id}/readings/{reading.pk}/erroneous/"


def test_a_clinician_marks_a_reading_as_erroneous_with_a_reason(cast):
    reading = _reading(cast.patient_a, 70)
    client = _client(cast.clinician_a)
    page = client.get(_mark_url(reading))
    assert page.status_code == 200
    assert 'name="csrfmiddlewaretoken"' in page.content.decode()
    response = client.post(_mark_url(reading), {"reason": "  Probe on a cold finger  "})
    assert response.status_code == 302
    assert response["Location"] == _trend_url(cast.patient_a)
    reading.refresh_from_db()
    assert reading.erroneous_at is not None
    assert reading.erroneous_reason == "Probe on a cold finger"
    assert reading.erroneous_by == cast.clinician_a
    assert Reading.objects.filter(pk=reading.pk).exists()  # kept, not deleted
    update = AuditEvent.objects.get(action="update", patient_ref=cast.patient_a.pk)
    assert update.username == "clinician-a" and update.resource == f"Reading/{reading.pk} (marked erroneous)"


def test_the_mark_needs_a_reason_and_says_so_next_to_the_field(cast):
    reading = _reading(cast.patient_a, 70)
    response = _client(cast.clinician_a).post(_mark_url(reading), {"reason": "   "})
    assert response.status_code == 200
    html = response.content.decode()
    assert '<ul class="errors" id="id_reason-errors"><li>Write the reason.</li></ul>' in html
    assert 'aria-describedby="id_reason-help id_reason-errors"' in html
    reading.refresh_from_db()
    assert reading.erroneous_at is None
    assert not AuditEvent.objects.filter(action="update").exists()


def test_a_second_mark_is_refused_and_keeps_the_first_reason(cast):
    reading = _reading(cast.patient_a, 70, erroneous_at=timezone.now(), erroneous_reason="first",
                       erroneous_by=cast.clinician_a)
    other = make_user("clinician-a2", Role.CLINICIAN)
    cast.team_a.members.add(other)
    response = _client(other).post(_mark_url(reading), {"reason": "second"})
    assert response.status_code == 409
    assert "already marked as wrong" in response.content.decode()
    reading.refresh_from_db()
    assert reading.erroneous_reason == "first" and reading.erroneous_by == cast.clinician_a
    # The page that offers the mark does not offer it again either.
    html = _client(other).get(_trend_url(cast.patient_a)).content.decode()
    assert _mark_url(reading) not in html


def test_a_reading_of_another_patient_cannot_be_marked_through_this_patients_address(cast):
    foreign = _reading(cast.patient_b, 70)
    client = _client(cast.clinician_a)
    # Patient A's address (allowed) with patient B's reading, and patient B's address (not allowed).
    assert client.post(f"/patients/{cast.patient_a.pk}/readings/{foreign.pk}/erroneous/",
                       {"reason": "x"}).status_code == 404
    assert client.post(_mark_url(foreign), {"reason": "x"}).status_code == 404
    foreign.refresh_from_db()
    assert foreign.erroneous_at is None


def test_only_clinicians_mark_readings(cast, relative):
    reading = _reading(cast.patient_a, 70)
    for user in (cast.admin, cast.quality, cast.patient_a.user, relative):
        assert _client(user).post(_mark_url(reading), {"reason": "x"}).status_code == 403, user.username
    reading.refresh_from_db()
    assert reading.erroneous_at is None
    html = _client(cast.admin).get(_trend_url(cast.patient_a)).content.decode()
    assert _mark_url(reading) not in html  # the admin sees the page without the action


def test_the_mark_link_is_offered_in_each_unmarked_row_to_the_team_clinician(cast):
    reading = _reading(cast.patient_a, 70)
    html = _client(cast.clinician_a).get(_trend_url(cast.patient_a)).content.decode()
    assert f'href="{_mark_url(reading)}"' in html
    assert _mark_url(reading) not in _client(cast.patient_a.user).get("/me/readings/spo2/").content.decode()


def test_of_two_clinicians_marking_at_once_the_first_wins_and_the_second_is_told(cast):
    from monitoring.services import AlreadyErroneous, reading_mark_erroneous

    reading = _reading(cast.patient_a, 70)
    stale = Reading.objects.get(pk=reading.pk)  # the second clinician loaded it before the first mark
    reading_mark_erroneous(reading=reading, by=cast.clinician_a, reason="first")
    with pytest.raises(AlreadyErroneous):
        reading_mark_erroneous(reading=stale, by=cast.admin, reason="second")
    reading.refresh_from_db()
    assert (reading.erroneous_reason, reading.erroneous_by) == ("first", cast.clinician_a)
    assert AuditEvent.objects.filter(action="update").count() == 1


# --- the per-measure web form -------------------------------------------------------------------

def test_a_patient_sends_blood_pressure_on_its_own_page_with_the_unit_beside_the_fields(cast):
    client = _client(cast.patient_a.user)
    html = client.get("/me/readings/new/blood-pressure/").content.decode()
    assert html.count('<span class="unit" aria-hidden="true">mmHg</span>') == 2
    assert 'name="value2"' in html
    response = client.post("/me/readings/new/blood-pressure/", {"value": "142", "value2": "91"})
    assert response.status_code == 302 and response["Location"] == "/me/readings/blood-pressure/"
    reading = Reading.objects.get(patient=cast.patient_a)
    assert (reading.measure, reading.value, reading.value2, reading.source) == (
        "blood-pressure", Decimal(142), Decimal(91), "web")
    assert AuditEvent.objects.filter(action="create", patient_ref=cast.patient_a.pk).count() == 1


def test_an_upside_down_blood_pressure_is_refused_next_to_the_upper_number(cast):
    response = _client(cast.patient_a.user).post("/me/readings/new/blood-pressure/",
                                                 {"value": "80", "value2": "120"})
    assert response.status_code == 200
    html = response.content.decode()
    assert '<ul class="errors" id="id_value-errors"><li>The systolic pressure must be higher' in html
    assert "id_value2-errors" not in html
    assert not Reading.objects.exists()


def _submission(html: str) -> str:
    match = re.search(r'<input type="hidden" name="submission" value="([0-9a-f-]{36})"', html)
    assert match, "the page carries its submission id"
    return match.group(1)


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


@pytest.mark.parametrize("page, fields", [
    ("/me/readings/new/blood-pressure/", {"value": "142", "value2": "91"}),
    ("/me/readings/new/", {"measure": "body-weight", "value": "81.4"}),
])
def test_a_page_sent_twice_is_stored_once_and_the_patient_is_told(cast, page, fields):
    client = _client(cast.patient_a.user)
    submission = _submission(client.get(page).content.decode())
    assert submission != _submission(client.get(page).content.decode())  # a new id each time it is shown

    first = client.post(page, {**fields, "submission": submission}, follow=True)
    again = client.post(page, {**fields, "submission": submission}, follow=True)  # a second tap; time left empty

    assert Reading.objects.filter(patient=cast.patient_a).count() == 1
    assert _messages(first) == ["Thank you. Your measurement has been sent."]
    assert _messages(again) == ["Thank you. Your measurement had already been sent; it is saved once."]


def test_the_same_page_sent_again_with_another_value_is_a_second_reading(cast):
    client = _client(cast.patient_a.user)
    page = "/me/readings/new/body-weight/"
    submission = _submission(client.get(page).content.decode())
    client.post(page, {"value": "81.4", "submission": submission})
    client.post(page, {"value": "80.4", "submission": submission})  # back, corrected, sent
    assert sorted(Reading.objects.values_list("value", flat=True)) == [Decimal("80.4"), Decimal("81.4")]


@pytest.mark.parametrize("submission", ["", "not-a-uuid", "x" * 36])
def test_a_missing_or_altered_page_id_still_stores_the_reading(cast, submission):
    response = _client(cast.patient_a.user).post("/me/readings/new/spo2/", {"value": "95", "submission": submission})
    assert response.status_code == 302
    assert Reading.objects.get(patient=cast.patient_a).client_id is None


def test_a_refused_value_keeps_the_page_id_for_the_corrected_send(cast):
    client = _client(cast.patient_a.user)
    page = "/me/readings/new/spo2/"
    submission = _submission(client.get(page).content.decode())
    refused = client.post(page, {"value": "140", "submission": submission})
    assert refused.status_code == 200 and _submission(refused.content.decode()) == submission
    assert not Reading.objects.exists()
    client.post(page, {"value": "94", "submission": submission})
    assert Reading.objects.get().client_id == f"web-{submission}"


def test_the_general_reading_form_sends_two_part_measures_to_their_own_page(cast):
    html = _client(cast.patient_a.user).get("/me/readings/new/").content.decode()
    assert '<option value="blood-pressure"' not in html
    assert 'href="/me/readings/new/blood-pressure/"' in html


def test_only_patients_open_the_per_measure_form(cast, relative):
    for user in (cast.clinician_a, cast.admin, cast.quality, relative):
        assert _client(user).get("/me/readings/new/spo2/").status_code == 403, user.username
    assert _client(cast.patient_a.user).get("/me/readings/new/cholesterol/").status_code == 404


def test_an_impossible_value_is_explained_in_danish_with_danish_decimals(cast):
    client = Client(HTTP_ACCEPT_LANGUAGE="da")
    client.force_login(cast.patient_a.user)
    response = client.post("/me/readings/new/body-weight/", {"value": "0,2"})
    assert response.status_code == 200
    assert "0,2 kg er ikke en mulig værdi; den skal være mellem 0,5 og 400." in response.content.decode()
    assert not Reading.objects.exists()


@pytest.mark.parametrize("typed, stored", [("5,6", "5.6"), ("5.6", "5.6"), (" 5,6 ", "5.6"), ("12", "12")])
def test_a_patient_may_type_a_decimal_comma_or_point(cast, typed, stored):
    client = _client(cast.patient_a.user)
    page = "/me/readings/new/glucose/"
    assert 'inputmode="decimal"' in client.get(page).content.decode()  # a text field, not type="number"
    assert client.post(page, {"value": typed}).status_code == 302
    assert Reading.objects.get().value == Decimal(stored)


@pytest.mark.parametrize("typed", ["5,6,1", "1.234,5", "fem", "5..6"])
def test_what_is_not_a_number_is_refused_next_to_the_field_and_nothing_is_stored(cast, typed):
    response = _client(cast.patient_a.user).post("/me/readings/new/glucose/", {"value": typed})
    html = response.content.decode()
    assert response.status_code == 200 and "Write a number, such as 72,5." in html
    assert f'value="{typed.strip()}"' in html  # what was typed stays to be corrected
    assert not Reading.objects.exists()


@pytest.mark.parametrize("when, message", [
    ("2020-01-01T08:00", "That is more than 7 days ago. Check the date"),
    ((timezone.localtime() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
     "That time has not come yet. Check the date and the time."),
])
def test_a_mistyped_time_is_refused_next_to_the_time_in_words_for_hand_entry(cast, when, message):
    response = _client(cast.patient_a.user).post("/me/readings/new/heart-rate/", {"value": "72", "measured_at": when})
    assert response.status_code == 200
    assert re.search(r'id="id_measured_at-errors">\s*<li>' + re.escape(message), response.content.decode())
    assert not Reading.objects.exists()


def test_a_time_typed_within_the_last_week_is_kept(cast):
    when = timezone.localtime() - timedelta(days=6)
    _client(cast.patient_a.user).post("/me/readings/new/heart-rate/",
                                      {"value": "72", "measured_at": when.strftime("%Y-%m-%dT%H:%M")})
    assert timezone.localtime(Reading.objects.get().effective_at).date() == when.date()


def test_a_measure_watched_by_a_change_or_combination_rule_has_its_tab_before_any_reading(cast):
    Rule.objects.create(program=cast.program_b, kind="change", name="BP rising", severity=Severity.YELLOW,
                        params={"measure": "blood-pressure", "direction": "up", "at_least": 20, "window": "P3D"})
    Rule.objects.create(program=cast.program_b, kind="change", name="off", severity=Severity.YELLOW, active=False,
                        params={"measure": "glucose", "direction": "up", "at_least": 2, "window": "P3D"})
    html = _client(cast.clinician_b).get(f"/patients/{cast.patient_b.pk}/").content.decode()
    assert f'/patients/{cast.patient_b.pk}/readings/blood-pressure/' in html
    assert f'/patients/{cast.patient_b.pk}/readings/glucose/' not in html
    Rule.objects.create(program=cast.program_b, kind="news2", name="NEWS2", severity=Severity.YELLOW, params={})
    html = _client(cast.clinician_b).get(f"/patients/{cast.patient_b.pk}/").content.decode()
    assert f'/patients/{cast.patient_b.pk}/readings/respiratory-rate/' in html


def test_dates_in_tables_are_written_the_danish_way_on_danish_pages(cast):
    reading = _reading(cast.patient_a, 95, days_ago=2)
    client = Client(HTTP_ACCEPT_LANGUAGE="da")
    client.force_login(cast.clinician_a)
    html = client.get(_trend_url(cast.patient_a)).content.decode()
    local = timezone.localtime(reading.effective_at)
    months = ["jan", "feb", "mar", "apr", "maj", "jun", "jul", "aug", "sep", "okt", "nov", "dec"]
    assert f"{local.day}. {months[local.month - 1]} {local.year} {local:%H:%M}" in html
    english = _client(cast.clinician_a).get(_trend_url(cast.patient_a)).content.decode()
    assert f"{local.day} {local:%b} {local.year} {local:%H:%M}" in english


def test_an_impossible_systolic_is_said_at_once_even_with_the_diastolic_missing(cast):
    response = _client(cast.patient_a.user).post("/me/readings/new/blood-pressure/", {"value": "14090", "value2": ""})
    html = response.content.decode()
    assert response.status_code == 200
    assert re.search(r'id="id_value-errors">\s*<li>14090 mmHg is not a possible value', html)
    assert re.search(r'id="id_value2-errors">\s*<li>', html)  # and the missing one, at the same time
    assert not Reading.objects.exists()


def test_the_patients_home_page_shows_both_blood_pressure_numbers_and_marks_wrong_and_unusual_values(cast):
    _reading(cast.patient_a, 120, days_ago=3, measure="blood-pressure", unit="mm[Hg]", value2=Decimal(80))
    _reading(cast.patient_a, 86, days_ago=2, unusual=True)
    _reading(cast.patient_a, 70, days_ago=1, erroneous_at=timezone.now(), erroneous_reason="cold finger",
             erroneous_by=cast.clinician_a)
    html = _client(cast.patient_a.user).get("/me/").content.decode()
    assert "120/80 mmHg" in html
    assert '<tr class="unusual">' in html and "Unusual value" in html
    assert "<s>70 %</s>" in html and "Marked as wrong" in html


def test_the_chart_writes_days_and_times_in_danish_time_not_utc(cast):
    from zoneinfo import ZoneInfo

    # 00:30 in Copenhagen is 23:30 UTC the day before: the tooltip and the axis must say the 3rd.
    at = timezone.now().astimezone(ZoneInfo("Europe/Copenhagen")).replace(hour=0, minute=30, second=0,
                                                                         microsecond=0) - timedelta(days=1)
    Reading.objects.create(patient=cast.patient_a, measure="body-temperature", value=Decimal("38.9"), unit="Cel",
                           effective_at=at, source=Source.WEB)
    html = _client(cast.patient_a.user).get("/me/readings/body-temperature/?days=7").content.decode()
    svg = html.split("<svg", 1)[1].split("</svg>", 1)[0]
    assert at.strftime("%d.%m 00:30") in svg
    assert (at - timedelta(days=1)).strftime("%d.%m 23:30") not in svg
    # The axis labels stand at Danish midnights, one of them on the reading's day or the next.
    assert re.search(r"<text[^>]*>\d\d\.\d\d</text>", svg)


def test_a_value_marked_as_wrong_does_not_set_the_charts_scale(cast):
    for days_ago, kg in ((3, "72.4"), (2, "72.9"), (1, "73.1")):
        _reading(cast.patient_a, kg, days_ago=days_ago, measure="body-weight", unit="kg")
    _reading(cast.patient_a, "1", days_ago=1.5, measure="body-weight", unit="kg", unusual=True,
             erroneous_at=timezone.now(), erroneous_reason="typed 1 for 71", erroneous_by=cast.clinician_a)
    html = _client(cast.clinician_a).get(_trend_url(cast.patient_a, "body-weight")).content.decode()
    svg = html.split("<svg", 1)[1].split("</svg>", 1)[0]
    y_axis = svg.split('class="axis y', 1)[1].split('class="axis x', 1)[0] if 'class="axis x' in svg.split(
        'class="axis y', 1)[1] else svg.split('class="axis y', 1)[1].split("</g></g>", 1)[0]
    ticks = [float(t.replace(",", ".")) for t in re.findall(r">(-?\d+(?:[.,]\d+)?)</text>", y_axis)]
    assert ticks and min(ticks) >= 60, ticks  # not -25 kg because of the wrong 1 kg
    assert "1 kg, off the scale" in svg and "Marked as wrong" in svg


def test_a_refused_hand_entry_is_linked_to_its_field_for_screen_readers_and_summarised(cast):
    response = _client(cast.patient_a.user).post("/me/readings/new/blood-pressure/", {"value": "140", "value2": "abc"})
    html = response.content.decode()
    assert 'aria-describedby="id_value2-errors"' in html and 'id="id_value2-errors"' in html
    assert 'class="error-summary" role="alert"' in html and 'href="#id_value2"' in html
    assert not Reading.objects.exists()


@pytest.mark.parametrize(("page", "fields"), [
    ("heart-rate", {"value": "72,5"}),
    ("spo2", {"value": "96.5"}),
    ("blood-pressure", {"value": "120,5", "value2": "80"}),
])
def test_half_a_beat_or_a_percent_typed_by_hand_is_refused_as_a_slip(cast, page, fields):
    response = _client(cast.patient_a.user).post(f"/me/readings/new/{page}/", fields)
    assert response.status_code == 200
    assert "Write a whole number, as your device shows it." in response.content.decode()
    assert not Reading.objects.exists()
    # A weight or a temperature has decimals.
    ok = _client(cast.patient_a.user).post("/me/readings/new/body-weight/", {"value": "72,5"})
    assert ok.status_code == 302


# --- an unusual value typed by hand, and what the patient is told ---------------------------------

def test_an_unusual_value_typed_by_hand_is_asked_about_once_and_stored_when_sent_again(cast):
    client = _client(cast.patient_a.user)
    page = client.get("/me/readings/new/body-weight/").content.decode()
    submission = re.search(r'name="submission" value="([^"]+)"', page).group(1)

    first = client.post("/me/readings/new/body-weight/", {"value": "1", "submission": submission})
    html = first.content.decode()
    assert first.status_code == 200 and not Reading.objects.exists()
    assert "1 kg is unusual. Check the number on your device. If it is right, press Send again." in html
    assert 'name="confirmed" value="1"' in html  # the next send confirms exactly this value

    corrected = client.post("/me/readings/new/body-weight/", {"value": "71", "submission": submission,
                                                             "confirmed": "1"})
    assert corrected.status_code == 302
    assert list(Reading.objects.values_list("value", flat=True)) == [Decimal(71)]


def test_a_confirmed_unusual_value_is_stored_and_the_patient_is_told_what_to_do(cast):
    client = _client(cast.patient_a.user)
    first = client.post("/me/readings/new/spo2/", {"value": "80"})
    assert first.status_code == 200 and not Reading.objects.exists()
    again = client.post("/me/readings/new/spo2/", {"value": "80", "confirmed": "80"}, follow=True)
    assert Reading.objects.get().value == 80
    html = again.content.decode()
    # Below patient A's programme limit (92 %): told the team hears of it, and when to call.
    assert "outside the limits your care team has set for you" in html
    assert "call 112" in html
    assert 'class="message warning"' in html


def test_a_value_inside_the_limits_gets_a_plain_thank_you(cast):
    response = _client(cast.patient_a.user).post("/me/readings/new/spo2/", {"value": "97"}, follow=True)
    html = response.content.decode()
    assert "Your measurement has been sent" in html and "message warning" not in html


def test_a_bands_rules_limits_are_drawn_and_written_with_their_colour(cast):
    _reading(cast.patient_a, 150, measure="blood-pressure", unit="mm[Hg]", value2=Decimal(95))
    Rule.objects.create(program=cast.program_a, kind="bands", name="BP bands", severity=Severity.RED, params={
        "measure": "blood-pressure",
        "bands": {"alert_low": 85, "warning_high": 160, "alert_high": 180},
        "bands2": {"alert_high": 110}})
    main = _client(cast.clinician_a).get(_trend_url(cast.patient_a, "blood-pressure")).content.decode().split(
        "<main", 1)[1]
    svg = main.split("<svg", 1)[1].split("</svg>", 1)[0]
    assert "Lower limit 85 mmHg (Systolic)" in svg and "Upper limit 180 mmHg (Systolic)" in svg
    assert "Upper warning limit 160 mmHg (Systolic)" in svg and "Upper limit 110 mmHg (Diastolic)" in svg
    assert "above 160 mmHg (Systolic) – early warning" in main
    assert "Dashed amber line: early-warning limit." in main


def test_a_value_beyond_a_bands_limit_tells_the_patient_their_team_hears_of_it(cast):
    Rule.objects.create(program=cast.program_a, kind="bands", name="BP bands", severity=Severity.RED, params={
        "measure": "blood-pressure", "bands": {"alert_high": 180}})
    response = _client(cast.patient_a.user).post("/me/readings/new/blood-pressure/", {"value": "185", "value2": "95"},
                                                 follow=True)
    assert "outside the limits your care team has set for you" in response.content.decode()


def test_marking_a_reading_behind_an_open_alert_as_wrong_points_the_clinician_to_the_alert(cast):
    from alerts.models import Alert
    from tests.factories import evaluate

    reading = _reading(cast.patient_a, 85)  # below patient A's limit of 92 %: an alert
    evaluate([reading.pk])
    alert = Alert.objects.get(patient=cast.patient_a)
    calm = _reading(cast.patient_a, 97, days_ago=2)

    client = _client(cast.clinician_a)
    marked = client.post(f"/patients/{cast.patient_a.pk}/readings/{reading.pk}/erroneous/",
                         {"reason": "probe on a cold finger"}, follow=True)
    html = marked.content.decode()
    assert "This measurement is behind an open alert" in html and alert.reason in html
    assert f'href="/patients/{cast.patient_a.pk}/"' in html
    alert.refresh_from_db()
    assert alert.status == "open"  # resolving it stays the clinician's decision

    other = client.post(f"/patients/{cast.patient_a.pk}/readings/{calm.pk}/erroneous/", {"reason": "test"},
                        follow=True)
    assert "behind an open alert" not in other.content.decode()


def test_a_peak_flow_meter_has_its_measure_on_the_web_and_through_the_api(cast):
    client = _client(cast.patient_a.user)
    assert "/me/readings/new/peak-flow/" in client.get("/me/readings/new/").content.decode()
    page = client.get("/me/readings/new/peak-flow/").content.decode()
    assert "litres per minute" in page and "best of the three" in page
    assert client.post("/me/readings/new/peak-flow/", {"value": "420"}).status_code == 302
    api = Client(HTTP_AUTHORIZATION=f"Bearer {device_token_of(cast.patient_a, DeviceKind.PEAK_FLOW)[1]}")
    response = api.post("/api/v1/readings", {"measure": "19935-6", "value": 7, "unit": "L/s",
                                             "effective_at": timezone.now().isoformat()},
                        content_type="application/json")
    assert response.status_code == 201, response.json()
    assert sorted(Reading.objects.filter(measure="peak-flow").values_list("value", flat=True)) == [420, 420]


@pytest.mark.parametrize(("override", "told"), [(None, True), (89, False)])
def test_what_the_patient_is_told_follows_their_own_limit(cast, override, told):
    from alerts.definitions import rule_override_set

    rule = Rule.objects.get(program=cast.program_a, kind="threshold", params__measure="spo2")
    if override:  # a COPD patient's own lower limit, below the programme's 92 %
        rule_override_set(rule=rule, patient=cast.patient_a, params={"low": override}, by=cast.clinician_a,
                          reason="COPD")
    response = _client(cast.patient_a.user).post("/me/readings/new/spo2/", {"value": "90"}, follow=True)
    html = response.content.decode()
    assert ("outside the limits your care team has set for you" in html) is told
    limits = _client(cast.patient_a.user).get("/me/readings/spo2/").content.decode()
    assert (f"below {override or 92} %" in limits)
