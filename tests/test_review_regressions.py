"""Regression tests for defects found in review: relatives and FHIR, identifier reuse, bad input
that used to answer 500, and ordinalValue on the Coding."""

import json
from unittest import mock

import pytest
from django.test import Client

from accounts.models import Role
from patients.models import RelativeGrant
from questionnaires.models import QuestionnaireResponse
from tests.factories import make_user

pytestmark = pytest.mark.django_db
FHIR = "application/fhir+json"


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def daughter(cast):
    user = make_user("daughter", Role.RELATIVE)
    RelativeGrant.objects.create(patient=cast.patient_a, relative=user, relationship="datter")
    return user


def _qr(cast, patient, identifier="resp-1", **overrides) -> dict:
    resource = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": f"{cast.questionnaire.url}|{cast.questionnaire.version}",
        "status": "completed",
        "subject": {"reference": f"Patient/{patient.pk}"},
        "identifier": {"system": "urn:app", "value": identifier},
        "item": [
            {"linkId": "breathless", "answer": [{"valueCoding": {
                "system": "https://proplatform.example/fhir/CodeSystem/change", "code": "same"}}]},
            {"linkId": "swelling", "answer": [{"valueBoolean": False}]},
            {"linkId": "contact", "answer": [{"valueBoolean": False}]},
        ],
    }
    resource.update(overrides)
    return resource


def _post(client, body):
    return client.post("/fhir/QuestionnaireResponse", json.dumps(body), content_type=FHIR)


# --- 1. a relative reads the patient's full identified record over FHIR ------------------------

def test_a_relative_cannot_read_the_patients_cpr_number_over_fhir(cast, daughter):
    response = _client(daughter).get(f"/fhir/Patient/{cast.patient_a.pk}")
    # A relative may answer questionnaires; the CPR number, phone and birth date are not theirs.
    assert response.status_code in (403, 404), response.json()


def test_a_relative_cannot_search_the_patients_past_responses_and_scores(cast, daughter):
    QuestionnaireResponse.objects.create(
        patient=cast.patient_a, questionnaire=cast.questionnaire, author=cast.patient_a.user,
        items=[{"linkId": "contact", "answer": [{"valueBoolean": True}]}])
    client = _client(daughter)
    responses = client.get("/fhir/QuestionnaireResponse", {"patient": str(cast.patient_a.pk)})
    observations = client.get("/fhir/Observation", {"patient": str(cast.patient_a.pk)})
    # The web deliberately hides 'My answers' and readings from relatives (history.py is
    # Role.PATIENT only); the FHIR API must not hand them out.
    assert responses.status_code in (403, 404), responses.json()
    assert observations.status_code in (403, 404)


# --- 2. identifier reuse with different content is silently accepted --------------------------

def test_reusing_an_identifier_for_different_answers_is_a_conflict_not_a_silent_200(cast):
    client = _client(cast.patient_a.user)
    first = _post(client, _qr(cast, cast.patient_a))
    assert first.status_code == 201
    changed = _qr(cast, cast.patient_a)
    changed["item"][2] = {"linkId": "contact", "answer": [{"valueBoolean": True}]}  # "please call me"
    second = _post(client, changed)
    # The client is told "stored" (200) but the patient's request to be contacted was dropped.
    assert second.status_code in (400, 409), (second.status_code, second.json())


# --- 3. bad input answered with 500 -----------------------------------------------------------

def test_an_occurrence_closing_mid_submission_is_a_clear_error_not_a_500(cast):
    from schedules.services import OccurrenceNotOpen

    def closed(*, occurrence, response, now=None, received_at=None):
        raise OccurrenceNotOpen(occurrence, "This questionnaire closed on ...")

    client = _client(cast.patient_a.user)
    client.raise_request_exception = False
    with mock.patch("schedules.services.occurrence_for_submission", return_value=mock.Mock()), \
         mock.patch("schedules.services.occurrence_complete", side_effect=closed):
        response = _post(client, _qr(cast, cast.patient_a))
    assert response.status_code in (400, 409), response.status_code
    assert not QuestionnaireResponse.objects.exists()


def test_an_identifier_longer_than_the_column_is_refused_with_400(cast):
    client = _client(cast.patient_a.user)
    client.raise_request_exception = False
    body = _qr(cast, cast.patient_a)
    body["identifier"] = {"value": "x" * 150}  # column is varchar(100): DataError (500) on PostgreSQL
    response = _post(client, body)
    assert response.status_code == 400, response.status_code


# --- 5. scoring ignores ordinalValue placed on the Coding (valid R4; definition.py reads it) ------

def test_ordinal_value_on_the_answer_coding_is_scored():
    from questionnaires.definition import parse
    from questionnaires.scoring import parse_spec, score_items, spec_problems

    ordinal = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
    resource = {"resourceType": "Questionnaire", "status": "active", "url": "https://x/q", "item": [
        {"linkId": "q1", "type": "choice", "answerOption": [
            {"valueCoding": {"system": "urn:s", "code": str(n), "display": str(n),
                             "extension": [{"url": ordinal, "valueDecimal": n}]}} for n in range(4)]}]}
    # The platform's own typed model values these options...
    assert [o.weight for o in parse(resource).item[0].answerOption] == [0, 1, 2, 3]
    spec = parse_spec({"scales": [{"code": {"system": "s", "code": "c", "display": "d"},
                                   "method": "sum", "items": ["q1"]}]})
    # ...but the scorer does not: the spec is declared unfit and every score comes out missing.
    assert spec_problems(spec, resource) == []
    items = [{"linkId": "q1", "answer": [{"valueCoding": {"system": "urn:s", "code": "2"}}]}]
    assert score_items(spec=spec, resource=resource, items=items)[0]["value"] == 2


