"""Questionnaire services and the patient's multi-page web form: import and export, versions,
drafts and resuming, review and submission, idempotency, all-or-nothing."""

import copy
import json
import re

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from questionnaires.models import Questionnaire, QuestionnaireResponse
from questionnaires.services import (
    QuestionnaireImportError,
    ResponseInvalid,
    questionnaire_export,
    questionnaire_import,
    questionnaire_review,
    questionnaire_revise,
    response_draft_save,
    response_submit,
)
from tests.questionnaire_samples import MULTI_PAGE, sdc_example

pytestmark = pytest.mark.django_db
SYSTEM = "https://proplatform.example/fhir/CodeSystem/test"
VALID_ITEMS = [{"linkId": "pain", "answer": [{"valueCoding": {"system": SYSTEM, "code": "none"}}]},
               {"linkId": "breathless", "answer": [{"valueBoolean": False}]},
               {"linkId": "contact", "answer": [{"valueBoolean": True}]}]


@pytest.fixture
def multi(cast):
    questionnaire = questionnaire_import(resource=copy.deepcopy(MULTI_PAGE))
    cast.program_a.questionnaires.add(questionnaire)
    return questionnaire


@pytest.fixture
def patient_client(cast, client):
    client.force_login(cast.patient_a.user)
    return client


# --- import, export, versions --------------------------------------------------------------------

@pytest.mark.parametrize("name", ["all-data-types", "enablewhen", "required-field"])
def test_each_sdc_example_imports_renders_every_page_and_exports_unchanged(cast, client, name):
    resource = sdc_example(name)
    questionnaire = questionnaire_import(resource=copy.deepcopy(resource))
    assert questionnaire.url == f"urn:proplatform:questionnaire:{resource['id']}"
    exported = questionnaire_export(questionnaire=questionnaire)
    assert {k: v for k, v in exported.items() if k not in ("url", "version")} == resource
    cast.program_a.questionnaires.add(questionnaire)
    client.force_login(cast.patient_a.user)
    first = client.get(f"/me/questionnaires/{questionnaire.pk}/")
    assert first.status_code == 302
    for number in range(1, len(resource["item"]) + 1):
        html = client.get(f"/me/questionnaires/{questionnaire.pk}/page/{number}/").content.decode()
        assert 'name="action" value="next"' in html
    if name == "all-data-types":
        assert "attachment to be included" in html and "kan ikke besvares her" in html
        assert "kunne ikke hentes her" in html  # the external answerValueSet note
        for kind in ("date", "time", "datetime-local"):
            assert f'type="{kind}"' in html
        # Numbers are typed in text fields with the numeric keyboard ("72,5" is 72.5).
        assert 'inputmode="decimal"' in html and 'inputmode="numeric"' in html


def test_sdc_example_with_an_external_value_set_is_refused_when_strict(cast):
    with pytest.raises(QuestionnaireImportError) as caught:
        questionnaire_import(resource=sdc_example("required-field"), strict=True)
    assert [i.link_id for i in caught.value.issues] == ["radio"]
    assert not Questionnaire.objects.filter(url__contains="required").exists()


def test_import_errors_name_the_link_id_and_store_nothing(cast):
    bad = copy.deepcopy(MULTI_PAGE)
    bad["item"][3]["enableWhen"] = [{"question": "ghost", "operator": "exists", "answerBoolean": True}]
    with pytest.raises(QuestionnaireImportError) as caught:
        questionnaire_import(resource=bad)
    assert [i.link_id for i in caught.value.issues] == ["contact"]
    assert not Questionnaire.objects.filter(url=MULTI_PAGE["url"]).exists()
    assert questionnaire_review(resource={"resourceType": "Questionnaire"})[0].severity == "error"


def test_same_url_and_version_with_other_content_is_refused_and_same_content_returns_the_stored(multi):
    assert questionnaire_import(resource=copy.deepcopy(MULTI_PAGE)) == multi
    changed = copy.deepcopy(MULTI_PAGE)
    changed["title"] = "Something else"
    with pytest.raises(ValidationError, match="other content"):
        questionnaire_import(resource=changed)


