"""From a review of issue 19 (7): "a red alert is acknowledged only with confirmation" was enforced in triage.js
alone. The acknowledge endpoint takes no expected severity/version, so a nurse's click on
"Kvittér" for an alert she saw as yellow — landing after the same alert turned red (a worse answer
arrived: the live push is a moment behind) — acknowledges the red alert with no confirmation dialog,
and it drops below every open alert on the worklist."""

import pytest

from alerts.definitions import rule_save
from alerts.evaluation.responses import response_evaluate
from alerts.models import Alert, Rule
from questionnaires.services import response_submit
from tests.factories import response_items

pytestmark = pytest.mark.django_db


def _answer(cast, **answers):
    r = response_submit(patient=cast.patient_a, questionnaire=cast.questionnaire,
                        items=response_items(cast.questionnaire, {"contact": False, **answers}),
                        author=cast.patient_a.user)
    response_evaluate(response_id=r.pk)


def test_a_yellow_click_does_not_acknowledge_an_alert_that_turned_red_unconfirmed(cast, client):
    rule = rule_save(rule=Rule(program=cast.program_a, kind="answer-severity", name="Svarfarver", severity="yellow",
                               params={"questionnaire": cast.questionnaire.url}), by=cast.admin)
    _answer(cast, breathless="bit-worse")
    alert = Alert.objects.get(rule=rule)
    assert alert.severity == "yellow"  # what the nurse's worklist shows; the button has no dialog
    _answer(cast, breathless="much-worse")  # meanwhile: the same alert is now red
    alert.refresh_from_db()
    assert alert.severity == "red" and alert.status == "open"
    client.force_login(cast.clinician_a)
    # The request triage.js sends for a yellow alert's button: the colour the nurse saw.
    response = client.post(f"/api/v1/alerts/{alert.pk}/acknowledge?expected_severity=yellow",
                           HTTP_ACCEPT="application/json")
    alert.refresh_from_db()
    assert response.status_code == 409 and alert.status == "open", (response.status_code, alert.status)
    assert response.json()["severity"] == "red"  # the list redraws it red, with its confirmation
    bad = client.post(f"/api/v1/alerts/{alert.pk}/acknowledge?expected_severity=purple")
    assert bad.status_code == 400 and "expected_severity" in bad.json()
    # Seen as red (after the dialog): acknowledged.
    ok = client.post(f"/api/v1/alerts/{alert.pk}/acknowledge?expected_severity=red")
    alert.refresh_from_db()
    assert ok.status_code == 200 and alert.status == "acknowledged"
