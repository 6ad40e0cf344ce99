"""Review 19 (low): the patient search finds a CPR number with or without the dash, but not written
with a space ("010150 1111", how a CPR number is often read out on the phone and printed on the
yellow health card). It is taken for a name search, finds nobody, and is audited as "search by name"."""

import pytest
from django.test import Client

from audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_a_cpr_number_with_a_space_finds_the_patient(cast):
    client = Client()
    client.force_login(cast.clinician_a)
    page = client.post("/patients/", {"q": "010150 1111"}, follow=True)
    last = AuditEvent.objects.filter(action="search").order_by("-pk").first()
    assert "Alma" in page.content.decode() and "CPR" in last.resource, last.resource
