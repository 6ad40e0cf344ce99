"""From a review of issue 19 (2): the access grace period (patients.access.care_episodes) ends a team's access
CARE_ACCESS_GRACE_DAYS after the episode ended whether or not the patient still has open alerts or
unreviewed answers. The open red alert then drops off every clinician's worklist and the answers off
every review queue: nobody can act on them any more."""

from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.evaluation.responses import response_evaluate
from alerts.models import Alert, Status
from alerts.selectors import worklist
from questionnaires.review import review_queue
from questionnaires.services import response_submit
from tests.factories import response_items

pytestmark = pytest.mark.django_db


def test_open_alert_and_unreviewed_answer_stay_visible_after_grace_period(cast, client):
    response = response_submit(patient=cast.patient_a, questionnaire=cast.questionnaire,
                               items=response_items(cast.questionnaire, {"contact": True}),
                               author=cast.patient_a.user)
    response_evaluate(response_id=response.pk)
    alert = Alert.objects.get(patient=cast.patient_a)
    assert alert.status == Status.OPEN
    assert worklist(cast.clinician_a).filter(pk=alert.pk).exists()
    # The episode is closed (retroactively, as the admin does when the discharge letter comes).
    ep = cast.patient_a.episodes.get()
    ep.treatment_start = timezone.localdate() - timedelta(days=400)
    ep.end = timezone.localdate() - timedelta(days=91)
    ep.save()
    # Expected: the open alert and the unreviewed answer stay with the team until handled.
    client.force_login(cast.clinician_a)
    assert worklist(cast.clinician_a).filter(pk=alert.pk).exists(), "open alert vanished from the worklist"
    assert review_queue(cast.clinician_a).filter(pk=response.pk).exists(), "answer vanished from review queue"
    assert client.get(f"/patients/{cast.patient_a.pk}/").status_code == 200