def test_revising_creates_a_new_version_offered_in_the_same_programmes_and_responses_keep_theirs(cast, multi):
    old_response = response_submit(patient=cast.patient_a, questionnaire=multi, items=VALID_ITEMS,
                                   author=cast.patient_a.user)
    edited = questionnaire_export(questionnaire=multi)
    edited["title"] = "Symptomtjek (ny)"
    revised = questionnaire_revise(questionnaire=multi, resource=edited)
    assert (revised.url, revised.version, revised.title) == (multi.url, "2", "Symptomtjek (ny)")
    assert list(revised.programs.all()) == [cast.program_a]
    old_response.refresh_from_db()
    assert old_response.questionnaire == multi
    assert questionnaire_revise(questionnaire=revised, resource=questionnaire_export(questionnaire=revised)) == revised
    assert Questionnaire.objects.filter(url=multi.url).count() == 2


# --- drafts and submission ---------------------------------------------------------------------

def test_one_draft_per_patient_and_version_is_updated_in_place(cast, multi):
    first = response_draft_save(patient=cast.patient_a, questionnaire=multi, items=VALID_ITEMS[:1],
                                current_page=1, author=cast.patient_a.user)
    second = response_draft_save(patient=cast.patient_a, questionnaire=multi, items=VALID_ITEMS[:2],
                                 current_page=2, author=cast.patient_a.user)
    assert first.pk == second.pk
    assert (second.status, second.current_page, len(second.items)) == ("in-progress", 2, 2)


def test_with_drafts_of_two_versions_the_one_worked_on_last_is_offered(cast, multi):
    from questionnaires.selectors import questionnaires_offered

    user = cast.patient_a.user
    revised = questionnaire_revise(questionnaire=multi, resource={
        **questionnaire_export(questionnaire=multi), "title": "Symptomtjek (ny)"})

    def touch(questionnaire: Questionnaire) -> None:
        response_draft_save(patient=cast.patient_a, questionnaire=questionnaire, items=VALID_ITEMS[:1],
                            current_page=1, author=user)

    touch(revised)
    touch(multi)  # the older version's draft, worked on last
    offered, drafted = questionnaires_offered(cast.patient_a, user)
    assert [q.pk for q in offered if q.url == multi.url] == [multi.pk]
    assert drafted == {multi.pk, revised.pk}
    touch(revised)
    offered, _drafted = questionnaires_offered(cast.patient_a, user)
    assert [q.pk for q in offered if q.url == multi.url] == [revised.pk]


def test_submit_completes_the_draft_with_authored_time(cast, multi):
    draft = response_draft_save(patient=cast.patient_a, questionnaire=multi, items=VALID_ITEMS[:1],
                                current_page=1, author=cast.patient_a.user)
    response = response_submit(patient=cast.patient_a, questionnaire=multi, items=VALID_ITEMS,
                               author=cast.patient_a.user)
    assert response.pk == draft.pk
    assert response.status == "completed" and response.authored_at is not None
    assert QuestionnaireResponse.objects.count() == 1


