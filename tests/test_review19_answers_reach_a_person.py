"""From a review of issue 19 (1): a patient whose episode has ended can still open and answer the questionnaire on
/me/, but the safety net and the programme's rules only run for *running* episodes, and the review
queue only shows patients inside the clinicians' grace period. A red answer / "contact me" then
reaches nobody (no alert at all; after the grace period not even a review row anyone can see)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.evaluation.responses import response_evaluate
from alerts.models import Alert
from patients.models import Patient
from questionnaires import library
from questionnaires.services import questionnaire_import, response_submit
from tests.factories import response_items

pytestmark = pytest.mark.django_db


def _end_episode(patient, days_ago):
    ep = patient.episodes.get()
    ep.treatment_start = timezone.localdate() - timedelta(days=days_ago + 30)
    ep.end = timezone.localdate() - timedelta(days=days_ago)
    ep.save()


def test_contact_me_after_episode_ended_raises_no_alert(cast, client):
    _end_episode(cast.patient_a, days_ago=10)  # inside the 90-day grace: the team still has access
    client.force_login(cast.patient_a.user)
    # The patient is still offered the questionnaire on /me/ ...
    assert client.get(f"/me/questionnaires/{cast.questionnaire.pk}/").status_code in (200, 302)
    response = response_submit(patient=cast.patient_a, questionnaire=cast.questionnaire,
                               items=response_items(cast.questionnaire, {"contact": True}),
                               author=cast.patient_a.user)
    response_evaluate(response_id=response.pk)
    receipt = client.get(f"/me/questionnaires/{cast.questionnaire.pk}/thanks/", HTTP_ACCEPT_LANGUAGE="da")
    assert "Vi ringer til dig" in receipt.content.decode()  # the patient is promised a call ...
    # Expected: the "contact me" answer raises at least a yellow alert for the team that still
    # has access (or the questionnaire is not offered any more). Observed: no alert.
    assert Alert.objects.filter(patient=cast.patient_a).exists()


def test_after_the_grace_period_no_team_looks_so_the_questionnaire_is_no_longer_offered(cast, client):
    _end_episode(cast.patient_a, days_ago=120)  # past CARE_ACCESS_GRACE_DAYS=90
    client.force_login(cast.patient_a.user)
    assert client.get(f"/me/questionnaires/{cast.questionnaire.pk}/").status_code == 404
    assert cast.questionnaire.title not in client.get("/me/").content.decode()




def test_a_red_baseline_answer_before_the_treatment_start_raises_a_red_alert(cast, client):
    phq9 = questionnaire_import(resource=library.load("phq-9"))
    cast.program_a.questionnaires.add(phq9)
    Patient.objects.filter(pk=cast.patient_a.pk).update(created_at=timezone.now() - timedelta(days=3))
    cast.patient_a.episodes.update(treatment_start=timezone.localdate() + timedelta(days=7))  # starts next week
    client.force_login(cast.patient_a.user)
    assert client.get(f"/me/questionnaires/{phq9.pk}/").status_code == 302  # offered to the patient
    response = response_submit(patient=cast.patient_a, questionnaire=phq9,
                               items=response_items(phq9, {"phq9-9": "LA6569-3"}), author=cast.patient_a.user)
    response_evaluate(response_id=response.pk)
    # Expected: the instrument's safety net raises a red alert. Observed: no alert.
    assert Alert.objects.filter(patient=cast.patient_a, severity="red").exists()
