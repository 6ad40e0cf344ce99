"""Issue 24, done-when, through the editor's own pages: a programme set up from nothing (upload,
schedule, threshold rule, per-answer rule, trial), a patient enrolled — and then the patient is
asked the questionnaire and a reading beyond the threshold raises the alert. No JSON typed."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from alerts.models import Alert
from monitoring.models import Source
from monitoring.services import reading_ingest
from patients.models import Program, TreatmentEpisode
from questionnaires.library import load
from schedules.models import Occurrence

pytestmark = pytest.mark.django_db


def test_a_programme_set_up_in_the_editor_asks_its_patient_and_alerts_on_a_low_reading(
        client, cast, django_capture_on_commit_callbacks):
    client.force_login(cast.admin)
    assert client.post(reverse("editor-program-new"), {
        "name": "Hjemmemonitorering ved KOL", "slug": "kol-hjemme", "condition_code": "DJ44",
        "condition_display": "KOL", "review_workdays": "2", "department_phone": "78 45 00 00",
        "contact_text_da": "Vi ringer.", "contact_text_en": "We call.", "urgent_text_da": "Ring nu.",
        "urgent_text_en": "Call now.", "measures": ["spo2"]}).status_code == 302
    program = Program.objects.get(slug="kol-hjemme")
    upload = reverse("editor-questionnaire-upload", args=[program.pk])
    resource = load("lung-followup")
    checked = client.post(upload, {"action": "check", "file": SimpleUploadedFile(
        "q.json", json.dumps(resource).encode(), content_type="application/json")})
    client.post(upload, {"action": "publish", "key": checked.context["key"]})
    assert client.post(reverse("editor-schedule-new", args=[program.pk]), {
        "name": "Daglig", "questionnaire_url": resource["url"], "kind": "every", "every_days": "1", "from_day": "0",
        "to_day": "30", "due_time": "00:00", "open_before_days": "0", "window_days": "1",
        "action": "save"}).status_code == 302
    threshold = {"name": "SpO2 under 92 %", "severity": "red", "p_measure": "spo2", "p_low": "92",
                 "reason": "Aftalt på KOL-teammødet"}
    trial = client.post(reverse("editor-rule-new", args=[program.pk, "threshold"]), {**threshold, "action": "backtest"})
    assert trial.context["trial"] is not None
    assert client.post(reverse("editor-rule-new", args=[program.pk, "threshold"]),
                       {**threshold, "action": "save"}).status_code == 302
    assert client.post(reverse("editor-rule-new", args=[program.pk, "answer"]), {
        "name": "Vil kontaktes", "severity": "yellow", "p_link_id": f"{resource['url']}|contact",
        "p_codes": ["contact|true"], "reason": "Kontaktønsker", "action": "save"}).status_code == 302

    assert client.post(reverse("editor-program-publish", args=[program.pk])).status_code == 302
    program.refresh_from_db()
    assert program.published_at is not None
    patient = cast.patient_a
    today = timezone.localdate()
    assert client.post(reverse("editor-enrol", args=[program.pk]), {
        "patient": patient.pk, "care_team": cast.team_a.pk,
        "treatment_start": today.isoformat()}).status_code == 302
    episode = TreatmentEpisode.objects.get(patient=patient, program=program)
    assert Occurrence.objects.filter(episode=episode, questionnaire_url=resource["url"]).exists()

    with django_capture_on_commit_callbacks(execute=True):
        reading_ingest(patient=patient, measure="spo2", value=Decimal("89"), unit="%",
                       effective_at=timezone.now() - timedelta(minutes=5), source=Source.WEB)
    alert = Alert.objects.get(patient=patient, rule__program=program, rule__kind="threshold")
    assert alert.severity == "red"


def test_enrolling_twice_from_the_same_date_is_refused_next_to_the_date(client, cast):
    cast.program_a.published_at = timezone.now()
    cast.program_a.save()
    client.force_login(cast.admin)
    data = {"patient": cast.patient_b.pk, "care_team": cast.team_b.pk,
            "treatment_start": timezone.localdate().isoformat()}
    client.post(reverse("editor-enrol", args=[cast.program_a.pk]), data)
    again = client.post(reverse("editor-enrol", args=[cast.program_a.pk]), data, HTTP_ACCEPT_LANGUAGE="da")
    assert 'id="id_treatment_start-errors"' in again.content.decode()
    assert TreatmentEpisode.objects.filter(patient=cast.patient_b, program=cast.program_a).count() == 1


def test_a_programme_that_asks_and_watches_nothing_cannot_be_published_and_enrols_nobody(client, cast):
    client.force_login(cast.admin)
    program = Program.objects.create(slug="tom", name="Tom", condition_code="DJ44", condition_display="KOL")
    page = client.post(reverse("editor-program-publish", args=[program.pk]), HTTP_ACCEPT_LANGUAGE="da")
    assert "Tilføj en plan eller en regel" in page.content.decode()
    program.refresh_from_db()
    assert program.published_at is None
    refused = client.post(reverse("editor-enrol", args=[program.pk]), {
        "patient": cast.patient_b.pk, "care_team": cast.team_b.pk,
        "treatment_start": timezone.localdate().isoformat()}, HTTP_ACCEPT_LANGUAGE="da")
    assert "Udgiv programmet, før du tilmelder patienter." in refused.content.decode()
    assert not TreatmentEpisode.objects.filter(program=program).exists()