def test_the_same_identifier_twice_stores_one_response(cast, multi, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        a = response_submit(patient=cast.patient_a, questionnaire=multi, items=VALID_ITEMS,
                            author=cast.patient_a.user, identifier="client-1")
        b = response_submit(patient=cast.patient_a, questionnaire=multi, items=VALID_ITEMS,
                            author=cast.patient_a.user, identifier="client-1")
    assert a.pk == b.pk
    assert QuestionnaireResponse.objects.count() == 1
    assert len(callbacks) == 1  # evaluated once


def test_invalid_submission_stores_nothing_and_keeps_the_draft_as_it_was(cast, multi):
    response_draft_save(patient=cast.patient_a, questionnaire=multi, items=VALID_ITEMS[:1], current_page=1,
                        author=cast.patient_a.user)
    with pytest.raises(ResponseInvalid) as caught:
        response_submit(patient=cast.patient_a, questionnaire=multi,
                        items=[*VALID_ITEMS, {"linkId": "ghost", "answer": [{"valueString": "x"}]}],
                        author=cast.patient_a.user, identifier="client-2")
    assert [e.link_id for e in caught.value.errors] == ["ghost"]
    assert list(QuestionnaireResponse.objects.values_list("status", "identifier")) == [("in-progress", None)]


def test_submission_stores_scores_when_scoring_is_available(cast, multi, monkeypatch):
    import questionnaires.services as services

    monkeypatch.setattr(services, "_scores", lambda questionnaire, items: [{"code": "x", "value": len(items)}])
    response = response_submit(patient=cast.patient_a, questionnaire=multi, items=VALID_ITEMS,
                               author=cast.patient_a.user)
    assert response.scores == [{"code": "x", "value": 3}]


# --- the web form -------------------------------------------------------------------------------

def _page(q, n):
    return f"/me/questionnaires/{q.pk}/page/{n}/"


def test_pages_follow_the_groups_show_progress_and_skip_a_disabled_page(multi, patient_client):
    html = patient_client.get(_page(multi, 1)).content.decode()
    assert "Side 1 af 3" in html  # the severe-pain page is not counted while disabled
    assert "<h1>Smerter</h1>" in html
    assert 'value="back"' not in html  # nothing to go back to
    response = patient_client.post(_page(multi, 1), {"q-pain": "mild", "q-pain-where": "knæ", "action": "next"})
    assert response["Location"] == _page(multi, 3)  # pain-details skipped
    response = patient_client.post(_page(multi, 1), {"q-pain": "severe", "action": "next"})
    assert response["Location"] == _page(multi, 2)
    html = patient_client.get(_page(multi, 2)).content.decode()
    assert "Side 2 af 4" in html
    assert 'data-slider="true"' in html and 'min="0"' in html and 'max="10"' in html


def test_next_with_a_missing_required_answer_shows_the_summary_and_the_error_by_the_field(multi, patient_client):
    response = patient_client.post(_page(multi, 1), {"action": "next"})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="form-errors"' in html and 'href="#id_q-pain"' in html
    assert re.search(r'<ul class="errors" id="id_q-pain-errors">\s*<li>', html)


def test_back_and_save_keep_the_answers_and_resume_where_the_patient_was(cast, multi, patient_client):
    patient_client.post(_page(multi, 1), {"q-pain": "none", "action": "next"})
    patient_client.post(_page(multi, 3), {"q-breathless": "true", "q-temperature": "37,5", "action": "save"})
    draft = QuestionnaireResponse.objects.get(status="in-progress")
    assert draft.current_page == 2
    # /me/ now says "Continue", and that link resumes on the breathing page with the answers kept
    home = patient_client.get("/me/").content.decode()
    assert "Fortsæt" in home
    resume = patient_client.get(f"/me/questionnaires/{multi.pk}/")
    assert resume["Location"] == _page(multi, 3)
    html = patient_client.get(_page(multi, 3)).content.decode()
    assert re.search(r'value="true"[^>]*checked', html)
    back = patient_client.post(_page(multi, 3), {"q-breathless": "false", "action": "back"})
    assert back["Location"] == _page(multi, 1)
    assert "breathless" in str(QuestionnaireResponse.objects.get(status="in-progress").items)


def test_answers_to_a_page_disabled_later_are_dropped_from_the_draft(multi, patient_client):
    patient_client.post(_page(multi, 1), {"q-pain": "severe", "action": "next"})
    patient_client.post(_page(multi, 2), {"q-pain-score": "8", "action": "next"})
    assert "pain-score" in str(QuestionnaireResponse.objects.get().items)
    patient_client.post(_page(multi, 1), {"q-pain": "none", "q-pain-where": "knæ", "action": "next"})
    stored = str(QuestionnaireResponse.objects.get().items)
    assert "pain-score" not in stored and "pain-where" not in stored


def test_review_lists_every_answer_with_a_change_link_and_send_submits_once(cast, multi, patient_client):
    patient_client.post(_page(multi, 1), {"q-pain": "mild", "q-pain-where": "knæ", "action": "next"})
    patient_client.post(_page(multi, 3), {"q-breathless": "false", "action": "next"})
    response = patient_client.post(_page(multi, 4), {"q-contact": "true", "action": "next"})
    review_url = f"/me/questionnaires/{multi.pk}/review/"
    assert response["Location"] == review_url
    html = patient_client.get(review_url).content.decode()
    for text in ("Lidt", "knæ", "Nej", "Ja", "Ikke besvaret"):  # temperature is not answered
        assert text in html, text
    change = f"{_page(multi, 1)}?return=review#id_q-pain-where"
    assert f'href="{change}"' in html
    # changing an answer from the review page returns to it
    back = patient_client.post(change.split("#")[0], {"q-pain": "mild", "q-pain-where": "ryg", "action": "next"})
    assert back["Location"] == review_url
    identifier = re.search(r'name="identifier" value="([^"]+)"', html).group(1)
    first = patient_client.post(review_url, {"identifier": identifier})
    again = patient_client.post(review_url, {"identifier": identifier})  # a double click
    assert first["Location"] == again["Location"] == f"/me/questionnaires/{multi.pk}/thanks/"
    stored = QuestionnaireResponse.objects.get()
    assert (stored.status, stored.identifier, stored.patient) == ("completed", identifier, cast.patient_a)
    # The patient asked to be contacted: the receipt says when the team calls (issue 19).
    receipt = patient_client.get(first["Location"]).content.decode()
    assert "En sygeplejerske ringer til dig inden for 1 hverdag" in receipt


def test_review_with_a_missing_required_answer_links_to_its_page_and_stores_nothing_completed(multi, patient_client):
    patient_client.post(_page(multi, 1), {"q-pain": "none", "action": "next"})
    review_url = f"/me/questionnaires/{multi.pk}/review/"
    response = patient_client.post(review_url, {"identifier": ""})
    assert response.status_code == 200
    assert f'href="{_page(multi, 3)}#id_q-breathless"' in response.content.decode()
    assert not QuestionnaireResponse.objects.filter(status="completed").exists()


def test_the_form_speaks_english_when_asked(multi, patient_client):
    patient_client.cookies["django_language"] = "en"
    html = patient_client.get(_page(multi, 1)).content.decode()
    assert "Are you in pain?" in html and "Page 1 of 3" in html


def test_a_page_number_outside_the_questionnaire_is_404(multi, patient_client):
    assert patient_client.get(_page(multi, 9)).status_code == 404
    assert patient_client.get(_page(multi, 0)).status_code == 404


def test_another_patient_cannot_open_or_post_to_a_questionnaire_outside_their_programmes(cast, multi, client):
    client.force_login(cast.patient_b.user)
    assert client.get(_page(multi, 1)).status_code == 404
    assert client.post(_page(multi, 1), {"q-pain": "none", "action": "next"}).status_code == 404
    assert not QuestionnaireResponse.objects.exists()


@pytest.mark.parametrize("typed", ["37,5", "37.5"])
def test_a_decimal_answer_may_be_typed_with_a_comma_or_a_point(multi, patient_client, typed):
    patient_client.post(_page(multi, 1), {"q-pain": "none", "action": "next"})
    patient_client.post(_page(multi, 3), {"q-breathless": "false", "q-temperature": typed, "action": "save"})
    items = QuestionnaireResponse.objects.get(status="in-progress").items
    assert "37.5" in json.dumps(items) and "375" not in json.dumps(items)


def test_a_typed_number_that_is_not_one_is_refused_next_to_its_field(multi, patient_client):
    patient_client.post(_page(multi, 1), {"q-pain": "none", "action": "next"})
    response = patient_client.post(_page(multi, 3), {"q-breathless": "false", "q-temperature": "37,5,1",
                                                     "action": "next"}, HTTP_ACCEPT_LANGUAGE="en")
    html = response.content.decode()
    assert response.status_code == 200
    assert re.search(r'<ul class="errors" id="id_q-temperature-errors">\s*<li>Write a number, such as 72,5.', html)
    # The range is said beside the field (a text field has no min/max) and read out with it.
    assert '<p class="help" id="id_q-temperature-help">Between 34 and 43.</p>' in html
    assert re.search(r'id="id_q-temperature"[^>]*aria-describedby="id_q-temperature-help id_q-temperature-errors"',
                     html) or re.search(r'aria-describedby="id_q-temperature-help id_q-temperature-errors"[^>]*'
                                        r'id="id_q-temperature"', html)


def test_the_nurse_reads_yes_no_and_decimal_answers_as_the_page_language_writes_them(cast, multi, patient_client):
    patient_client.post(_page(multi, 1), {"q-pain": "none", "action": "next"})
    patient_client.post(_page(multi, 3), {"q-breathless": "false", "q-temperature": "37,5", "action": "next"})
    patient_client.post(_page(multi, 4), {"q-contact": "true", "action": "next"})
    review_url = f"/me/questionnaires/{multi.pk}/review/"
    identifier = re.search(r'name="identifier" value="([^"]+)"', patient_client.get(review_url).content.decode())
    patient_client.post(review_url, {"identifier": identifier.group(1)})
    nurse = Client(HTTP_ACCEPT_LANGUAGE="da")
    nurse.force_login(cast.clinician_a)
    html = nurse.get(f"/patients/{cast.patient_a.pk}/").content.decode()
    answers = re.findall(r"<dd>([^<]*)</dd>", html)
    assert "Nej" in answers and "Ja" in answers and "37,5" in answers, answers
    assert "nej" not in answers and "ja" not in answers
