"""How questionnaires meet schedules and relatives: an answer fulfils the open occurrence, and a
relative the patient allowed answers for them, recorded as the relative's answer."""

from datetime import timedelta

import pytest
from django.test import Client

from accounts.models import Role
from patients.models import RelativeGrant
from questionnaires.models import QuestionnaireResponse
from schedules.models import Occurrence
from schedules.services import schedule_create, schedule_generate_occurrences
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def _login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _answer(client: Client, cast, contact: str = "false"):
    page = client.post(f"/me/questionnaires/{cast.questionnaire.pk}/page/1/", {
        "q-breathless": "same", "q-swelling": "false", "q-contact": contact, "action": "next"})
    assert page.status_code == 302, page.content
    return client.post(page["Location"], {"identifier": ""})


@pytest.fixture
def daily(cast):
    schedule = schedule_create(program=cast.program_a, name="daily", questionnaire_url=cast.questionnaire.url,
                               kind="every", params={"every_days": 1, "from_day": 0, "to_day": 60},
                               window=timedelta(days=1), open_before=timedelta(hours=12))
    schedule_generate_occurrences(episode=cast.patient_a.episodes.get())
    return schedule


def test_my_page_says_by_when_to_answer_and_the_answer_fulfils_the_open_occurrence(cast, daily):
    client = _login(cast.patient_a.user)
    page = client.get("/me/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Please answer by" in page
    assert _answer(client, cast).status_code == 302
    response = QuestionnaireResponse.objects.get(status="completed")
    occurrence = Occurrence.objects.get(response=response)
    assert occurrence.status == "completed" and occurrence.patient == cast.patient_a


def test_an_answer_with_no_open_occurrence_is_kept_as_an_unscheduled_answer(cast):
    assert _answer(_login(cast.patient_a.user), cast).status_code == 302
    assert QuestionnaireResponse.objects.filter(status="completed").count() == 1
    assert not Occurrence.objects.exists()


@pytest.fixture
def daughter(cast):
    user = make_user("daughter", Role.RELATIVE, first_name="Dorte", last_name="Datter")
    RelativeGrant.objects.create(patient=cast.patient_a, relative=user, relationship="datter")
    return user


def test_a_relative_answers_for_the_patient_and_the_answer_records_who_gave_it(cast, daughter):
    client = _login(daughter)
    assert client.post(f"/for/{cast.patient_a.pk}/").url.endswith("/me/")
    home = client.get("/me/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "You are answering for" in home and cast.patient_a.given_name in home
    assert "My measurements" not in home  # the patient's readings are not the relative's business
    assert _answer(client, cast).status_code == 302
    response = QuestionnaireResponse.objects.get(status="completed")
    assert response.patient == cast.patient_a and response.author == daughter


def test_a_relative_cannot_act_for_a_patient_who_did_not_allow_it(cast, daughter):
    client = _login(daughter)
    assert client.post(f"/for/{cast.patient_b.pk}/").status_code == 404
    assert client.get("/me/").status_code == 404  # nobody chosen yet


def test_a_revoked_grant_ends_the_relatives_access_at_once(cast, daughter):
    client = _login(daughter)
    client.post(f"/for/{cast.patient_a.pk}/")
    RelativeGrant.objects.update(revoked_at="2026-01-01T00:00:00Z")
    assert client.get("/me/").status_code == 404
    assert client.get(f"/me/questionnaires/{cast.questionnaire.pk}/").status_code == 404
    assert not QuestionnaireResponse.objects.exists()


def test_a_relative_cannot_send_measurements_for_the_patient(cast, daughter):
    client = _login(daughter)
    client.post(f"/for/{cast.patient_a.pk}/")
    assert client.get("/me/readings/new/").status_code == 403


def test_a_relative_does_not_see_the_draft_the_patient_started_nor_the_patient_the_relatives(cast, daughter):
    patient = _login(cast.patient_a.user)
    saved = patient.post(f"/me/questionnaires/{cast.questionnaire.pk}/page/1/", {
        "q-breathless": "worse", "q-swelling": "true", "q-contact": "true", "action": "save"})
    assert saved.status_code == 302
    assert "Continue" in patient.get("/me/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    relative = _login(daughter)
    relative.post(f"/for/{cast.patient_a.pk}/")
    home = relative.get("/me/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Continue" not in home  # nothing started by this person
    page = relative.get(f"/me/questionnaires/{cast.questionnaire.pk}/page/1/").content.decode()
    assert "checked" not in page  # none of the patient's answers is shown

    # the relative answers in full; the patient's draft stays the patient's
    assert _answer(relative, cast).status_code == 302
    sent = QuestionnaireResponse.objects.get(status="completed")
    assert sent.author == daughter
    draft = QuestionnaireResponse.objects.get(status="in-progress")
    assert draft.author == cast.patient_a.user and draft.pk != sent.pk
    page = patient.get(f"/me/questionnaires/{cast.questionnaire.pk}/page/1/").content.decode()
    assert "checked" in page  # the patient's own answers, as they left them
