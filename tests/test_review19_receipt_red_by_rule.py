"""From a review of issue 19 (6): the receipt decides "urgent" only from the answers the definition colours red. A
response the programme's rules judge red (here a PHQ-9 total of 24, severe depression, with item 9
"Slet ikke") is a red alert and red on the review queue, yet the patient is told "a nurse will look
at your answers within 2 weekdays" — even when the receipt is rendered after the rules have run."""

import pytest

from alerts.definitions import rule_save
from alerts.evaluation.responses import response_evaluate
from alerts.models import Alert, Rule
from questionnaires import library
from questionnaires.models import Questionnaire, QuestionnaireResponse
from questionnaires.services import questionnaire_import, response_submit
from tests.factories import response_items

pytestmark = pytest.mark.django_db


def test_receipt_of_a_response_the_rules_judged_red_does_not_promise_two_weekdays(cast, client):
    phq9 = questionnaire_import(resource=library.load("phq-9"))
    # As load_instruments does: the PHQ-9 total score (scoring file of the library instrument).
    Questionnaire.objects.filter(pk=phq9.pk).update(scoring=library.load_scoring("phq-9"))
    phq9.refresh_from_db()
    cast.program_a.questionnaires.add(phq9)
    cast.program_a.department_phone = "78 45 12 34"
    cast.program_a.save()
    rule_save(rule=Rule(program=cast.program_a, kind="score", name="PHQ-9 severe", severity="red",
                        params={"questionnaire": phq9.url, "score": "44261-6", "limit": 20}), by=cast.admin)
    answers = {f"phq9-{i}": "LA6571-9" for i in range(1, 9)} | {"phq9-9": "LA6568-5"}
    response = response_submit(patient=cast.patient_a, questionnaire=phq9, items=response_items(phq9, answers),
                               author=cast.patient_a.user)
    response_evaluate(response_id=response.pk)
    assert Alert.objects.get(patient=cast.patient_a, rule__kind="score").severity == "red"
    assert QuestionnaireResponse.objects.get(pk=response.pk).review_colour == "red"
    client.force_login(cast.patient_a.user)
    html = client.get(f"/me/questionnaires/{phq9.pk}/thanks/", HTTP_ACCEPT_LANGUAGE="da").content.decode()
    # Expected: the urgent advice (call the department today / 112), not the routine promise.
    assert "hverdag" not in html, "receipt promises a look within 2 weekdays for a red response"
    assert "Ring til afdelingen i dag" in html
