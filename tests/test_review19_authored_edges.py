"""From a review of issue 19 (10): POST /fhir/QuestionnaireResponse with an ``authored`` at the edge of the calendar
("0001-01-01T00:30:00+01:00", "9999-12-31T23:00:00-14:00") answers 500: the refusal message
converts the instant to Copenhagen time (questionnaires.services.response_authored_check.shown /
patient_enrolled_at comparisons) and datetime overflows. Expected: 400 OperationOutcome on
QuestionnaireResponse.authored like every other refused time."""

import json

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db
FHIR = "application/fhir+json"


def _body(cast, authored):
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": f"{cast.questionnaire.url}|{cast.questionnaire.version}",
        "status": "completed",
        "subject": {"reference": f"Patient/{cast.patient_a.pk}"},
        "authored": authored,
        "item": [
            {"linkId": "breathless", "answer": [{"valueCoding": {
                "system": "https://proplatform.example/fhir/CodeSystem/change", "code": "same"}}]},
            {"linkId": "swelling", "answer": [{"valueBoolean": False}]},
            {"linkId": "contact", "answer": [{"valueBoolean": False}]},
        ],
    }


@pytest.mark.parametrize("authored", ["0001-01-01T00:30:00+01:00", "9999-12-31T23:00:00-14:00"])
def test_an_authored_time_at_the_calendars_edge_is_a_400_not_a_500(cast, authored):
    client = Client(raise_request_exception=False)
    client.force_login(cast.patient_a.user)
    response = client.post("/fhir/QuestionnaireResponse", json.dumps(_body(cast, authored)), content_type=FHIR)
    assert response.status_code == 400, (response.status_code, response.content[:300])
