"""Questionnaires in the programme editor (issue 24): upload a FHIR file or pick one from the
library, see the import report and the phone preview, then publish into the programme."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from alerts.models import Rule
from questionnaires.library import load
from questionnaires.models import Questionnaire

pytestmark = pytest.mark.django_db


def _file(content: bytes, name: str = "q.json") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/json")


def test_an_uploaded_questionnaire_is_previewed_before_it_is_stored_and_published_into_the_programme(client, cast):
    client.force_login(cast.admin)
    url = reverse("editor-questionnaire-upload", args=[cast.program_a.pk])
    resource = load("lung-followup")
    page = client.post(url, {"action": "check", "file": _file(json.dumps(resource).encode())},
                       HTTP_ACCEPT_LANGUAGE="da")
    assert page.status_code == 200
    assert page.context["pages"] and 'class="phone-preview"' in page.content.decode()
    assert not Questionnaire.objects.filter(url=resource["url"]).exists()
    published = client.post(url, {"action": "publish", "key": page.context["key"]})
    assert published.status_code == 302
    questionnaire = Questionnaire.objects.get(url=resource["url"])
    assert cast.program_a.questionnaires.filter(pk=questionnaire.pk).exists()
    # The instrument's safety net comes with it.
    assert Rule.objects.filter(program=cast.program_a, safety_net_for=resource["url"]).exists()


def test_a_library_instrument_is_published_with_its_scoring(client, cast):
    client.force_login(cast.admin)
    url = reverse("editor-questionnaire-upload", args=[cast.program_a.pk])
    page = client.post(url, {"action": "check", "library": "phq-9"})
    client.post(url, {"action": "publish", "key": page.context["key"]})
    questionnaire = cast.program_a.questionnaires.get(url=load("phq-9")["url"])
    assert questionnaire.scoring is not None


@pytest.mark.parametrize(("content", "words"), [
    (b"Spoergeskema;Svar\n1;2\n", "ikke JSON"),
    (json.dumps({"resourceType": "Patient"}).encode(), "ikke et FHIR-spørgeskema"),
])
def test_a_file_that_is_not_a_fhir_questionnaire_gets_a_danish_message_and_nothing_is_stored(
        client, cast, content, words):
    client.force_login(cast.admin)
    before = Questionnaire.objects.count()
    page = client.post(reverse("editor-questionnaire-upload", args=[cast.program_a.pk]),
                       {"action": "check", "file": _file(content)}, HTTP_ACCEPT_LANGUAGE="da")
    body = page.content.decode()
    assert 'id="id_file-errors"' in body and words in body
    assert Questionnaire.objects.count() == before


def test_a_questionnaire_with_an_unusable_item_shows_the_report_per_link_id_and_cannot_be_published(client, cast):
    client.force_login(cast.admin)
    resource = {"resourceType": "Questionnaire", "url": "https://example.org/Q/bad", "status": "active",
                "item": [{"linkId": "sig", "type": "boolean", "text": "Breathless?"},
                         {"linkId": "sig", "type": "boolean", "text": "Coughing?"}]}
    page = client.post(reverse("editor-questionnaire-upload", args=[cast.program_a.pk]),
                       {"action": "check", "file": _file(json.dumps(resource).encode())}, HTTP_ACCEPT_LANGUAGE="da")
    body = page.content.decode()
    assert page.context["refused"] and "sig" in body and 'value="publish"' not in body
    assert not Questionnaire.objects.filter(url="https://example.org/Q/bad").exists()


def test_nobody_outside_the_programme_may_upload(client, cast):
    client.force_login(cast.clinician_a)
    assert client.get(reverse("editor-questionnaire-upload", args=[cast.program_a.pk])).status_code == 404