# --- further review findings, fixed --------------------------------------------------------------

def _multi(cast):
    from questionnaires.services import questionnaire_import
    from tests.questionnaire_samples import MULTI_PAGE

    questionnaire = questionnaire_import(resource=MULTI_PAGE)
    cast.program_a.questionnaires.add(questionnaire)
    return questionnaire


def test_an_api_answer_to_a_disabled_item_is_refused_naming_it(cast):
    questionnaire = _multi(cast)
    body = {
        "resourceType": "QuestionnaireResponse", "status": "completed",
        "questionnaire": f"{questionnaire.url}|1", "subject": {"reference": f"Patient/{cast.patient_a.pk}"},
        "item": [
            {"linkId": "symptoms", "item": [
                {"linkId": "pain", "answer": [{"valueCoding": {"code": "none"}}]},
                {"linkId": "pain-where", "answer": [{"valueString": "knee"}]}]},  # only asked when in pain
            {"linkId": "breathing", "item": [{"linkId": "breathless", "answer": [{"valueBoolean": False}]}]},
            {"linkId": "contact", "answer": [{"valueBoolean": False}]},
        ],
    }
    response = _post(_client(cast.patient_a.user), body)
    assert response.status_code == 400, response.json()
    assert "pain-where" in json.dumps(response.json())
    assert not QuestionnaireResponse.objects.exists()


def test_a_retired_version_is_not_offered_to_patients(cast):
    from questionnaires.models import Questionnaire

    Questionnaire.objects.filter(pk=cast.questionnaire.pk).update(status="retired")
    client = _client(cast.patient_a.user)
    assert client.get(f"/me/questionnaires/{cast.questionnaire.pk}/").status_code == 404


def test_an_administrator_opening_a_patient_in_the_admin_is_audited(cast):
    from audit.models import AuditEvent

    response = _client(cast.admin).get(f"/admin/patients/patient/{cast.patient_a.pk}/change/")
    assert response.status_code == 200
    assert AuditEvent.objects.filter(user=cast.admin, patient_ref=cast.patient_a.pk, action="read").exists()


def test_a_stored_questionnaire_version_cannot_be_edited_in_the_admin(cast):
    response = _client(cast.admin).get(f"/admin/questionnaires/questionnaire/{cast.questionnaire.pk}/change/")
    assert response.status_code == 200
    assert 'name="resource"' not in response.content.decode()
    assert 'name="scoring"' not in response.content.decode()


def test_a_draft_sent_twice_from_two_tabs_is_stored_once(cast):
    from questionnaires.services import response_draft_save, response_submit

    items = [{"linkId": "breathless", "answer": [{"valueCoding": {
                  "system": "https://proplatform.example/fhir/CodeSystem/change", "code": "same"}}]},
             {"linkId": "swelling", "answer": [{"valueBoolean": False}]},
             {"linkId": "contact", "answer": [{"valueBoolean": False}]}]
    draft = response_draft_save(patient=cast.patient_a, questionnaire=cast.questionnaire, items=items,
                                current_page=1, author=cast.patient_a.user)
    stale = QuestionnaireResponse.objects.get(pk=draft.pk)  # what the second tab still holds
    first = response_submit(patient=cast.patient_a, questionnaire=cast.questionnaire, items=items,
                            author=cast.patient_a.user, identifier="tab-1", draft=draft)
    second = response_submit(patient=cast.patient_a, questionnaire=cast.questionnaire, items=items,
                             author=cast.patient_a.user, identifier="tab-2", draft=stale)
    assert first.pk == second.pk
    assert QuestionnaireResponse.objects.filter(status="completed").count() == 1


def test_revising_a_questionnaire_so_its_scoring_no_longer_fits_is_refused(cast):
    import copy

    from django.core.exceptions import ValidationError

    from questionnaires.library import load, load_scoring
    from questionnaires.models import Questionnaire
    from questionnaires.services import questionnaire_import, questionnaire_revise

    phq9 = questionnaire_import(resource=load("phq-9"))
    Questionnaire.objects.filter(pk=phq9.pk).update(scoring=load_scoring("phq-9"))
    phq9.refresh_from_db()
    edited = copy.deepcopy(phq9.resource)
    edited["item"][0]["item"][0]["linkId"] = "phq9-1-renamed"
    with pytest.raises(ValidationError, match="phq9-1"):
        questionnaire_revise(questionnaire=phq9, resource=edited)
    assert Questionnaire.objects.filter(url=phq9.url).count() == 1


def test_an_autosave_from_a_tab_left_open_after_sending_starts_no_new_draft(cast):
    client = _client(cast.patient_a.user)
    response = client.post(f"/me/questionnaires/{cast.questionnaire.pk}/page/1/",
                           {"q-breathless": "same", "action": "autosave"})
    assert response.status_code == 204
    assert not QuestionnaireResponse.objects.exists()
