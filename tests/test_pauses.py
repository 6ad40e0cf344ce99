from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from schedules.models import Pause

pytestmark = pytest.mark.django_db


def _login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_clinician_pauses_a_patients_questionnaires_and_ends_the_pause(cast):
    client = _login(cast.clinician_a)
    today = timezone.localdate()
    response = client.post(f"/patients/{cast.patient_a.pk}/pauses/new/", {
        "starts_on": today.isoformat(), "ends_on": (today + timedelta(days=14)).isoformat(), "reason": "ferie"})
    assert response.status_code == 302
    pause = Pause.objects.get()
    assert (pause.patient, pause.created_by, pause.reason) == (cast.patient_a, cast.clinician_a, "ferie")
    page = client.get(f"/patients/{cast.patient_a.pk}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "ferie" in page and "End the pause" in page
    assert client.post(f"/patients/{cast.patient_a.pk}/pauses/{pause.pk}/end/").status_code == 302
    pause.refresh_from_db()
    assert pause.ended_by == cast.clinician_a
    assert AuditEvent.objects.filter(user=cast.clinician_a, patient_ref=cast.patient_a.pk, action="create").exists()


@pytest.mark.parametrize(
    ("data", "field"),
    [({"starts_on": "2026-12-10", "ends_on": "2026-12-01", "reason": "ferie"}, "ends_on"),
     ({"starts_on": "2026-12-10", "reason": ""}, "reason"),
     ({"starts_on": "not-a-date", "reason": "ferie"}, "starts_on")],
    ids=["ends-before-it-starts", "no-reason", "malformed-date"],
)
def test_bad_pauses_show_the_error_next_to_the_field_and_store_nothing(cast, data, field):
    response = _login(cast.clinician_a).post(f"/patients/{cast.patient_a.pk}/pauses/new/", data)
    assert response.status_code == 200
    assert response.context["form"].errors.get(field) or response.context["form"].non_field_errors()
    assert not Pause.objects.exists()


def test_only_the_patients_own_team_pauses_their_questionnaires(cast):
    data = {"starts_on": timezone.localdate().isoformat(), "reason": "ferie"}
    assert _login(cast.clinician_b).post(f"/patients/{cast.patient_a.pk}/pauses/new/", data).status_code == 404
    assert _login(cast.patient_a.user).post(f"/patients/{cast.patient_a.pk}/pauses/new/", data).status_code == 403
    assert not Pause.objects.exists()
