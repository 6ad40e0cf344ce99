"""Views hold no decisions (issue 22): whether a reading is outside the patient's limits is the
rules' own comparison, asked through a selector; showing the review page of a questionnaire
writes nothing."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from alerts.models import Rule, RuleOverride
from alerts.selectors_readings import reading_beyond_limits
from monitoring.models import Reading, Source
from questionnaires.models import QuestionnaireResponse
from questionnaires.services import response_draft_save
from tests.factories import response_items

pytestmark = pytest.mark.django_db


def _spo2(cast, value: str) -> Reading:
    return Reading(patient=cast.patient_a, measure="spo2", value=Decimal(value), unit="%", source=Source.WEB,
                   effective_at=timezone.now() - timedelta(minutes=1))


def test_a_reading_is_beyond_limits_exactly_when_the_rule_would_raise_with_the_patients_own_limit(cast):
    # The cast's programme: SpO2 below 92 % is red; the limit itself is fine.
    assert reading_beyond_limits(patient=cast.patient_a, reading=_spo2(cast, "91"))
    assert not reading_beyond_limits(patient=cast.patient_a, reading=_spo2(cast, "92"))
    rule = Rule.objects.get(program=cast.program_a, kind="threshold")
    RuleOverride.objects.create(rule=rule, patient=cast.patient_a, params={"low": 90}, reason="COPD, lives at 91",
                                created_by=cast.clinician_a)
    assert not reading_beyond_limits(patient=cast.patient_a, reading=_spo2(cast, "91"))
    assert reading_beyond_limits(patient=cast.patient_a, reading=_spo2(cast, "89"))


def test_a_bands_rules_warning_band_counts_as_beyond_limits(cast):
    Rule.objects.filter(kind="threshold").update(active=False)
    Rule.objects.create(program=cast.program_a, kind="bands", name="SpO2 bands", severity="red",
                        params={"measure": "spo2", "bands": {"alert_low": 88, "warning_low": 92}})
    assert reading_beyond_limits(patient=cast.patient_a, reading=_spo2(cast, "90"))  # yellow band
    assert not reading_beyond_limits(patient=cast.patient_a, reading=_spo2(cast, "95"))


def test_showing_the_review_page_writes_nothing(cast, client):
    draft = response_draft_save(patient=cast.patient_a, questionnaire=cast.questionnaire,
                                items=response_items(cast.questionnaire, {"contact": False}), current_page=0,
                                author=cast.patient_a.user)
    before = QuestionnaireResponse.objects.values_list("current_page", "updated_at").get(pk=draft.pk)
    client.force_login(cast.patient_a.user)
    page = client.get(reverse("questionnaire-review", args=[cast.questionnaire.pk]))
    assert page.status_code == 200
    assert QuestionnaireResponse.objects.values_list("current_page", "updated_at").get(pk=draft.pk) == before


def test_a_transaction_bundle_with_one_refused_entry_stores_nothing_and_names_every_refused_entry(cast):
    from alerts.evaluation import PendingEvaluation
    from interop.services_bundle import TransactionRefused, observations_transaction_store

    when = timezone.now() - timedelta(minutes=5)
    good = {"measure": "spo2", "value": 95, "unit": "%", "effective_at": when}
    entries = {0: good, 2: {**good, "value": 1000}, 3: {**good, "unit": "kg"}}  # 1: a conditional match
    with pytest.raises(TransactionRefused) as refused:
        observations_transaction_store(patient=cast.patient_a, entries=entries, provenance={}, source=Source.API,
                                       device=None, entered_by=cast.patient_a.user)
    assert [(i, r.status) for i, r in refused.value.failed] == [(2, 400), (3, 400)]
    assert not Reading.objects.exists() and not PendingEvaluation.objects.exists()

    stored = observations_transaction_store(patient=cast.patient_a, entries={0: good, 2: {**good, "value": 96}},
                                            provenance={0: {"issued": "x"}}, source=Source.API, device=None,
                                            entered_by=cast.patient_a.user)
    assert {i: r.status for i, r in stored.items()} == {0: 201, 2: 201}
    assert Reading.objects.get(pk=stored[0].id).original == {"fhir": {"issued": "x"}}
