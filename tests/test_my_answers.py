from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import Role
from audit.models import AuditEvent
from questionnaires.models import QuestionnaireResponse
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def _scored(cast, patient, value, days_ago, author=None):
    return QuestionnaireResponse.objects.create(
        patient=patient, questionnaire=cast.questionnaire, author=author or patient.user,
        authored_at=timezone.now() - timedelta(days=days_ago), items=[],
        scores=[{"code": {"system": "http://loinc.org", "code": "44261-6", "display": "PHQ-9 total"},
                 "value": value, "band": {"code": "mild", "display_da": "let", "display_en": "mild"}}])


def test_my_answers_shows_scores_as_an_accessible_chart_and_a_table(cast):
    _scored(cast, cast.patient_a, 5, 20)
    _scored(cast, cast.patient_a, 9, 3)
    _scored(cast, cast.patient_b, 27, 1)  # someone else's
    client = Client()
    client.force_login(cast.patient_a.user)
    response = client.get("/me/answers/", HTTP_ACCEPT_LANGUAGE="da")
    html = response.content.decode()
    assert response.status_code == 200
    assert html.count('<svg role="img"') == 1
    assert "<script" not in html.split("<main", 1)[1]  # the chart is a picture, no scripts
    assert ">9 (let)</td>" in html and ">5 (let)</td>" in html  # one scale: no label
    assert "27" not in html.split("<table", 1)[1]
    assert AuditEvent.objects.filter(user=cast.patient_a.user, patient_ref=cast.patient_a.pk,
                                     resource__contains="my answers").exists()


def test_answers_given_by_a_relative_say_who_gave_them(cast):
    daughter = make_user("daughter", Role.RELATIVE, first_name="Dorte", last_name="Datter")
    _scored(cast, cast.patient_a, 4, 1, author=daughter)
    client = Client()
    client.force_login(cast.patient_a.user)
    html = client.get("/me/answers/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "answered by Dorte Datter" in html


def test_a_response_without_a_score_is_listed_without_breaking_the_chart(cast):
    QuestionnaireResponse.objects.create(patient=cast.patient_a, questionnaire=cast.questionnaire,
                                         author=cast.patient_a.user, items=[], scores=[
                                             {"code": {"code": "x", "display": "Total"}, "value": None}])
    client = Client()
    client.force_login(cast.patient_a.user)
    response = client.get("/me/answers/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    assert ">no score</td>" in response.content.decode()


def test_only_the_patient_opens_my_answers(cast):
    for user in (cast.clinician_a, cast.quality):
        client = Client()
        client.force_login(user)
        assert client.get("/me/answers/").status_code == 403
    assert Client().get("/me/answers/").status_code == 302  # to the login page
