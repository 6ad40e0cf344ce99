"""Alert reasons are stored text that a nurse reads on a Danish worklist. In the embedded shape
the rules run in-process, inside the request of whoever sent the reading: a patient whose phone
asks for English must not leave an English reason behind."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone, translation

from accounts.models import ApiToken
from alerts.evaluation import Source as EvaluationSource
from alerts.evaluation import enqueue
from alerts.evaluation.tasks import evaluate as evaluate_task
from alerts.models import Alert
from monitoring.models import Reading, Source

pytestmark = pytest.mark.django_db
DANISH = "Iltmætning (SpO2) 88 % er under grænsen på 92 %."


def test_the_evaluation_task_run_in_an_english_thread_still_writes_the_reason_in_danish(cast):
    reading = Reading.objects.create(patient=cast.patient_a, measure="spo2", value=Decimal("88"), unit="%",
                                     effective_at=timezone.now() - timedelta(minutes=5), source=Source.DEVICE)
    batch = enqueue(source=EvaluationSource.READING, after_commit=False, ids=[reading.pk])
    with translation.override("en"):
        evaluate_task([batch])
        assert translation.get_language() == "en"  # the caller's language is given back
    assert Alert.objects.get().reason == DANISH


def test_a_reading_sent_with_accept_language_english_gets_a_danish_reason(cast, django_capture_on_commit_callbacks):
    _token, raw = ApiToken.issue(user=cast.patient_a.user)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}", HTTP_ACCEPT_LANGUAGE="en")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/v1/readings", {"measure": "spo2", "value": "88", "unit": "%",
                                                     "effective_at": timezone.now().isoformat()},
                               content_type="application/json")
    assert response.status_code == 201, response.content
    assert Alert.objects.get().reason == DANISH


def test_an_unknown_measure_in_english_is_refused_in_english_and_stores_nothing(cast):
    _token, raw = ApiToken.issue(user=cast.patient_a.user)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}", HTTP_ACCEPT_LANGUAGE="en")
    response = client.post("/api/v1/readings", {"measure": "nonsense", "value": "88", "unit": "%",
                                                 "effective_at": timezone.now().isoformat()},
                           content_type="application/json")
    assert response.status_code == 400 and "measure" in response.json().get("errors", response.json())
    assert not Reading.objects.exists() and not Alert.objects.exists()
