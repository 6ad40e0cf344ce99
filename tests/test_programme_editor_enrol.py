"""Enrolling a patient in the programme editor (issue 24): the patient is found by a search by
name or CPR number, sent by POST and audited as the patient list's search is — never picked from
a list of every patient, never with the CPR number in a URL or the audit trail."""

import pytest
from django.urls import reverse
from django.utils import timezone

from alerts.models import EscalationPolicy
from audit.models import AuditEvent
from patients.models import TreatmentEpisode
from tests.factories import make_patient

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(cast):
    cast.program_a.published_at = timezone.now()
    cast.program_a.save()
    return cast.program_a


def _url(program):
    return reverse("editor-enrol", args=[program.pk])


def test_the_page_lists_no_patients_until_a_search_finds_some(client, cast, published):
    client.force_login(cast.admin)
    body = client.get(_url(published), HTTP_ACCEPT_LANGUAGE="da").content.decode()
    assert cast.patient_a.name not in body and cast.patient_b.name not in body
    assert 'name="patient"' not in body and "Navn eller CPR-nummer" in body


def test_a_search_by_name_shows_the_hits_only_and_audits_the_search_and_each_patient_shown(client, cast, published):
    client.force_login(cast.admin)
    page = client.post(_url(published), {"action": "search", "q": "bodil"}, HTTP_ACCEPT_LANGUAGE="da")
    body = page.content.decode()
    assert cast.patient_b.name in body and cast.patient_a.name not in body
    assert f'value="{cast.patient_b.pk}"' in body and cast.patient_b.cpr not in body
    search = AuditEvent.objects.get(user=cast.admin, action="search", resource__contains="enrolment")
    assert search.resource == "Patient?search by name (enrolment): 1 hits"
    assert list(AuditEvent.objects.filter(user=cast.admin, action="read", resource__contains="enrolment")
                .values_list("patient_ref", flat=True)) == [cast.patient_b.pk]


def test_a_search_by_cpr_number_finds_the_patient_and_the_number_is_never_written_down(client, cast, published):
    client.force_login(cast.admin)
    page = client.post(_url(published), {"action": "search", "q": "0202502222"})
    assert f'value="{cast.patient_b.pk}"' in page.content.decode()
    assert not AuditEvent.objects.filter(resource__contains="0202").exists()
    assert AuditEvent.objects.filter(resource="Patient?search by CPR number (enrolment): 1 hits").exists()


def test_the_patient_chosen_among_the_hits_is_enrolled(client, cast, published):
    client.force_login(cast.admin)
    response = client.post(_url(published), {
        "action": "enrol", "q": "bodil", "patient": str(cast.patient_b.pk), "care_team": cast.team_b.pk,
        "treatment_start": timezone.localdate().isoformat()})
    assert response.status_code == 302
    assert TreatmentEpisode.objects.filter(patient=cast.patient_b, program=published).exists()


def test_enrolling_without_choosing_a_patient_says_so_next_to_the_patient_in_danish(client, cast, published):
    client.force_login(cast.admin)
    page = client.post(_url(published), {"action": "enrol", "care_team": cast.team_b.pk,
                                         "treatment_start": timezone.localdate().isoformat()},
                       HTTP_ACCEPT_LANGUAGE="da")
    body = page.content.decode()
    assert 'id="id_patient-errors"' in body and "Søg efter patienten, og vælg én." in body
    assert not TreatmentEpisode.objects.filter(program=published, patient=cast.patient_b).exists()


def test_a_team_lead_finds_and_enrols_only_the_patients_of_their_own_teams(client, cast, published):
    EscalationPolicy.objects.create(care_team=cast.team_a, lead=cast.clinician_a)
    client.force_login(cast.clinician_a)
    body = client.post(_url(published), {"action": "search", "q": "bodil"}, HTTP_ACCEPT_LANGUAGE="da"
                       ).content.decode()
    assert cast.patient_b.name not in body and "Ingen af dine patienter passer til søgningen." in body
    refused = client.post(_url(published), {"action": "enrol", "patient": str(cast.patient_b.pk),
                                            "care_team": cast.team_a.pk,
                                            "treatment_start": timezone.localdate().isoformat()},
                          HTTP_ACCEPT_LANGUAGE="da")
    assert 'id="id_patient-errors"' in refused.content.decode()
    assert not TreatmentEpisode.objects.filter(program=published, patient=cast.patient_b).exists()


def test_a_wide_search_shows_twenty_and_asks_for_more_of_the_name(client, cast, published):
    for n in range(22):
        make_patient(f"p{n}", f"0303{n:02d}-{3000 + n}", cast.team_a, cast.program_b, given_name="Hansine")
    client.force_login(cast.admin)
    page = client.post(_url(published), {"action": "search", "q": "hansine"}, HTTP_ACCEPT_LANGUAGE="da")
    assert len(page.context["form"].fields["patient"].queryset) == 20 and page.context["too_many"]
    assert "Flere patienter passer" in page.content.decode()
