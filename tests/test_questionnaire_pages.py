"""The patient's pages, through the Django test client: my page, answering a questionnaire and
sending a measurement by hand."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse as FhirResponse

from alerts.models import Alert
from monitoring.models import Reading, Source
from questionnaires.library import load
from questionnaires.models import Questionnaire, QuestionnaireResponse
from questionnaires.services import questionnaire_import

pytestmark = pytest.mark.django_db


@pytest.fixture
def patient_a_client(cast, client):
    client.force_login(cast.patient_a.user)
    return client


def _errors_of(html: str, field_id: str) -> str:
    """The error list rendered next to one field (templates/field.html), or ''."""
    match = re.search(rf'<ul class="errors" id="{re.escape(field_id)}-errors">(.*?)</ul>', html, re.S)
    return match.group(1) if match else ""


VALID = {"q-breathless": "bit-worse", "q-swelling": "false", "q-pillows": "3", "q-contact": "false"}


def _page(questionnaire) -> str:
    # hf-daily has no groups: its questions share page 1
    return f"/me/questionnaires/{questionnaire.pk}/page/1/"


def _answer_and_send(client, questionnaire, answers):
    """Page 1 with Next, then Send on the review page; returns the last response."""
    response = client.post(_page(questionnaire), {**answers, "action": "next"})
    if response.status_code != 302:
        return response
    assert response["Location"] == f"/me/questionnaires/{questionnaire.pk}/review/"
    return client.post(response["Location"], {"identifier": ""})


# --- my page ---------------------------------------------------------------------------------

def test_patient_opens_my_page_with_their_questionnaire(cast, patient_a_client):
    response = patient_a_client.get("/me/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Alma" in html
    assert f"/me/questionnaires/{cast.questionnaire.pk}/" in html
    assert cast.questionnaire.title in html
    assert "Bodil" not in html


def test_my_page_shows_my_readings_and_not_other_patients(cast, patient_a_client):
    for patient, value in ((cast.patient_a, "97"), (cast.patient_b, "83")):
        Reading.objects.create(patient=patient, measure="spo2", value=value, unit="%",
                               effective_at=timezone.now() - timedelta(hours=1), source=Source.DEVICE)
    html = patient_a_client.get("/me/").content.decode()
    assert "97 %" in html
    assert "83 %" not in html


def test_home_sends_each_role_to_its_own_start_page(cast, client):
    for user, target in ((cast.patient_a.user, "/me/"), (cast.clinician_a, "/triage/"),
                         (cast.quality, "/quality/"), (cast.admin, "/triage/")):
        client.force_login(user)
        response = client.get("/")
        assert (response.status_code, response["Location"]) == (302, target)


# --- answering a questionnaire -----------------------------------------------------------------

def test_patient_opens_the_questionnaire_form(cast, patient_a_client):
    start = patient_a_client.get(f"/me/questionnaires/{cast.questionnaire.pk}/")
    assert (start.status_code, start["Location"]) == (302, _page(cast.questionnaire))
    response = patient_a_client.get(start["Location"])
    assert response.status_code == 200
    html = response.content.decode()
    for name in ("q-breathless", "q-swelling", "q-pillows", "q-contact"):
        assert f'name="{name}"' in html
    assert "Svar ud fra hvordan du har haft det" in html  # the display item


def test_valid_answers_redirect_to_the_receipt_and_store_one_fhir_response(cast, patient_a_client):
    response = _answer_and_send(patient_a_client, cast.questionnaire, VALID)
    assert response.status_code == 302
    assert response["Location"] == f"/me/questionnaires/{cast.questionnaire.pk}/thanks/"
    assert patient_a_client.get(response["Location"]).status_code == 200

    stored = QuestionnaireResponse.objects.get()
    assert stored.patient == cast.patient_a
    assert stored.author == cast.patient_a.user
    assert stored.questionnaire == cast.questionnaire
    assert stored.status == "completed"
    by_link = {item["linkId"]: item for item in stored.items}
    assert list(by_link) == ["breathless", "swelling", "pillows", "contact"]
    assert by_link["breathless"]["text"] == "Er du mere forpustet end du plejer?"
    assert by_link["breathless"]["answer"] == [{"valueCoding": {
        "system": "https://proplatform.example/fhir/CodeSystem/change", "code": "bit-worse",
        "display": "Lidt mere"}}]
    assert by_link["swelling"]["answer"] == [{"valueBoolean": False}]
    assert by_link["pillows"]["answer"] == [{"valueInteger": 3}]
    assert by_link["contact"]["answer"] == [{"valueBoolean": False}]


def test_stored_response_is_a_valid_fhir_questionnaire_response(cast, patient_a_client):
    _answer_and_send(patient_a_client, cast.questionnaire, VALID)
    stored = QuestionnaireResponse.objects.get()
    FhirResponse.model_validate({
        "resourceType": "QuestionnaireResponse", "status": stored.status,
        "questionnaire": f"{cast.questionnaire.url}|{cast.questionnaire.version}", "item": stored.items,
    })


def test_optional_question_left_empty_is_left_out_of_the_response(cast, patient_a_client):
    answers = {k: v for k, v in VALID.items() if k != "q-pillows"}
    assert _answer_and_send(patient_a_client, cast.questionnaire, answers).status_code == 302
    assert "pillows" not in [i["linkId"] for i in QuestionnaireResponse.objects.get().items]


def test_missing_required_answer_re_renders_with_the_error_next_to_that_field_and_submits_nothing(
        cast, patient_a_client):
    answers = {k: v for k, v in VALID.items() if k != "q-swelling"}
    response = _answer_and_send(patient_a_client, cast.questionnaire, answers)
    assert response.status_code == 200
    html = response.content.decode()
    assert _errors_of(html, "id_q-swelling").strip()
    assert 'aria-describedby="id_q-swelling-errors"' in html
    for other in ("id_q-breathless", "id_q-pillows", "id_q-contact"):
        assert not _errors_of(html, other), other
    # what was answered is kept (in the draft too), and the summary links to the question
    assert re.search(r'value="bit-worse"[^>]*checked', html)
    assert 'href="#id_q-swelling"' in html
    assert not QuestionnaireResponse.objects.filter(status="completed").exists()
    draft = QuestionnaireResponse.objects.get(status="in-progress")
    assert "breathless" in [i["linkId"] for i in draft.items]
    assert "swelling" not in [i["linkId"] for i in draft.items]


@pytest.mark.parametrize(("field", "value"), [("q-breathless", "terrible"), ("q-pillows", "many"),
                                              ("q-swelling", "maybe")])
def test_invalid_answer_re_renders_with_the_error_next_to_that_field_and_stores_nothing(
        cast, patient_a_client, field, value):
    response = _answer_and_send(patient_a_client, cast.questionnaire, {**VALID, field: value})
    assert response.status_code == 200
    assert _errors_of(response.content.decode(), f"id_{field}").strip()
    assert not QuestionnaireResponse.objects.filter(status="completed").exists()
    # the invalid value is not kept in the draft either
    draft = QuestionnaireResponse.objects.get(status="in-progress")
    assert field[2:] not in [i["linkId"] for i in draft.items]


def test_questionnaire_outside_the_patients_programmes_is_404(cast, patient_a_client):
    other = questionnaire_import(resource=load("lung-followup"))
    assert patient_a_client.get(f"/me/questionnaires/{other.pk}/").status_code == 404
    assert patient_a_client.post(f"/me/questionnaires/{other.pk}/page/1/", VALID).status_code == 404
    assert patient_a_client.post(f"/me/questionnaires/{other.pk}/review/", {}).status_code == 404
    assert not QuestionnaireResponse.objects.exists()


def test_unknown_questionnaire_is_404(cast, patient_a_client):
    missing = (Questionnaire.objects.order_by("-pk").first().pk or 0) + 100
    assert patient_a_client.get(f"/me/questionnaires/{missing}/").status_code == 404


# --- sending a measurement by hand ---------------------------------------------------------------

def test_valid_reading_on_the_web_form_is_stored(cast, patient_a_client):
    response = patient_a_client.post("/me/readings/new/",
                                     {"measure": "spo2", "value": "95", "measured_at": ""})
    assert response.status_code == 302
    assert response["Location"] == "/me/"
    reading = Reading.objects.get()
    assert (reading.patient, reading.measure, reading.value, reading.unit) == (
        cast.patient_a, "spo2", 95, "%")
    assert reading.source == Source.WEB
    assert reading.entered_by == cast.patient_a.user


def test_reading_form_takes_a_local_danish_time(cast, patient_a_client):
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    day = (datetime.now(ZoneInfo("Europe/Copenhagen")) - timedelta(days=3)).date()
    response = patient_a_client.post("/me/readings/new/", {"measure": "body-weight", "value": "71.4",
                                                          "measured_at": f"{day.isoformat()}T08:30"})
    assert response.status_code == 302
    reading = Reading.objects.get()
    expected = datetime(day.year, day.month, day.day, 8, 30, tzinfo=ZoneInfo("Europe/Copenhagen"))
    assert reading.effective_at == expected and reading.effective_at.utcoffset() is not None


def test_impossible_value_on_the_web_form_shows_an_error_next_to_the_value_field_and_stores_nothing(
        cast, patient_a_client):
    response = patient_a_client.post("/me/readings/new/",
                                     {"measure": "spo2", "value": "150", "measured_at": ""})
    assert response.status_code == 200
    html = response.content.decode()
    errors = _errors_of(html, "id_value")
    assert "150" in errors
    assert not _errors_of(html, "id_measure")
    assert Reading.objects.count() == 0


def test_future_time_on_the_web_form_shows_an_error_next_to_the_time_field_and_stores_nothing(
        cast, patient_a_client):
    response = patient_a_client.post("/me/readings/new/", {"measure": "spo2", "value": "95",
                                                          "measured_at": "2999-01-01T08:00"})
    assert response.status_code == 200
    assert _errors_of(response.content.decode(), "id_measured_at").strip()
    assert Reading.objects.count() == 0


def test_web_form_reading_below_the_limit_raises_an_alert(
        cast, patient_a_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        patient_a_client.post("/me/readings/new/", {"measure": "spo2", "value": "88", "measured_at": ""})
    assert Alert.objects.get().patient == cast.patient_a


# --- who may open these pages --------------------------------------------------------------------

def test_patient_b_cannot_open_patient_as_data(cast, client):
    client.force_login(cast.patient_b.user)
    assert client.get(f"/patients/{cast.patient_a.pk}/").status_code == 403
    assert client.get(f"/fhir/Patient/{cast.patient_a.pk}").status_code == 404
    html = client.get("/me/").content.decode()
    assert "Bodil" in html and "Alma" not in html


def test_patient_b_answering_lands_on_their_own_record(cast, client):
    client.force_login(cast.patient_b.user)
    assert _answer_and_send(client, cast.questionnaire, VALID).status_code == 302
    assert QuestionnaireResponse.objects.get().patient == cast.patient_b


@pytest.mark.parametrize("who", ["clinician_a", "quality", "admin"])
@pytest.mark.parametrize("path", ["/me/", "/me/readings/new/", "/me/questionnaires/{q}/"])
def test_staff_cannot_open_the_patient_pages(cast, client, who, path):
    client.force_login(getattr(cast, who))
    assert client.get(path.format(q=cast.questionnaire.pk)).status_code == 403


def test_anonymous_visitor_is_sent_to_login_from_my_page(cast, client):
    response = client.get("/me/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_the_receipts_emergency_advice_gives_1813_only_in_the_capital_region(cast, patient_a_client):
    from patients.models import Region

    url = f"/me/questionnaires/{cast.questionnaire.pk}/thanks/"
    cast.team_a.region = Region.MIDTJYLLAND
    cast.team_a.save()
    html = patient_a_client.get(url).content.decode().split("<main", 1)[1]
    assert "ring 112" in html and "lægevagten i din region" in html and "1813" not in html
    cast.team_a.region = Region.HOVEDSTADEN
    cast.team_a.save()
    html = patient_a_client.get(url).content.decode()
    assert "Akuttelefonen på 1813" in html
    # An episode with a planned end is still the patient's.
    from datetime import timedelta

    from django.utils import timezone

    cast.patient_a.episodes.update(end=timezone.localdate() + timedelta(days=30))
    assert "Akuttelefonen på 1813" in patient_a_client.get(url).content.decode()


def test_a_yes_no_question_offers_no_first_like_the_librarys_yes_no_choices(cast, patient_a_client):
    html = patient_a_client.get(f"/me/questionnaires/{cast.questionnaire.pk}/").content.decode()
    html = patient_a_client.get(f"/me/questionnaires/{cast.questionnaire.pk}/page/1/").content.decode() \
        if "q-swelling" not in html else html
    swelling = html.split('name="q-swelling"', 1)[1]
    assert swelling.index('value="false"') < swelling.index('value="true"')
